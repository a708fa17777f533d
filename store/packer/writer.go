package packer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/plug-net/plug/store/catalog"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/pack"
	"github.com/plug-net/plug/store/seal"
	"github.com/plug-net/plug/store/target"
)

// Index is what a Writer needs of the catalog: deduplication, and
// recording the packs every target has acknowledged.
type Index interface {
	HasChunk(id data.ID) (bool, error)
	AddPack(rec catalog.PackRecord, entries []pack.Entry) error
}

// Config configures a Writer.
type Config struct {
	// Targets receive one shard each: k = len(Targets) - M data shards.
	Targets []target.ShardTarget
	// M is the number of parity shards: how many targets may be lost.
	M int
	// Recipient is the owner's age recipient.
	Recipient age.Recipient
	// Catalog records stored packs and chunks, and answers deduplication.
	Catalog Index
	// Buffers is the number of pack buffers: the data pack being filled
	// and the packs being sealed and sent. 0, or less than 2, means 2: one
	// pack fills while the one before it is sealed and sent (and a
	// metadata pack always finds a buffer to be sealed in).
	Buffers int
	// TargetLost, if set, is told when a target fails a put: the Writer
	// goes on without it (and with one data shard fewer per pack) as long as
	// at least M+1 targets remain.
	TargetLost func(name string, err error, left int)
}

// Stats counts what a Writer stored.
type Stats struct {
	Blobs      int64 // new blobs stored
	Duplicates int64 // blobs skipped because already stored
	RawBytes   int64 // raw size of the new blobs
	Packs      int64 // packs stored
	ShardBytes int64 // bytes sent to targets
}

// Writer deduplicates blobs, gathers them into packs, seals each pack into
// shards, puts one shard on each target and, once every target has
// acknowledged its shard, records the pack in the catalog. Packs are sealed
// and sent in parallel.
//
// Memory is bounded whatever the size of the data: at most Buffers pack
// buffers of about (k+m)/k × TargetPackSize (the data pack being filled and
// the packs being sealed and sent; each is encrypted in place, see
// seal.Sealer), and one buffer for the metadata pack being filled. A buffer
// is made only when every one made so far is busy, and the one freed last is
// used first, so a backup whose packs are stored as fast as they fill makes
// fewer.
//
// Two buffers are the default: 12.3 MB each with three friends, the largest
// part of the owner's heap while it backs up. A third one (the earlier
// default on two cores) cost a backup of a million small files 9% more CPU
// in collections under the daemon's memory limit, and made no backup faster.
//
// Add and Flush are safe for concurrent use.
type Writer struct {
	cfg  Config
	zenc *zstd.Encoder

	tmu     sync.Mutex // guards targets and k
	targets []target.ShardTarget
	k       int

	// turn the targets by one place per data pack and per metadata pack;
	// see spread.
	turn [2]atomic.Uint64

	mu   sync.Mutex // guards open and meta
	open *slot      // the data pack being filled
	meta *pack.Builder

	pmu     sync.Mutex // guards pending
	pending map[data.ID]struct{}

	slots  chan struct{} // one token per pack buffer that may be taken
	fmu    sync.Mutex    // guards free and made
	free   []*slot       // pack buffers made and free, the last freed last
	made   int           // pack buffers made
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelCauseFunc

	stats struct{ blobs, dups, raw, packs, shardBytes atomic.Int64 }
}

// slot is one pack buffer: a seal.Sealer and the builder that fills its buffer.
type slot struct {
	s *seal.Sealer
	b *pack.Builder
}

