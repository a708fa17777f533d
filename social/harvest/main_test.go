package harvest

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when goroutines outlive them (an
// HTTP fetch or an archive reader left open, say). Nothing is ignored: the
// package starts no goroutine of its own, and the test servers it fetches
// from are closed with their connections.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
