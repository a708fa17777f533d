package store

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plug-net/plug/crypto/cryptotest"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/target"
)

// awayNet is a memNet whose friend away answers no release: each try
// waits until its context ends or the plug's network gives up on it.
type awayNet struct {
	*memNet
	away  string
	tries atomic.Int32
}

func (n *awayNet) Holder(name string) target.Holder {
	h := n.memNet.Holder(name)
	if h == nil || name != n.away {
		return h
	}
	return &awayHolder{Holder: h, n: n}
}

type awayHolder struct {
	target.Holder
	n *awayNet
}

func (h *awayHolder) DeleteShard(ctx context.Context, id [32]byte) error {
	h.n.tries.Add(1)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Second): // a dial and a DHT lookup that find no one
		return errors.New("reach: no addresses")
	}
}

// TestReleaseSkipsAFriendAway: a friend that does not answer costs one
// bounded try per round, not one per shard; its shards wait for the next
// round, and the other friends' go at once.
func TestReleaseSkipsAFriendAway(t *testing.T) {
	defer func(d time.Duration) { releaseTry = d }(releaseTry)
	releaseTry = 50 * time.Millisecond
	mem := newMemNet(3)
	net := &awayNet{memNet: mem, away: mem.holders[0].Name()}
	r := newTestRepo(t, cryptotest.FixedKeys(t), net)
	ctx := t.Context()
	var holders []string
	var shards []data.ID
	for i := range 20 {
		for _, h := range mem.holders {
			id := data.ID{byte(i), h.Name()[len(h.Name())-1]}
			mustOK(t, h.PutShard(ctx, id, []byte("old shard")))
			holders, shards = append(holders, h.Name()), append(shards, id)
		}
	}
	mustOK(t, r.releaseShards(data.ID{0xee}, holders, shards)) // a pack no longer in the catalog
	start := time.Now()
	n, err := r.releaseAfterPublish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); net.tries.Load() != 1 || took > 5*time.Second {
		t.Fatalf("the friend away was asked %d times (%v)", net.tries.Load(), took)
	}
	if n != 40 {
		t.Fatalf("released %d shards, want the 40 of the friends there", n)
	}
	for _, h := range mem.holders[1:] {
		if k, _ := h.Len(); k != 0 {
			t.Fatalf("%s still holds %d released shards", h.Name(), k)
		}
	}
	left, err := r.pendingReleases()
	if err != nil || len(left) != 20 {
		t.Fatalf("%d shards wait for the friend away, want 20 (%v)", len(left), err)
	}
}