// NewWriter returns a Writer. Uploads run under ctx; canceling it fails the
// Writer.
func NewWriter(ctx context.Context, cfg Config) (*Writer, error) {
	k := len(cfg.Targets) - cfg.M
	if cfg.M < 0 || cfg.M > seal.MaxParityShards {
		return nil, fmt.Errorf("surviving the loss of %d friends is not supported: at most %d", cfg.M, seal.MaxParityShards)
	}
	if k < 1 {
		return nil, fmt.Errorf("%w: %d, and surviving the loss of %d takes at least %d: pair with %d more (plug invite)",
			target.ErrTooFewFriends, len(cfg.Targets), cfg.M, cfg.M+1, 1-k)
	}
	if k > seal.MaxDataShards {
		k = seal.MaxDataShards
		cfg.Targets = cfg.Targets[:k+cfg.M]
	}
	if cfg.Catalog == nil || cfg.Recipient == nil {
		return nil, errors.New("new writer: catalog and recipient are required")
	}
	cfg.Buffers = max(cfg.Buffers, DefaultBuffers)
	// A 1 MiB window: trees and index segments find their matches close by,
	// and the default 8 MiB one kept an 8 MB history for the whole backup.
	// The fastest level: on a tree of 1,000 files it takes 0.57 ms where the
	// default takes 0.85, and its output is no larger (20.8 KB of 219 KB
	// against 22.5).
	zenc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(1<<20))
	if err != nil {
		return nil, fmt.Errorf("start the compressor: %w", err)
	}
	w := &Writer{
		cfg:     cfg,
		targets: slices.Clone(cfg.Targets),
		k:       k,
		zenc:    zenc,
		pending: make(map[data.ID]struct{}),
		slots:   make(chan struct{}, cfg.Buffers),
	}
	for range cfg.Buffers {
		w.slots <- struct{}{}
	}
	for i := range w.turn {
		w.turn[i].Store(rand.Uint64()) // a small backup's packs start anywhere too
	}
	w.ctx, w.cancel = context.WithCancelCause(ctx)
	return w, nil
}

// M returns the parity shards of the packs this writer seals.
func (w *Writer) M() int { return w.cfg.M }

// K returns the number of data shards per pack.
func (w *Writer) K() int {
	w.tmu.Lock()
	defer w.tmu.Unlock()
	return w.k
}

// placement returns the current targets and k.
func (w *Writer) placement() ([]target.ShardTarget, int) {
	w.tmu.Lock()
	defer w.tmu.Unlock()
	return w.targets, w.k
}

// spread returns the targets of the next pack, in the order its shards go
// to them: the targets turned by one place more than for the pack before.
// A restore reads the k data shards of each pack and a parity shard only
// when a data shard fails, so with shard i always on target i the last m
// friends would send nothing and a restore would draw on k friends' uplinks
// of k+m. Turned, every friend holds the data shards of k packs in k+m.
// Data and metadata packs take turns apart, so that the few metadata packs
// among the data packs cannot leave the data packs in step.
func (w *Writer) spread(targets []target.ShardTarget, meta bool) []target.ShardTarget {
	turn := &w.turn[0]
	if meta {
		turn = &w.turn[1]
	}
	r := int(turn.Add(1) % uint64(len(targets)))
	return slices.Concat(targets[r:], targets[:r])
}

// drop removes failed targets; it returns an error when too few remain.
func (w *Writer) drop(failed map[string]error) error {
	w.tmu.Lock()
	defer w.tmu.Unlock()
	var kept []target.ShardTarget
	for _, t := range w.targets {
		if err, bad := failed[t.Name()]; bad {
			if w.cfg.TargetLost != nil {
				w.cfg.TargetLost(t.Name(), err, len(w.targets)-len(failed))
			}
			continue
		}
		kept = append(kept, t)
	}
	w.targets = kept
	w.k = min(len(kept)-w.cfg.M, seal.MaxDataShards)
	if w.k < 1 {
		return fmt.Errorf("%w: %d went away during the backup and %d remain, and surviving the loss of %d takes at least %d: %w",
			target.ErrTooFewFriends, len(failed), len(kept), w.cfg.M, w.cfg.M+1, errors.Join(mapValues(failed)...))
	}
	return nil
}

