package p2p

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Refusals of strangers are logged without letting strangers flood the
// log: in each minute the first refusal of each kind from a peer is logged,
// for the first few, the rest only counted and summed up when the minute
// ends.
const (
	refusalWindow     = time.Minute
	refusalsLoggedMax = 10
)

type refusals struct {
	log *slog.Logger

	mu     sync.Mutex
	start  time.Time
	logged map[string]bool  // peer and what, logged in this window
	extra  int              // refusals counted, not logged
	peers  map[peer.ID]bool // peers behind them (bounded)
}

func newRefusals(log *slog.Logger) *refusals {
	return &refusals{log: log, logged: map[string]bool{}, peers: map[peer.ID]bool{}}
}

// Refused notes that a stranger (or a peer with a bad invite) was refused
// on what ("the shard protocol", "pairing: unknown invite").
func (n *Node) Refused(p peer.ID, what string) { n.refusals.note(p, what, time.Now()) }

func (r *refusals) note(p peer.ID, what string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.start) >= refusalWindow {
		r.flushLocked(now)
	}
	if key := string(p) + "\x00" + what; !r.logged[key] && len(r.logged) < refusalsLoggedMax {
		r.logged[key] = true
		r.log.Warn("refused a stranger: "+what, "peer", p.String())
		return
	}
	r.extra++
	if len(r.peers) < 10_000 {
		r.peers[p] = true
	}
}

// flushLocked sums up the refusals counted in the window that ends, and
// starts a new one.
func (r *refusals) flushLocked(now time.Time) {
	if r.extra > 0 {
		r.log.Warn("refused more streams from strangers in the last minute", "refused", r.extra, "peers", len(r.peers))
	}
	r.start, r.extra = now, 0
	clear(r.logged)
	clear(r.peers)
}

// run sums up each minute's refusals when it ends, until ctx ends.
func (r *refusals) run(ctx context.Context) {
	t := time.NewTicker(refusalWindow)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.mu.Lock()
			if now.Sub(r.start) >= refusalWindow {
				r.flushLocked(now)
			}
			r.mu.Unlock()
		}
	}
}
