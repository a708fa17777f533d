package p2p

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine outlives its tests.
//
// Nothing is ignored: the libraries these tests start goroutines through
// (go-libp2p with its transports and services, kad-dht, badger under
// store/kv) stop them when the node, its host and the store are closed,
// and none of them starts one at init that lives for the process. A
// goroutine listed here is a leak, in p2p or in how a test stops its plugs.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestCloseEndsItsGoroutines: once Close returns, no goroutine that the
// node started (Run's loops, redials, pings, connect hooks, the delayed
// hooks of a pairing) is left, even while Run's context is still alive:
// for plugs that paired, exchanged a shard and lost a friend, and for plugs
// closed the moment Run was started (Run's loops may start after Close).
func TestCloseEndsItsGoroutines(t *testing.T) {
	z := newTestPlug(t, "zed", nil)
	boot := []peer.AddrInfo{z.info()}
	a := newTestPlug(t, "ann", boot)
	d := newTestPlug(t, "dan", boot)
	pair(t, a, d) // ann, the inviter, runs its connect hooks 2s later
	id, data := randShard(t, 64<<10)
	if err := a.node.Target(d.node.ID()).PutShard(t.Context(), id, data); err != nil {
		t.Fatal(err)
	}
	// d goes away: a's link keeper starts dialing it again.
	dan := d.node.ID()
	d.halt()
	waitFor(t, 10*time.Second, "ann to see dan offline", func() bool { return a.node.Link(dan).Kind == LinkOffline })
	for _, p := range []*testPlug{a, z} {
		if err := p.node.Close(); err != nil {
			t.Fatalf("%s: Close: %v", p.name, err)
		}
	}
	// Right after Close, with no grace: what the nodes started has ended.
	if left := startedByP2P(); len(left) > 0 {
		t.Fatalf("%d goroutines started by p2p outlive Close:\n\n%s", len(left), strings.Join(left, "\n\n"))
	}
	for i := range 40 {
		p := newTestPlug(t, "solo", nil)
		if err := p.node.Close(); err != nil {
			t.Fatalf("solo plug %d: Close: %v", i, err)
		}
		if left := startedByP2P(); len(left) > 0 {
			t.Fatalf("solo plug %d, closed as Run started: %d goroutines started by p2p outlive Close:\n\n%s", i, len(left), strings.Join(left, "\n\n"))
		}
		// Each database maps 128 MiB for its value log: forty left open
		// until the cleanup fill the address space of a 32-bit plug (arm).
		p.halt()
		if err := p.db.Close(); err != nil {
			t.Fatalf("solo plug %d: close its database: %v", i, err)
		}
	}
}

// startedByP2P returns the stacks of the live goroutines that code of
// package p2p (not its tests) started and that still have work to do.
//
// A goroutine counted in a wait group signals Done a moment before it is
// gone, so one may still be listed, exiting, after the Wait that Close does.
// Its top frame is then the wrapper that did the counting (goRun's, or the
// one Run starts each loop with): the work it wrapped has returned, since
// Close waited for its Done. Those are not counted.
func startedByP2P() []string {
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
		i := strings.LastIndex(g, "\ncreated by ")
		if i < 0 {
			continue
		}
		// "created by FUNC in goroutine N", then "\tFILE:LINE +0x..."
		fn, file, _ := strings.Cut(g[i+len("\ncreated by "):], "\n\t")
		if !strings.HasPrefix(fn, "github.com/plug-net/plug/p2p.") || strings.Contains(file, "_test.go:") {
			continue
		}
		if top := topFrame(g); strings.HasPrefix(top, "github.com/plug-net/plug/p2p.(*Node).goRun.func") ||
			strings.HasPrefix(top, "github.com/plug-net/plug/p2p.(*Node).Run.func") {
			continue // exiting: see above
		}
		out = append(out, g)
	}
	return out
}

// topFrame returns the innermost function of a goroutine's stack that is
// not the runtime's or package sync's (a goroutine signalling Done may still
// be inside WaitGroup.Done).
func topFrame(g string) string {
	lines := strings.Split(g, "\n")
	for _, l := range lines[1:] { // lines[0] is "goroutine N [state]:"
		switch {
		case strings.HasPrefix(l, "\t"): // a frame's file and line
		case strings.HasPrefix(l, "sync."), strings.HasPrefix(l, "runtime."), strings.HasPrefix(l, "internal/"):
		default:
			return l
		}
	}
	return ""
}
