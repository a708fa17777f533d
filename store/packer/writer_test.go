package packer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/plug-net/plug/chunker"
	"github.com/plug-net/plug/crypto/cryptotest"
	"github.com/plug-net/plug/store/catalog"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/kv"
	"github.com/plug-net/plug/store/pack"
	"github.com/plug-net/plug/store/seal"
	"github.com/plug-net/plug/store/target"
)

func openKV(t testing.TB) *kv.DB {
	t.Helper()
	db, err := kv.Open(t.TempDir(), kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeOK(t, db) })
	return db
}

// closeOK closes c, failing the test if that fails.
func closeOK(t testing.TB, c io.Closer) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

func memTargets(n int) ([]target.ShardTarget, []*target.MemTarget) {
	var ts []target.ShardTarget
	var ms []*target.MemTarget
	for i := range n {
		m := target.NewMemTarget(fmt.Sprintf("friend-%d", i))
		ts = append(ts, m)
		ms = append(ms, m)
	}
	return ts, ms
}

// chunkInto chunks r and adds every chunk to w as a data blob, returning the
// chunk IDs in order.
func chunkInto(t testing.TB, w *Writer, keyer *chunker.IDKeyer, r io.Reader) []data.ID {
	t.Helper()
	c, err := chunker.New(r, chunker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []data.ID
	for {
		ch, err := c.Next()
		if err == io.EOF {
			return ids
		}
		if err != nil {
			t.Fatal(err)
		}
		id := data.ID(keyer.ID(ch.Data))
		if _, err := w.Add(context.Background(), data.DataBlob, id, ch.Data); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
}

// readsBack checks that the chunks ids, read back through their packs from
// the targets ms, are payload.
func readsBack(t *testing.T, cat *catalog.Catalog, ms []*target.MemTarget, o *seal.Opener, keyer *chunker.IDKeyer, ids []data.ID, payload []byte) {
	t.Helper()
	byName := map[string]target.ShardTarget{}
	for _, x := range ms {
		byName[x.Name()] = x
	}
	var got []byte
	for _, id := range ids {
		got = append(got, readBlob(t, cat, byName, o, keyer, id)...)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("data read back from the packs differs")
	}
}

// readBlob fetches the pack of a chunk from the targets and returns the
// chunk's bytes, checked against its ID.
func readBlob(t *testing.T, cat *catalog.Catalog, targets map[string]target.ShardTarget, o *seal.Opener, keyer *chunker.IDKeyer, id data.ID) []byte {
	t.Helper()
	ref, ok, err := cat.Chunk(id)
	if err != nil || !ok {
		t.Fatalf("chunk %s not indexed (%v)", id.Short(), err)
	}
	rec, ok, err := cat.Pack(ref.Pack)
	if err != nil || !ok {
		t.Fatalf("pack %s of chunk %s not recorded (%v)", ref.Pack.Short(), id.Short(), err)
	}
	shards := make([][]byte, len(rec.Holders))
	for i, h := range rec.Holders {
		shards[i], _ = targets[h].GetShard(t.Context(), rec.Shape.ShardIDs[i])
	}
	plain, bad, err := o.Open(rec.Shape, shards)
	if err != nil || len(bad) > 0 {
		t.Fatalf("open pack %s: %v (bad %v)", rec.ID.Short(), err, bad)
	}
	entries, err := pack.Parse(plain)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.ID == id {
			b := bytes.Clone(plain[e.Offset : e.Offset+e.Length])
			if got := data.ID(keyer.ID(b)); got != id {
				t.Fatalf("chunk %s reads back with ID %s", id.Short(), got.Short())
			}
			return b
		}
	}
	t.Fatalf("chunk %s not in its pack %s", id.Short(), rec.ID.Short())
	return nil
}

func TestWriterStoresAndDeduplicates(t *testing.T) {
	keys := cryptotest.FixedKeys(t)
	keyer := chunker.NewIDKeyer(keys.ChunkIDKey())
	cat := catalog.NewCatalog(openKV(t))
	ts, ms := memTargets(4)
	w, err := NewWriter(t.Context(), Config{Targets: ts, M: 1, Recipient: keys.AgeRecipient(), Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, w)
	if w.K() != 3 {
		t.Fatalf("K() = %d, want 3 with 4 targets and m=1", w.K())
	}
	payload := randBytes(1, 40<<20)
	ids := chunkInto(t, w, keyer, bytes.NewReader(payload))
	if err := w.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st.Packs < 4 || st.Blobs != int64(len(ids)) || st.RawBytes != int64(len(payload)) {
		t.Fatalf("stats %+v for %d chunks of %d bytes", st, len(ids), len(payload))
	}
	// Every target holds exactly one shard of every pack.
	for _, m := range ms {
		if n, _ := m.Len(); int64(n) != st.Packs {
			t.Fatalf("%s holds %d shards for %d packs", m.Name(), n, st.Packs)
		}
	}
	// Every chunk reads back through its pack, even with one target gone.
	ms[1].SetDown(true)
	readsBack(t, cat, ms, seal.NewOpener(keys.AgeIdentity()), keyer, ids, payload)
	ms[1].SetDown(false)

	// The same data again stores nothing new.
	before := w.Stats()
	chunkInto(t, w, keyer, bytes.NewReader(payload))
	if err := w.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	after := w.Stats()
	if after.Packs != before.Packs || after.ShardBytes != before.ShardBytes {
		t.Fatalf("second pass stored data: %+v -> %+v", before, after)
	}
	if after.Duplicates-before.Duplicates != int64(len(ids)) {
		t.Fatalf("second pass: %d duplicates, want %d", after.Duplicates-before.Duplicates, len(ids))
	}
}

// A backup that reads slower than its packs are sealed and sent (many small
// files) keeps one pack buffer busy at a time, and so makes no more than
// that: each is about 12 MiB here, and the owner's memory is counted in
// them.
func TestWriterReusesTheBufferFreedLast(t *testing.T) {
	keys := cryptotest.FixedKeys(t)
	keyer := chunker.NewIDKeyer(keys.ChunkIDKey())
	ts, _ := memTargets(3)
	w, err := NewWriter(t.Context(), Config{Targets: ts, M: 1, Recipient: keys.AgeRecipient(), Catalog: catalog.NewCatalog(openKV(t))})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, w)
	for i := range 5 {
		chunkInto(t, w, keyer, bytes.NewReader(randBytes(uint64(10+i), pack.TargetPackSize-1<<20)))
		// The next pack is read only once this one is stored.
		if err := w.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if st := w.Stats(); st.Packs != 5 {
		t.Fatalf("%d packs stored, want 5", st.Packs)
	}
	w.fmu.Lock()
	made := w.made
	w.fmu.Unlock()
	if made != 1 {
		t.Fatalf("%d pack buffers made for packs stored one after the other, want 1", made)
	}
}

// gatedTarget holds every PutShard until the gate is opened, and tells of
// each pack whose first shard it was given.
type gatedTarget struct {
	*target.MemTarget
	gate    chan struct{}   // closed: puts go through
	arrived chan<- [32]byte // a shard's ID when it arrives, nil: not told
}

func (g *gatedTarget) PutShard(ctx context.Context, id [32]byte, data []byte) error {
	if g.arrived != nil {
		g.arrived <- id
	}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.MemTarget.PutShard(ctx, id, data)
}

// While the friends are slow, a Writer holds at most Buffers pack buffers:
// with the default two, a second full pack is sent beside the first, and
// the data that would fill a third waits, instead of another 12 MB buffer.
func TestWriterBuffersBoundPacksInFlight(t *testing.T) {
	keys := cryptotest.FixedKeys(t)
	keyer := chunker.NewIDKeyer(keys.ChunkIDKey())
	ts, ms := memTargets(3)
	gate := make(chan struct{})
	arrived := make(chan [32]byte, 64)
	ts[0] = &gatedTarget{MemTarget: ms[0], gate: gate, arrived: arrived}
	w, err := NewWriter(t.Context(), Config{Targets: ts, M: 1, Recipient: keys.AgeRecipient(), Catalog: catalog.NewCatalog(openKV(t))})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, w)
	done := make(chan error, 1)
	go func() {
		// Four packs' worth: two are sent while the friend holds them, and
		// the third waits for a buffer.
		c, err := chunker.New(bytes.NewReader(randBytes(7, 4*pack.TargetPackSize)), chunker.Config{})
		for err == nil {
			var ch chunker.Chunk
			if ch, err = c.Next(); err == nil {
				_, err = w.Add(t.Context(), data.DataBlob, data.ID(keyer.ID(ch.Data)), ch.Data)
			}
		}
		if err == io.EOF {
			err = w.Flush(t.Context())
		}
		done <- err
	}()
	// Both buffers' packs reach the slow friend; the writer is then stuck
	// until one of them is stored.
	first, second := <-arrived, <-arrived
	if first == second {
		t.Fatalf("the same shard was put twice")
	}
	w.fmu.Lock()
	made := w.made
	w.fmu.Unlock()
	if made != DefaultBuffers {
		t.Fatalf("%d pack buffers made with two packs held by a friend, want %d", made, DefaultBuffers)
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Packs < 4 {
		t.Fatalf("%d packs stored, want at least 4", st.Packs)
	}
	w.fmu.Lock()
	made = w.made
	w.fmu.Unlock()
	if made > DefaultBuffers {
		t.Fatalf("%d pack buffers made, want at most %d", made, DefaultBuffers)
	}
}

// Metadata blobs go to packs of their own that close at MetaPackSize (plus
// the blob that closes them), not at a data pack's size.
func TestWriterMetaPacksAreSmall(t *testing.T) {
	keys := cryptotest.FixedKeys(t)
	keyer := chunker.NewIDKeyer(keys.ChunkIDKey())
	ts, _ := memTargets(3)
	cat := catalog.NewCatalog(openKV(t))
	w, err := NewWriter(t.Context(), Config{Targets: ts, M: 1, Recipient: keys.AgeRecipient(), Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, w)
	const blob = 100 << 10
	for i := range 60 { // 6 MiB that zstd cannot shrink
		b := randBytes(uint64(100+i), blob)
		if _, err := w.Add(t.Context(), data.TreeBlob, data.ID(keyer.ID(b)), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	err = cat.Packs(func(rec catalog.PackRecord) error {
		if !rec.Meta {
			t.Errorf("pack %s of tree blobs is not marked as metadata", rec.ID.Short())
		}
		sizes = append(sizes, rec.Shape.Size)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sizes) < 3 {
		t.Fatalf("6 MiB of tree blobs went into %d packs of %v bytes, want at least 3 of at most %d", len(sizes), sizes, MetaPackSize)
	}
	for _, n := range sizes {
		if n > MetaPackSize+blob+64<<10 {
			t.Fatalf("a metadata pack of %d bytes (ciphertext), want at most about %d", n, MetaPackSize+blob)
		}
	}
}

func TestWriterTooFewTargets(t *testing.T) {
	keys := cryptotest.FixedKeys(t)
	ts, _ := memTargets(1)
	_, err := NewWriter(t.Context(), Config{Targets: ts, M: 1, Recipient: keys.AgeRecipient(), Catalog: catalog.NewCatalog(openKV(t))})
	if !errors.Is(err, target.ErrTooFewFriends) {
		t.Fatalf("NewWriter with 1 target and m=1: %v, want target.ErrTooFewFriends", err)
	}
}

// failingTarget acknowledges the first n puts, then fails every put, like a
// friend that goes away in the middle of a backup.
type failingTarget struct {
	*target.MemTarget
	left atomic.Int64
}

func (f *failingTarget) PutShard(ctx context.Context, id [32]byte, data []byte) error {
	if f.left.Add(-1) < 0 {
		return errors.New("connection reset")
	}
	return f.MemTarget.PutShard(ctx, id, data)
}

// TestWriterCrashSafeOrder: a pack is indexed only once every target has
// acknowledged its shard. After a failed run, the catalog names no shard that
// is not stored, and a second run stores what the first did not.
func TestWriterCrashSafeOrder(t *testing.T) {
	keys := cryptotest.FixedKeys(t)
	keyer := chunker.NewIDKeyer(keys.ChunkIDKey())
	cat := catalog.NewCatalog(openKV(t))
	ts, ms := memTargets(2) // k=1, m=1: losing one friend leaves too few
	flaky := &failingTarget{MemTarget: ms[1]}
	flaky.left.Store(2)
	ts[1] = flaky
	w, err := NewWriter(t.Context(), Config{Targets: ts, M: 1, Recipient: keys.AgeRecipient(), Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	payload := randBytes(2, 64<<20)
	c, _ := chunker.New(bytes.NewReader(payload), chunker.Config{})
	var addErr error
	for {
		ch, err := c.Next()
		if err == io.EOF {
			break
		}
		id := data.ID(keyer.ID(ch.Data))
		if _, addErr = w.Add(t.Context(), data.DataBlob, id, ch.Data); addErr != nil {
			break
		}
	}
	ferr := w.Flush(t.Context())
	closeOK(t, w)
	if addErr == nil && ferr == nil {
		t.Fatal("backup with a failing friend reported success")
	}
	if err := errors.Join(addErr, ferr); !errors.Is(err, target.ErrTooFewFriends) {
		t.Fatalf("backup with too few friends left: %v, want target.ErrTooFewFriends", err)
	}
	indexed := 0
	err = cat.Packs(func(rec catalog.PackRecord) error {
		indexed++
		for i, h := range rec.Holders {
			var tg *target.MemTarget
			for _, m := range ms {
				if m.Name() == h {
					tg = m
				}
			}
			if ok, _ := tg.HasShard(t.Context(), rec.Shape.ShardIDs[i]); !ok {
				return fmt.Errorf("catalog names shard %d of pack %s on %s, which does not hold it", i, rec.ID.Short(), h)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if indexed > 2 {
		t.Fatalf("%d packs indexed though the third target acknowledged only 2 shards", indexed)
	}

	// The friend is back: a new run completes and indexes every chunk.
	flaky.left.Store(1 << 30)
	w2, err := NewWriter(t.Context(), Config{Targets: ts, M: 1, Recipient: keys.AgeRecipient(), Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, w2)
	all := chunkInto(t, w2, keyer, bytes.NewReader(payload))
	if err := w2.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, id := range all {
		if ok, _ := cat.HasChunk(id); !ok {
			t.Fatalf("chunk %s not indexed after the second run", id.Short())
		}
	}
}

// TestWriterGoesOnWithoutLostFriend: a friend that goes away in the middle
// of a backup is dropped; the backup finishes on the others with one data
// shard fewer per pack, and everything reads back.
func TestWriterGoesOnWithoutLostFriend(t *testing.T) {
	keys := cryptotest.FixedKeys(t)
	keyer := chunker.NewIDKeyer(keys.ChunkIDKey())
	cat := catalog.NewCatalog(openKV(t))
	ts, ms := memTargets(4)
	flaky := &failingTarget{MemTarget: ms[3]}
	flaky.left.Store(3)
	ts[3] = flaky
	var lost []string
	w, err := NewWriter(t.Context(), Config{Targets: ts, M: 1, Recipient: keys.AgeRecipient(), Catalog: cat,
		TargetLost: func(name string, err error, left int) { lost = append(lost, fmt.Sprintf("%s %d", name, left)) }})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, w)
	payload := randBytes(3, 48<<20)
	ids := chunkInto(t, w, keyer, bytes.NewReader(payload))
	if err := w.Flush(t.Context()); err != nil {
		t.Fatalf("backup with one friend lost of four: %v", err)
	}
	if len(lost) != 1 || lost[0] != "friend-3 3" || w.K() != 2 {
		t.Fatalf("lost %v, k now %d; want friend-3 reported once and k=2", lost, w.K())
	}
	readsBack(t, cat, ms, seal.NewOpener(keys.AgeIdentity()), keyer, ids, payload)
	err = cat.Packs(func(rec catalog.PackRecord) error {
		for _, h := range rec.Holders {
			if h == "friend-3" && rec.Shape.K == 2 {
				return fmt.Errorf("pack %s cut for 2 data shards names the lost friend", rec.ID.Short())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	rand.NewChaCha8(s).Read(b)
	return b
}

// TestWriterSpreadsShards: shard i is not always on friend i. Each pack's
// targets are turned by one place more than the last one's, so every
// friend holds data shards (which a restore reads) and parity shards in
// turn, and a restore draws on every friend's uplink.
func TestWriterSpreadsShards(t *testing.T) {
	keys := cryptotest.FixedKeys(t)
	keyer := chunker.NewIDKeyer(keys.ChunkIDKey())
	cat := catalog.NewCatalog(openKV(t))
	ts, ms := memTargets(3)
	w, err := NewWriter(t.Context(), Config{Targets: ts, M: 1, Recipient: keys.AgeRecipient(), Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, w)
	payload := randBytes(5, 60<<20)
	ids := chunkInto(t, w, keyer, bytes.NewReader(payload))
	if err := w.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	parity := map[string]int{}
	packs := 0
	err = cat.Packs(func(rec catalog.PackRecord) error {
		packs++
		if len(rec.Holders) != 3 || len(slices.Compact(slices.Sorted(slices.Values(rec.Holders)))) != 3 {
			return fmt.Errorf("pack %s on %v, want one shard on each of the three friends", rec.ID.Short(), rec.Holders)
		}
		parity[rec.Holders[rec.Shape.K]]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	counts := []int{parity["friend-0"], parity["friend-1"], parity["friend-2"]}
	if packs < 6 || slices.Max(counts)-slices.Min(counts) > 1 {
		t.Fatalf("parity shards of %d packs held %v by friend-0, -1, -2; want each of them the same number, give or take one", packs, counts)
	}
	t.Logf("%d packs; parity shards held %v", packs, counts)
	readsBack(t, cat, ms, seal.NewOpener(keys.AgeIdentity()), keyer, ids, payload)
}