func mapValues(m map[string]error) []error {
	out := make([]error, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// Stats returns what the Writer has stored so far.
func (w *Writer) Stats() Stats {
	return Stats{
		Blobs:      w.stats.blobs.Load(),
		Duplicates: w.stats.dups.Load(),
		RawBytes:   w.stats.raw.Load(),
		Packs:      w.stats.packs.Load(),
		ShardBytes: w.stats.shardBytes.Load(),
	}
}

// err returns the error that failed the Writer, if any.
func (w *Writer) err() error {
	if w.ctx.Err() != nil {
		return context.Cause(w.ctx)
	}
	return nil
}

// Has reports whether a blob is stored or on its way (deduplication).
func (w *Writer) Has(id data.ID) (bool, error) {
	w.pmu.Lock()
	_, ok := w.pending[id]
	w.pmu.Unlock()
	if ok {
		return true, nil
	}
	return w.cfg.Catalog.HasChunk(id)
}

// Add stores a blob unless it is already stored or on its way; added says
// which. blob is copied before Add returns. Metadata blobs (trees, index,
// state) are compressed with zstd.
func (w *Writer) Add(ctx context.Context, t data.BlobType, id data.ID, blob []byte) (added bool, err error) {
	if err := w.err(); err != nil {
		return false, err
	}
	if len(blob) > pack.MaxBlobSize {
		return false, fmt.Errorf("add blob %s: %d bytes, more than %d", id.Short(), len(blob), pack.MaxBlobSize)
	}
	w.pmu.Lock()
	if _, ok := w.pending[id]; ok {
		w.pmu.Unlock()
		w.stats.dups.Add(1)
		return false, nil
	}
	w.pending[id] = struct{}{}
	w.pmu.Unlock()
	if ok, err := w.cfg.Catalog.HasChunk(id); err != nil || ok {
		w.unpend(id)
		if ok {
			w.stats.dups.Add(1)
		}
		return false, err
	}

	stored, comp := blob, data.NoCompression
	if t != data.DataBlob {
		// Into a buffer of the blob's size: EncodeAll's own (with low
		// memory) grows block by block, copied each time, and a heap
		// profile of a million files' backup found 8 MB of them live.
		if z := w.zenc.EncodeAll(blob, make([]byte, 0, len(blob))); len(z) < len(blob) {
			stored, comp = z, data.Zstd
		}
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	var b *pack.Builder
	if t == data.DataBlob {
		if w.open != nil && !fits(w.open.b, len(stored)) {
			sl := w.open
			w.open = nil
			if err := w.ship(ctx, sl, sl.b, false); err != nil {
				w.unpend(id)
				return false, err
			}
		}
		if w.open == nil {
			sl, err := w.takeSlot(ctx)
			if err != nil {
				w.unpend(id)
				return false, err
			}
			sl.b = sl.s.NewBuilder(w.K(), w.cfg.M)
			w.open = sl
		}
		b = w.open.b
	} else {
		if w.meta != nil && !metaFits(w.meta, len(stored)) {
			if err := w.shipMeta(ctx); err != nil {
				w.unpend(id)
				return false, err
			}
		}
		if w.meta == nil {
			// Made at the size the pack may reach, trailer included: grown
			// by append it is copied at each step, and a heap profile of a
			// million files' backup found 9 to 13 MB in these builders.
			w.meta = pack.NewBuilder(pack.PlainSize(max(MetaPackSize, len(stored)), pack.MaxBlobsPerPack))
		}
		b = w.meta
	}
	b.Add(t, comp, id, stored, len(blob))
	w.stats.blobs.Add(1)
	w.stats.raw.Add(int64(len(blob)))
	return true, nil
}

func fits(b *pack.Builder, n int) bool { return b.Fits(n) && b.Count() < pack.MaxBlobsPerPack }

// DefaultBuffers is the number of pack buffers a Writer keeps when its
// Config does not say (and the fewest it keeps).
const DefaultBuffers = 2

// MetaPackSize is the size of blobs at which a metadata pack closes, a
// quarter of a data pack's: its builder grows in the heap beside the data
// packs' buffers for the whole backup, and a tree loaded for browsing or
// restoring fetches its whole pack.
const MetaPackSize = 2 << 20

// metaFits reports whether a metadata blob of n bytes fits the metadata pack
// being filled.
func metaFits(b *pack.Builder, n int) bool {
	return b.Count() == 0 || (b.Len()+n <= MetaPackSize && b.Count() < pack.MaxBlobsPerPack)
}

func (w *Writer) unpend(ids ...data.ID) {
	w.pmu.Lock()
	for _, id := range ids {
		delete(w.pending, id)
	}
	w.pmu.Unlock()
}

// takeSlot waits for a free pack buffer: while every buffer is in use,
// that wait is what bounds memory and slows the producer to the pace of the
// friends. It takes the buffer freed last, and makes one only when none is
// free.
func (w *Writer) takeSlot(ctx context.Context) (*slot, error) {
	select {
	case <-w.slots:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-w.ctx.Done():
		return nil, context.Cause(w.ctx)
	}
	w.fmu.Lock()
	defer w.fmu.Unlock()
	if n := len(w.free); n > 0 {
		sl := w.free[n-1]
		w.free = w.free[:n-1]
		return sl, nil
	}
	w.made++
	return &slot{s: seal.NewSealer(w.cfg.Recipient)}, nil // its buffer is made on first use
}

// freeSlot gives back a pack buffer taken with takeSlot.
func (w *Writer) freeSlot(sl *slot) {
	sl.b = nil
	w.fmu.Lock()
	w.free = append(w.free, sl)
	w.fmu.Unlock()
	w.slots <- struct{}{}
}

// shipMeta ships the metadata pack being filled, with a slot of its own for
// sealing (its plaintext is copied in).
func (w *Writer) shipMeta(ctx context.Context) error {
	b := w.meta
	w.meta = nil
	sl, err := w.takeSlot(ctx)
	if err != nil {
		return err
	}
	return w.ship(ctx, sl, b, true)
}

// ship seals and sends the pack in b in the background, in slot sl, which it
// frees when done.
func (w *Writer) ship(_ context.Context, sl *slot, b *pack.Builder, meta bool) error {
	w.wg.Add(1)
	go func() {
		defer func() { w.freeSlot(sl); w.wg.Done() }()
		ids := make([]data.ID, 0, b.Count())
		for _, e := range b.Entries() {
			ids = append(ids, e.ID)
		}
		if err := w.storePack(sl.s, b, meta); err != nil {
			w.cancel(err)
		}
		w.unpend(ids...)
	}()
	return nil
}

func (w *Writer) storePack(s *seal.Sealer, b *pack.Builder, meta bool) error {
	entries := append([]pack.Entry(nil), b.Entries()...)
	targets, k := w.placement()
	targets = w.spread(targets, meta)
	sealed, err := s.Seal(b.Finish(), k, w.cfg.M)
	if err != nil {
		return err
	}
	for {
		failed := w.putShards(sealed, targets)
		if len(failed) == 0 {
			break
		}
		if w.ctx.Err() != nil {
			return context.Cause(w.ctx)
		}
		// Friends went away: go on with the others, cutting this pack's
		// ciphertext again for one data shard fewer per lost friend. What
		// the others already stored of it is left for prune.
		if err := w.drop(failed); err != nil {
			return err
		}
		targets, k = w.placement()
		targets = w.spread(targets, meta)
		if sealed, err = seal.Recut(sealed, k, w.cfg.M); err != nil {
			return err
		}
	}
	rec := catalog.PackRecord{ID: sealed.ID, Shape: sealed.Shape, Blobs: len(entries), Meta: meta, Created: time.Now().UTC()}
	for i := range sealed.Shards {
		rec.Holders = append(rec.Holders, targets[i].Name())
	}
	if err := w.cfg.Catalog.AddPack(rec, entries); err != nil {
		return err
	}
	w.stats.packs.Add(1)
	return nil
}

// putShards sends shard i to targets[i], all at once, and returns when every
// target has answered: the failed ones, by name.
func (w *Writer) putShards(s *seal.Sealed, targets []target.ShardTarget) map[string]error {
	errs := make([]error, len(s.Shards))
	var wg sync.WaitGroup
	for i, shard := range s.Shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := targets[i]
			if err := t.PutShard(w.ctx, s.Shape.ShardIDs[i], shard); err != nil {
				errs[i] = fmt.Errorf("put shard %s of pack %s to %s: %w", s.Shape.ShardIDs[i].Short(), s.ID.Short(), t.Name(), err)
				return
			}
			w.stats.shardBytes.Add(int64(len(shard)))
		}()
	}
	wg.Wait()
	var failed map[string]error
	for i, err := range errs {
		if err != nil {
			if failed == nil {
				failed = make(map[string]error)
			}
			failed[targets[i].Name()] = err
		}
	}
	return failed
}

// Flush ships the packs being filled and waits until every pack is stored
// and indexed. It returns the first error of any upload.
func (w *Writer) Flush(ctx context.Context) error {
	w.mu.Lock()
	if sl := w.open; sl != nil {
		w.open = nil
		if sl.b.Count() > 0 {
			if err := w.ship(ctx, sl, sl.b, false); err != nil {
				w.mu.Unlock()
				return err
			}
		} else {
			w.freeSlot(sl)
		}
	}
	if w.meta != nil && w.meta.Count() > 0 {
		if err := w.shipMeta(ctx); err != nil {
			w.mu.Unlock()
			return err
		}
	}
	w.mu.Unlock()
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return w.err()
}

// Close releases the Writer; packs not flushed are dropped (their blobs were
// never indexed, so a later backup stores them again).
func (w *Writer) Close() error {
	w.cancel(errors.New("writer closed"))
	w.wg.Wait()
	return w.zenc.Close()
}
