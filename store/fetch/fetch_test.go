package fetch

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// TestFetchIntoOpensInTheCallersBuffer: the data shards are read into the
// caller's buffer and the pack decrypted there, so fetching pack after pack
// with the buffer handed back allocates no pack-sized memory.
func TestFetchIntoOpensInTheCallersBuffer(t *testing.T) {
	rec, plain, holders := sealedPack(t, 3, 1)
	f := newFetcher(t, holders)
	buf := make([]byte, 0, JoinedBufferSize)
	got, _, err := f.FetchInto(t.Context(), rec, buf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) {
		t.Fatal("the plaintext differs from the pack's")
	}
	if &got[:1][0] != &buf[:1][0] {
		t.Fatal("the plaintext is not in the caller's buffer")
	}
	allocs := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := f.FetchInto(b.Context(), rec, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	if per := allocs.AllocedBytesPerOp(); per > int64(len(plain))/4 {
		t.Fatalf("a fetch into a buffer that fits allocates %d bytes, for a pack of %d", per, len(plain))
	}
}

// TestFetchRebuildsIntoPlace: with a data shard missing and an altered
// one (more than one fetch pass), the rebuilt data shard lands in the
// caller's buffer and the pack opens.
func TestFetchRebuildsIntoPlace(t *testing.T) {
	rec, plain, holders := sealedPack(t, 3, 2)
	holders["friend-0"].Wipe()
	holders["friend-2"].Tamper(rec.Shape.ShardIDs[2], func(b []byte) []byte { b[7] ^= 1; return b })
	buf := make([]byte, 0, JoinedBufferSize)
	var bad []BadShard
	ctx := WithBadShards(t.Context(), func(b BadShard) { bad = append(bad, b) })
	got, _, err := newFetcher(t, holders).FetchInto(ctx, rec, buf)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("FetchInto: %v (plaintext equal: %v)", err, bytes.Equal(got, plain))
	}
	if &got[:1][0] != &buf[:1][0] {
		t.Fatal("the plaintext is not in the caller's buffer")
	}
	if len(bad) != 2 || bad[0].Index != 0 || bad[0].Problem != "missing" || bad[1].Index != 2 || bad[1].Problem != "corrupt" {
		t.Fatalf("reported %+v, want shard 0 missing, then shard 2 corrupt (each once)", bad)
	}
}

// stuckTarget answers no shard until its request is cancelled, then
// scribbles over the memory it was given, as a network read cut short
// might.
type stuckTarget struct {
	*target.MemTarget
	inFlight *atomic.Int32
}

func (s stuckTarget) GetShardInto(ctx context.Context, id [32]byte, buf []byte) ([]byte, error) {
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	<-ctx.Done()
	buf = buf[:cap(buf)]
	for i := range buf {
		buf[i] = 0xAA
	}
	return nil, ctx.Err()
}

