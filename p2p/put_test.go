package p2p

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/plug-net/plug/p2p/proof"
)

// TestPutEndsWhenTheFriendFails: a friend that fails while a large shard
// comes in (here it cannot create the file) answers and stops reading; the
// owner's put ends at once with the friend's reason, not when flow control
// times out.
func TestPutEndsWhenTheFriendFails(t *testing.T) {
	a := newTestPlug(t, "ann", nil)
	d := newTestPlug(t, "dan", nil)
	a.node.Host().Peerstore().AddAddrs(d.node.ID(), d.node.Host().Addrs(), time.Hour)
	pair(t, d, a)
	// Dan's folder for ann's shards is a file: dan's store fails after it
	// said "send the body".
	id, data := randShard(t, proof.MaxShardSize-1)
	dir := strings.TrimSuffix(d.held.Path(a.node.ID(), id), "/"+hexID(id))
	mustOKp(t, os.WriteFile(dir, []byte("not a folder"), 0o600))
	tg := a.node.Target(d.node.ID())
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	start := time.Now()
	err := tg.PutShard(ctx, id, data)
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("put to a failing friend after %v: %v; want the friend's reason before the context ends", time.Since(start).Round(time.Millisecond), err)
	}
	t.Logf("the put failed after %v: %v", time.Since(start).Round(time.Millisecond), err)

}

func hexID(id [32]byte) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 64)
	for i, c := range id {
		b[2*i], b[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(b)
}

func mustOKp(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestOwnerSeesQuota: a friend cuts what it gives; the owner's friend
// list follows (quota and use, from the friend's answers), and a refusal
// for quota says so.
func TestOwnerSeesQuota(t *testing.T) {
	a := newTestPlug(t, "ann", nil)
	d := newTestPlug(t, "dan", nil)
	a.node.Host().Peerstore().AddAddrs(d.node.ID(), d.node.Host().Addrs(), time.Hour)
	pair(t, d, a)
	ctx := t.Context()
	if _, err := d.node.SetQuota(a.node.ID(), 50_000); err != nil {
		t.Fatal(err)
	}
	tg := a.node.Target(d.node.ID())
	id, data := randShard(t, 10_000)
	mustOKp(t, tg.PutShard(ctx, id, data))
	id2, data2 := randShard(t, 60_000)
	if err := tg.PutShard(ctx, id2, data2); !errors.Is(err, ErrQuota) {
		t.Fatalf("a shard past the quota: %v, want ErrQuota", err)
	}
	waitFor(t, 10*time.Second, "ann to learn dan's quota and use", func() bool {
		fs, err := a.node.Friends()
		if err != nil || len(fs) != 1 {
			return false
		}
		return fs[0].QuotaTaken == 50_000 && fs[0].UsedTaken == 10_000
	})
}
