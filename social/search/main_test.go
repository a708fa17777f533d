package search

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when goroutines outlive them. Every
// index the tests open is closed; the one exception lives for the process:
//
//   - bleve_index_api.AnalysisWorker: bleve's package init starts four
//     analysis workers (bleve.Config's analysis queue) shared by every
//     index of the process; nothing stops them, by design.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/blevesearch/bleve_index_api.AnalysisWorker"),
	)
}
