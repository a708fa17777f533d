package search

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when goroutines outlive them: every
// index the tests open is closed, and a closed index leaves nothing.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
