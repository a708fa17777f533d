package fetch

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/plug-net/plug/crypto/cryptotest"
	"github.com/plug-net/plug/store/catalog"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/pack"
	"github.com/plug-net/plug/store/seal"
	"github.com/plug-net/plug/store/target"
)

// sealedPack makes a pack of one random chunk, sealed as k+m shards, each
// on its own holder.
func sealedPack(t *testing.T, k, m int) (catalog.PackRecord, []byte, map[string]*target.MemTarget) {
	t.Helper()
	keys := cryptotest.FixedKeys(t)
	chunk := make([]byte, 300<<10)
	rand.Read(chunk)
	b := pack.NewBuilder(len(chunk))
	b.Add(data.DataBlob, data.NoCompression, data.ID{1}, chunk, len(chunk))
	plain := b.Finish()
	s, err := seal.NewSealer(keys.AgeRecipient()).Seal(plain, k, m)
	if err != nil {
		t.Fatal(err)
	}
	rec := catalog.PackRecord{ID: s.ID, Shape: s.Shape}
	holders := map[string]*target.MemTarget{}
	for i, sh := range s.Shards {
		name := fmt.Sprintf("friend-%d", i)
		tg := target.NewMemTarget(name)
		if err := tg.PutShard(t.Context(), s.Shape.ShardIDs[i], bytes.Clone(sh)); err != nil {
			t.Fatal(err)
		}
		holders[name] = tg
		rec.Holders = append(rec.Holders, name)
	}
	return rec, plain, holders
}

func newFetcher(t *testing.T, holders map[string]*target.MemTarget) *Fetcher {
	return New(func(h string) target.ShardTarget { return holders[h] }, cryptotest.FixedKeys(t).AgeIdentity())
}

// fetchReporting fetches rec and returns what it reported bad.
func fetchReporting(t *testing.T, f *Fetcher, rec catalog.PackRecord) ([]byte, []BadShard, error) {
	var (
		mu  sync.Mutex
		bad []BadShard
	)
	ctx := WithBadShards(context.Background(), func(b BadShard) { mu.Lock(); bad = append(bad, b); mu.Unlock() })
	plain, _, err := f.Fetch(ctx, rec)
	return plain, bad, err
}

// TestFetchFindsAnAlteredShard: a data shard of the right length whose
// bytes a friend changed does not reach the plaintext: the pack does not
// open, the shards are then checked, the altered one is reported corrupt
// and replaced from a parity holder.
func TestFetchFindsAnAlteredShard(t *testing.T) {
	rec, plain, holders := sealedPack(t, 3, 2)
	holders["friend-1"].Tamper(rec.Shape.ShardIDs[1], func(b []byte) []byte { b[len(b)/3] ^= 0x40; return b })
	got, bad, err := fetchReporting(t, newFetcher(t, holders), rec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) {
		t.Fatal("the plaintext differs from the pack's")
	}
	if len(bad) != 1 || bad[0].Index != 1 || bad[0].Problem != "corrupt" || bad[0].Holder != "friend-1" {
		t.Fatalf("reported %+v, want shard 1 on friend-1 corrupt", bad)
	}
}

// TestFetchWithTooManyAlteredShards: with more shards altered than parity
// can replace, the fetch fails saying not enough shards, after reporting
// each altered one.
func TestFetchWithTooManyAlteredShards(t *testing.T) {
	rec, _, holders := sealedPack(t, 2, 1)
	for _, i := range []int{0, 2} {
		holders[rec.Holders[i]].Tamper(rec.Shape.ShardIDs[i], func(b []byte) []byte { b[0] ^= 1; return b })
	}
	_, bad, err := fetchReporting(t, newFetcher(t, holders), rec)
	if !errors.Is(err, seal.ErrNotEnoughShards) {
		t.Fatalf("Fetch: %v, want not enough shards", err)
	}
	if len(bad) != 2 {
		t.Fatalf("reported %+v, want shards 0 and 2", bad)
	}
}

// TestFetchRebuildsFromParity: a missing data shard is rebuilt from a
// parity shard; nothing else is reported.
func TestFetchRebuildsFromParity(t *testing.T) {
	rec, plain, holders := sealedPack(t, 2, 2)
	holders["friend-0"].Wipe()
	got, bad, err := fetchReporting(t, newFetcher(t, holders), rec)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Fetch: %v (plaintext equal: %v)", err, bytes.Equal(got, plain))
	}
	if len(bad) != 1 || bad[0].Problem != "missing" {
		t.Fatalf("reported %+v, want shard 0 missing", bad)
	}
}

// BenchmarkFetch measures fetching and opening a 16 MiB pack from memory
// holders: no network, the work of the owner alone.
func BenchmarkFetch(b *testing.B) {
	keys := cryptotest.FixedKeys(b)
	chunk := make([]byte, 16<<20)
	rand.Read(chunk)
	pb := pack.NewBuilder(len(chunk))
	pb.Add(data.DataBlob, data.NoCompression, data.ID{1}, chunk, len(chunk))
	s, err := seal.NewSealer(keys.AgeRecipient()).Seal(pb.Finish(), 2, 1)
	if err != nil {
		b.Fatal(err)
	}
	holders := map[string]*target.MemTarget{}
	rec := catalog.PackRecord{ID: s.ID, Shape: s.Shape}
	for i, sh := range s.Shards {
		name := fmt.Sprintf("friend-%d", i)
		tg := target.NewMemTarget(name)
		if err := tg.PutShard(b.Context(), s.Shape.ShardIDs[i], sh); err != nil {
			b.Fatal(err)
		}
		holders[name] = tg
		rec.Holders = append(rec.Holders, name)
	}
	f := New(func(h string) target.ShardTarget { return holders[h] }, keys.AgeIdentity())
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		if _, _, err := f.Fetch(b.Context(), rec); err != nil {
			b.Fatal(err)
		}
	}
}
