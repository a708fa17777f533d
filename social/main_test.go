package social

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when goroutines outlive them. The
// libp2p hosts, nodes, badger stores, search indexes and services the
// tests make are all closed by the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// serviceFrame marks a goroutine that runs a Service's code.
const serviceFrame = "github.com/plug-net/plug/social.(*Service)."

// goroutines returns the stacks of the goroutines whose stack contains
// frame.
func goroutines(frame string) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, frame) {
			out = append(out, g)
		}
	}
	return out
}

// serviceGoroutines returns the stacks of the goroutines still running a
// Service's code, once those that are ending have had a moment to end
// (as goleak does: a goroutine that has told a WaitGroup it is done may
// still be returning).
func serviceGoroutines() []string {
	var gs []string
	for range 50 {
		if gs = goroutines(serviceFrame); len(gs) == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return gs
}