// TestFetchIntoLeavesTheBufferWhenItReturns: a fetch that is cancelled
// returns only once no request of it can still write into the buffer.
func TestFetchIntoLeavesTheBufferWhenItReturns(t *testing.T) {
	rec, _, holders := sealedPack(t, 2, 1)
	var inFlight atomic.Int32
	stuck := stuckTarget{holders["friend-1"], &inFlight}
	f := New(func(h string) target.ShardTarget {
		if h == "friend-1" {
			return stuck
		}
		return holders[h]
	}, cryptotest.FixedKeys(t).AgeIdentity())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	buf := make([]byte, 0, JoinedBufferSize)
	go func() {
		_, _, err := f.FetchInto(ctx, rec, buf)
		done <- err
	}()
	for inFlight.Load() == 0 {
		runtime.Gosched() // until the stuck holder was asked
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("FetchInto: %v, want cancelled", err)
	}
	if n := inFlight.Load(); n != 0 {
		t.Fatalf("FetchInto returned with %d requests still writing into the buffer", n)
	}
	// The holder did not fail: the fetch was cancelled.
	if st := f.holders["friend-1"]; st.inFlight != 0 || !st.failed.IsZero() {
		t.Fatalf("after the cancelled fetch friend-1 has %d fetches in flight and failed at %v; want none, never", st.inFlight, st.failed)
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

// askedTarget counts the shards a holder was asked for.
type askedTarget struct {
	*target.MemTarget
	asked *atomic.Int32
}

func (a askedTarget) GetShard(ctx context.Context, id [32]byte) ([]byte, error) {
	a.asked.Add(1)
	return a.MemTarget.GetShard(ctx, id)
}

func (a askedTarget) GetShardInto(ctx context.Context, id [32]byte, buf []byte) ([]byte, error) {
	a.asked.Add(1)
	return a.MemTarget.GetShardInto(ctx, id, buf)
}

// fakeClock gives f a clock that moves only when the test moves it.
func fakeClock(f *Fetcher) *time.Time {
	now := time.Unix(1_000_000_000, 0)
	f.now = func() time.Time { return now }
	return &now
}

// learn tells f, whose clock is clk, that holder delivered a shard of size
// bytes in d while shared fetches (it included) were in flight to it
// throughout.
func learn(f *Fetcher, clk *time.Time, holder string, size int, d time.Duration, shared int) {
	starts := make([]float64, shared)
	for i := range starts {
		starts[i] = f.begin(holder)
	}
	*clk = clk.Add(d)
	f.done(context.Background(), holder, size, starts[0], true)
	ended, cancel := context.WithCancel(context.Background())
	cancel() // the other fetches were not needed: they teach nothing
	for _, st := range starts[1:] {
		f.done(ended, holder, 0, st, false)
	}
}

// TestFetchAsksTheLessBusyHolder: two holders of one pack (k = 1, m = 1)
// with uplinks equally fast. While the data shard's holder is busy with two
// other fetches (another restore worker's), the pack comes from the parity
// holder, whose link is free: every friend's uplink carries a restore, not
// the data holders' alone. With both idle the data shard is asked for.
func TestFetchAsksTheLessBusyHolder(t *testing.T) {
	rec, plain, holders := sealedPack(t, 1, 1)
	for _, busy := range []int{0, 2} {
		asked := []*atomic.Int32{{}, {}}
		f := New(func(h string) target.ShardTarget {
			for i, name := range rec.Holders {
				if h == name {
					return askedTarget{holders[h], asked[i]}
				}
			}
			return nil
		}, cryptotest.FixedKeys(t).AgeIdentity())
		clk := fakeClock(f)
		for _, h := range rec.Holders {
			learn(f, clk, h, rec.Shape.ShardSize(), 400*time.Millisecond, 1)
		}
		for range busy {
			f.begin(rec.Holders[0])
		}
		if got, _, err := f.Fetch(t.Context(), rec); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("Fetch: %v", err)
		}
		want := []int32{1, 0} // the data shard
		if busy > 0 {
			want = []int32{0, 1} // the parity shard
		}
		if got := []int32{asked[0].Load(), asked[1].Load()}; !slices.Equal(got, want) {
			t.Fatalf("data holder busy with %d other fetches: asked data and parity holders %v times, want %v", busy, got, want)
		}
	}
}

// TestOrderRanksByLinkSpeed: a holder is ranked by bytes per second of its
// link, whatever the size of the shards it delivered and however many
// fetches shared its link. Ranked by each fetch's time, the first two
// cases would come out the other way.
func TestOrderRanksByLinkSpeed(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		name          string
		first, second func(f *Fetcher, clk *time.Time, h string) // what the holders delivered
	}{
		{"small shards fast, large shards slow", func(f *Fetcher, clk *time.Time, h string) {
			learn(f, clk, h, 8*mib, time.Second, 1) // 8 MiB/s
		}, func(f *Fetcher, clk *time.Time, h string) {
			learn(f, clk, h, 64<<10, 50*time.Millisecond, 1) // 1.25 MiB/s
		}},
		{"a link shared by four fetches", func(f *Fetcher, clk *time.Time, h string) {
			learn(f, clk, h, 8*mib, 4*time.Second, 4) // 8 MiB/s of link
		}, func(f *Fetcher, clk *time.Time, h string) {
			learn(f, clk, h, 8*mib, 2*time.Second, 1) // 4 MiB/s
		}},
		{"a holder that failed a moment ago", func(f *Fetcher, clk *time.Time, h string) {
			learn(f, clk, h, 8*mib, 2*time.Second, 1)
		}, func(f *Fetcher, clk *time.Time, h string) {
			learn(f, clk, h, 8*mib, time.Second, 1)
			f.done(context.Background(), h, 0, f.begin(h), false)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := catalog.PackRecord{Shape: seal.Shape{Size: 16 * mib, K: 2, ShardIDs: make([]data.ID, 2)}, Holders: []string{"second", "first"}}
			f := New(func(string) target.ShardTarget { return nil }, nil)
			clk := fakeClock(f)
			c.first(f, clk, "first")
			c.second(f, clk, "second")
			if got := f.order(rec); got[0] != 1 {
				t.Fatalf("order %v: want holder 1 (first) first", got)
			}
		})
	}
}

// TestFailureIsForgotten: a holder that failed is asked last for
// failMemory, then ranked by its speed again (a friend that was briefly
// offline serves the next restore).
func TestFailureIsForgotten(t *testing.T) {
	rec := catalog.PackRecord{Shape: seal.Shape{Size: 2 << 20, K: 2, ShardIDs: make([]data.ID, 2)}, Holders: []string{"a", "b"}}
	f := New(func(string) target.ShardTarget { return nil }, nil)
	clk := fakeClock(f)
	learn(f, clk, "a", 1<<20, 100*time.Millisecond, 1)
	learn(f, clk, "b", 1<<20, 200*time.Millisecond, 1)
	f.done(context.Background(), "a", 0, f.begin("a"), false)
	if got := f.order(rec); got[0] != 1 {
		t.Fatalf("order %v right after a failed: want b (1) first", got)
	}
	*clk = clk.Add(failMemory + time.Second)
	if got := f.order(rec); got[0] != 0 {
		t.Fatalf("order %v a minute after a failed: want a (0), the faster, first", got)
	}
}

// TestUnheardHolderIsNotFree: a holder that has delivered nothing yet but
// has fetches in flight is taken to be as fast as the others, not free: a
// restore's workers do not all pile onto the friend whose first shards are
// still coming while the one that answered is idle.
func TestUnheardHolderIsNotFree(t *testing.T) {
	const size = 8 << 20
	rec := catalog.PackRecord{Shape: seal.Shape{Size: size, K: 1, M: 1, ShardIDs: make([]data.ID, 2)}, Holders: []string{"answered", "unheard"}}
	f := New(func(string) target.ShardTarget { return nil }, nil)
	clk := fakeClock(f)
	learn(f, clk, "answered", size, 3*time.Second, 2)
	f.begin("unheard")
	f.begin("unheard")
	if got := f.order(rec); got[0] != 0 {
		t.Fatalf("order %v: want the data shard's holder, which answered and is idle (0), before the parity's, busy with two fetches (1)", got)
	}
}
