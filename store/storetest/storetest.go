// Package storetest is the one test suite every target.ShardTarget
// implementation passes: the in-memory fake and friends' plugs over the
// network alike.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/plug-net/plug/p2p/proof"
)

// Target is target.ShardTarget, restated so that implementations below store
// can run this suite without importing it.
type Target interface {
	Name() string
	PutShard(ctx context.Context, id [32]byte, data []byte) error
	GetShard(ctx context.Context, id [32]byte) ([]byte, error)
	HasShard(ctx context.Context, id [32]byte) (bool, error)
	DeleteShard(ctx context.Context, id [32]byte) error
}

// TestTarget runs the suite against targets made by newTarget, one fresh
// target per subtest.
func TestTarget(t *testing.T, newTarget func(t *testing.T) Target) {
	shard := func(n int) ([32]byte, []byte) {
		b := make([]byte, n)
		rand.Read(b)
		return blake3.Sum256(b), b
	}
	t.Run("PutGetHasDelete", func(t *testing.T) {
		tg := newTarget(t)
		ctx := t.Context()
		for _, n := range []int{1, 1000, 1 << 20, 3<<20 + 7} {
			id, b := shard(n)
			if ok, err := tg.HasShard(ctx, id); err != nil || ok {
				t.Fatalf("HasShard before put = %v, %v; want false, nil", ok, err)
			}
			if err := tg.PutShard(ctx, id, b); err != nil {
				t.Fatalf("PutShard(%d bytes): %v", n, err)
			}
			if ok, err := tg.HasShard(ctx, id); err != nil || !ok {
				t.Fatalf("HasShard after put = %v, %v; want true, nil", ok, err)
			}
			got, err := tg.GetShard(ctx, id)
			if err != nil {
				t.Fatalf("GetShard: %v", err)
			}
			if !bytes.Equal(got, b) {
				t.Fatalf("GetShard returned %d bytes differing from the %d put", len(got), len(b))
			}
			if into, ok := tg.(interface {
				GetShardInto(ctx context.Context, id [32]byte, buf []byte) ([]byte, error)
			}); ok {
				// Into a buffer too small (a new one), then into one large
				// enough, full of other bytes (its memory, overwritten).
				for _, buf := range [][]byte{make([]byte, 0, n/2), bytes.Repeat([]byte{0xee}, n+100)} {
					got, err := into.GetShardInto(ctx, id, buf)
					if err != nil || !bytes.Equal(got, b) {
						t.Fatalf("GetShardInto(buffer of %d): %d bytes, %v; want the %d put", cap(buf), len(got), err, n)
					}
					if cap(buf) >= n && &got[0] != &buf[:1][0] {
						t.Fatalf("GetShardInto did not use a buffer of %d bytes for %d", cap(buf), n)
					}
				}
			}
			if err := tg.DeleteShard(ctx, id); err != nil {
				t.Fatalf("DeleteShard: %v", err)
			}
			if ok, err := tg.HasShard(ctx, id); err != nil || ok {
				t.Fatalf("HasShard after delete = %v, %v; want false, nil", ok, err)
			}
		}
	})
	t.Run("GetMissing", func(t *testing.T) {
		tg := newTarget(t)
		id, _ := shard(10)
		if _, err := tg.GetShard(t.Context(), id); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("GetShard of a missing shard: %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("DeleteMissing", func(t *testing.T) {
		tg := newTarget(t)
		id, _ := shard(10)
		if err := tg.DeleteShard(t.Context(), id); err != nil {
			t.Fatalf("DeleteShard of a missing shard: %v", err)
		}
	})
	t.Run("PutTwice", func(t *testing.T) {
		tg := newTarget(t)
		id, b := shard(4096)
		for range 2 {
			if err := tg.PutShard(t.Context(), id, b); err != nil {
				t.Fatalf("PutShard: %v", err)
			}
		}
		got, err := tg.GetShard(t.Context(), id)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("GetShard after two puts: %v", err)
		}
	})
	t.Run("CallerMayReuseBuffer", func(t *testing.T) {
		tg := newTarget(t)
		id, b := shard(4096)
		want := bytes.Clone(b)
		if err := tg.PutShard(t.Context(), id, b); err != nil {
			t.Fatal(err)
		}
		clear(b)
		got, err := tg.GetShard(t.Context(), id)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("target kept a reference to the caller's buffer (err %v)", err)
		}
	})
	t.Run("CanceledContext", func(t *testing.T) {
		tg := newTarget(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		id, b := shard(10)
		if err := tg.PutShard(ctx, id, b); err == nil {
			t.Fatal("PutShard with a canceled context succeeded")
		}
	})
}

// TestTruncated runs against targets whose held copy of a shard can be cut
// short, as a failing disk or a careless friend leaves it: newTarget returns
// a fresh target and a function that truncates its copy of a shard to n
// bytes. Asked for that shard, the target answers with an error wrapping
// proof.ErrCorrupt: never short bytes, never fs.ErrNotExist, and never an
// error that reads as the friend being away, so that a verification counts
// the shard corrupt.
func TestTruncated(t *testing.T, newTarget func(t *testing.T) (Target, func(id [32]byte, n int))) {
	for _, n := range []int{0, 1, 50_000} {
		tg, truncate := newTarget(t)
		b := make([]byte, 100_000)
		rand.Read(b)
		id := blake3.Sum256(b)
		if err := tg.PutShard(t.Context(), id, b); err != nil {
			t.Fatalf("PutShard: %v", err)
		}
		truncate(id, n)
		got, err := tg.GetShard(t.Context(), id)
		if !errors.Is(err, proof.ErrCorrupt) || errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("GetShard of a shard truncated to %d bytes: %d bytes, %v; want an error wrapping proof.ErrCorrupt", n, len(got), err)
		}
	}
}
