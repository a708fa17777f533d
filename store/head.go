package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/plug-net/plug/store/catalog"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/head"
	"github.com/plug-net/plug/store/index"
	"github.com/plug-net/plug/store/kv"
	"github.com/plug-net/plug/store/pack"
	"github.com/plug-net/plug/store/packer"
	"github.com/plug-net/plug/store/target"
)

const (
	// maxIndexRefs is how many segments may pile up before they are merged
	// into a fresh full index.
	maxIndexRefs = 64
)

var (
	keyIndexRefs = []byte("index-refs")
	keyState     = []byte("state-refs")
	keyExtra     = []byte("extra")
	keyIndexFull = []byte("index-full") // the next index must describe every pack
)

func (r *Repo) headVersion() uint64 {
	b, err := r.db.Get(kv.Local, keyHeadVer)
	if err != nil || len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// HeadVersion returns the version of the newest head record this plug made
// or recovered (0: none).
func (r *Repo) HeadVersion() uint64 { return r.headVersion() }

func (r *Repo) loadRefs(key []byte) ([]head.BlobRef, error) {
	var refs []head.BlobRef
	b, err := r.db.Get(kv.Local, key)
	if errors.Is(err, kv.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return refs, json.Unmarshal(b, &refs)
}

func (r *Repo) saveRefs(key []byte, refs []head.BlobRef) error {
	b, err := json.Marshal(refs)
	if err != nil {
		return err
	}
	return r.db.Put(kv.Local, key, b)
}

// StateRefs returns the state blobs named by the last head record.
func (r *Repo) StateRefs() ([]head.BlobRef, error) { return r.loadRefs(keyState) }

// Publish writes the pending index segment and a new head record, and gives
// the record to every reachable friend. It is background work that yields
// (see jobLock): it fails with ErrBusy while a job runs or waits, and that
// job publishes a record of its own.
func (r *Repo) Publish(ctx context.Context) error {
	unlock, err := r.lockStep("head record update")
	if err != nil {
		return err
	}
	defer unlock()
	return r.publish(ctx)
}

// publish does Publish under the job lock: it reaches the friends and makes
// a Writer for the index segment.
func (r *Repo) publish(ctx context.Context) error {
	holders, w, err := r.newBackupWriter(ctx, "head record update")
	if err != nil {
		return err
	}
	defer r.closeWriter(w)
	return r.publishWith(ctx, holders, w)
}

// closeWriter releases a backup's pack writer. What it stored was flushed
// and indexed before (or the job failed and says so): a failing close
// loses nothing, but should never happen, so it is logged.
func (r *Repo) closeWriter(w *packer.Writer) {
	if err := w.Close(); err != nil {
		r.log.Warn("could not release a backup's pack writer", "err", err)
	}
}

// publishWith writes the pending index segment with w and gives a new head
// record to holders: a backup publishes with the friends and the Writer it
// already has.
func (r *Repo) publishWith(ctx context.Context, holders []target.Holder, w *packer.Writer) error {
	r.log.Debug("publishing the head record", "friends", len(holders))
	if err := r.writeIndex(ctx, w); err != nil {
		return err
	}
	env, doc, err := r.makeHead()
	if err != nil {
		return err
	}
	gave, err := r.giveHead(ctx, env, holders)
	r.log.Info("head record published", "version", doc.Version, "snapshots", len(doc.Snapshots), "packs", len(doc.Packs), "friends_holding_it", gave)
	return err
}

// segmentSize bounds one index segment, so that one is one blob (a
// variable for tests).
var segmentSize = 4 << 20

// writeIndex stores an index segment for the pending packs (or a fresh full
// index when segments have piled up) and records its blobs. It holds one
// segment at a time, whatever the number of chunks.
func (r *Repo) writeIndex(ctx context.Context, w *packer.Writer) error {
	pend, err := r.cat.PendingPacks()
	if err != nil {
		return err
	}
	refs, err := r.loadRefs(keyIndexRefs)
	if err != nil {
		return err
	}
	forced, _ := r.db.Has(kv.Local, keyIndexFull)
	if len(pend) == 0 && !forced {
		return nil
	}
	var ids []data.ID
	seg := index.Segmenter{Max: segmentSize, Emit: func(s []byte) error {
		id := data.ID(r.keyer.ID(s))
		if _, err := w.Add(ctx, data.IndexBlob, id, s); err != nil {
			return err
		}
		ids = append(ids, id)
		return nil
	}}
	if full := len(refs) >= maxIndexRefs || forced; full {
		refs = nil
		err = r.cat.EachPacked(segmentSize, seg.AddPacked)
	} else {
		err = r.cat.EachPending(func(_ data.ID, packed []byte) error { return seg.AddPacked(packed) })
	}
	if err != nil {
		return err
	}
	if err := seg.Flush(); err != nil {
		return err
	}
	if err := w.Flush(ctx); err != nil {
		return err
	}
	for _, id := range ids {
		ref, ok, err := r.cat.Chunk(id)
		if err != nil || !ok {
			return fmt.Errorf("index segment %s not indexed after storing it (%v)", id.Short(), err)
		}
		refs = append(refs, head.BlobRef{ID: id, Pack: ref.Pack, Compression: ref.Compression, Offset: ref.Offset, Length: ref.Length, RawLength: ref.RawLength})
	}
	if err := r.saveRefs(keyIndexRefs, refs); err != nil {
		return err
	}
	// Then the pending marks: should this stop half-way, the next segment
	// describes some packs twice, which is harmless.
	if err := r.cat.ClearPending(pend); err != nil {
		return err
	}
	return r.db.Delete(kv.Local, keyIndexFull)
}

// makeHead builds, encrypts and signs the next head record, and keeps it
// locally (synced) before anyone else gets it.
func (r *Repo) makeHead() ([]byte, head.Doc, error) {
	doc := head.Doc{
		Format:  head.Format,
		Version: r.headVersion() + 1,
		Time:    time.Now().UTC(),
		Owner:   r.keys.PeerID().String(),
		M:       r.parity(),
		Friends: r.net.Friends(),
	}
	var err error
	if doc.Snapshots, err = r.Snapshots(); err != nil {
		return nil, doc, err
	}
	if err := r.cat.Packs(func(p catalog.PackRecord) error { doc.Packs = append(doc.Packs, p); return nil }); err != nil {
		return nil, doc, err
	}
	if doc.Index, err = r.loadRefs(keyIndexRefs); err != nil {
		return nil, doc, err
	}
	if doc.State, err = r.loadRefs(keyState); err != nil {
		return nil, doc, err
	}
	if b, err := r.db.Get(kv.Local, keyExtra); err == nil {
		if err := json.Unmarshal(b, &doc.Extra); err != nil {
			// The record goes out without them rather than not at all.
			r.log.Warn("the settings kept for the head record (the backup sources among them) are damaged and were left out of it; set them again", "err", err)
			doc.Extra = nil
		}
	}
	env, err := head.Seal(doc, r.keys)
	if err != nil {
		return nil, doc, err
	}
	var ver [8]byte
	binary.BigEndian.PutUint64(ver[:], doc.Version)
	err = r.db.UpdateSync(func(tx *kv.Tx) error {
		if err := tx.Put(kv.Heads, []byte(r.keys.PeerID()), env); err != nil {
			return err
		}
		if err := tx.Put(kv.Local, keyHeadVer, ver[:]); err != nil {
			return err
		}
		return tx.Delete(kv.Local, keyDirty)
	})
	return env, doc, err
}

// giveHead hands the head record to the holders, all at once.
func (r *Repo) giveHead(ctx context.Context, env []byte, holders []target.Holder) (int, error) {
	var (
		mu   sync.Mutex
		gave int
		errs []error
		wg   sync.WaitGroup
	)
	for _, h := range holders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			err := h.PutHead(cctx, env)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			gave++
		}()
	}
	wg.Wait()
	if gave == 0 && len(holders) > 0 {
		return 0, fmt.Errorf("no friend took the head record: %w", errors.Join(errs...))
	}
	return gave, nil
}

// OpenHeadRecord checks a head envelope from a friend (signed by this plug's
// identity) and decrypts it.
func (r *Repo) OpenHeadRecord(env []byte) (head.Doc, error) { return head.Open(env, r.keys) }

// ErrNothingToRecover is returned when no friend keeps a head record of
// this plug.
var ErrNothingToRecover = errors.New("no friend holds a head record of this plug")

// Recover looks for the friends that hold this plug's data (the known ones
// and, through the DHT rendezvous key, any others), takes the newest valid
// head record among them, and rebuilds the catalog from it: friends, packs,
// snapshots and the chunk index. It returns the recovered document.
func (r *Repo) Recover(ctx context.Context) (head.Doc, error) {
	unlock, err := r.lock(ctx, "recovery")
	if err != nil {
		return head.Doc{}, err
	}
	defer unlock()
	seen := map[string]bool{}
	var holders []target.Holder
	for _, h := range r.net.Reachable(ctx) {
		seen[h.Name()] = true
		holders = append(holders, h)
	}
	for _, h := range r.net.FindHolders(ctx) {
		if !seen[h.Name()] {
			seen[h.Name()] = true
			holders = append(holders, h)
		}
	}
	var (
		mu   sync.Mutex
		best head.Doc
		env  []byte
		wg   sync.WaitGroup
		bad  []error
	)
	for _, h := range holders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			e, err := h.GetHead(cctx)
			if err != nil {
				mu.Lock()
				bad = append(bad, err)
				mu.Unlock()
				return
			}
			doc, err := r.OpenHeadRecord(e)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				r.log.Warn("a friend gave a bad head record", "friend", h.Name(), "err", err)
				bad = append(bad, err)
				return
			}
			if doc.Version > best.Version {
				best, env = doc, e
			}
		}()
	}
	wg.Wait()
	if env == nil {
		if len(holders) == 0 {
			return head.Doc{}, fmt.Errorf("%w: no friend found yet", ErrNothingToRecover)
		}
		return head.Doc{}, fmt.Errorf("%w (%d asked): %w", ErrNothingToRecover, len(holders), errors.Join(bad...))
	}
	if best.Version <= r.headVersion() {
		return best, nil // nothing newer than what this plug has
	}
	if err := r.apply(ctx, best, env); err != nil {
		return best, err
	}
	r.log.Info("recovered from the head record", "version", best.Version, "snapshots", len(best.Snapshots), "packs", len(best.Packs), "friends", len(best.Friends))
	return best, nil
}

// apply rebuilds the catalog from a head record.
func (r *Repo) apply(ctx context.Context, doc head.Doc, env []byte) error {
	if _, err := r.net.ImportFriends(doc.Friends); err != nil {
		return err
	}
	for _, p := range doc.Packs {
		if err := r.cat.PutPack(p); err != nil {
			return err
		}
	}
	// The index segments rebuild the chunk index.
	for _, ref := range doc.Index {
		rec, ok := doc.FindPack(ref.Pack)
		if !ok {
			return fmt.Errorf("index segment %s is in pack %s, which the head record does not list", ref.ID.Short(), ref.Pack.Short())
		}
		plain, _, err := r.fetcher.Fetch(ctx, rec)
		if err != nil {
			return fmt.Errorf("fetch index segment %s: %w", ref.ID.Short(), err)
		}
		seg, err := pack.Extract(plain, pack.Entry{Type: data.IndexBlob, Compression: ref.Compression, ID: ref.ID, Offset: ref.Offset, Length: ref.Length, RawLength: ref.RawLength}, r.keyer)
		if err != nil {
			return err
		}
		packs, err := index.Decode(seg)
		if err != nil {
			return err
		}
		known := make(map[data.ID]bool, len(doc.Packs))
		for _, p := range doc.Packs {
			known[p.ID] = true
		}
		// Packs pruned or repacked since that segment was written are left
		// out.
		packs = slices.DeleteFunc(packs, func(pe index.Packed) bool { return !known[pe.Pack] })
		if err := r.cat.IndexPacks(packs); err != nil {
			return err
		}
		if err := r.cat.PutChunk(ref.ID, catalog.ChunkRef{Pack: ref.Pack, Type: data.IndexBlob, Compression: ref.Compression, Offset: ref.Offset, Length: ref.Length, RawLength: ref.RawLength}); err != nil {
			return err
		}
	}
	for _, s := range doc.Snapshots {
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		if err := r.db.Put(kv.Snapshots, s.ID[:], b); err != nil {
			return err
		}
	}
	if err := r.saveRefs(keyIndexRefs, doc.Index); err != nil {
		return err
	}
	if err := r.saveRefs(keyState, doc.State); err != nil {
		return err
	}
	if doc.Extra != nil {
		b, err := json.Marshal(doc.Extra)
		if err != nil {
			return err
		}
		if err := r.db.Put(kv.Local, keyExtra, b); err != nil {
			return err
		}
	}
	var ver [8]byte
	binary.BigEndian.PutUint64(ver[:], doc.Version)
	return r.db.UpdateSync(func(tx *kv.Tx) error {
		if err := tx.Put(kv.Heads, []byte(r.keys.PeerID()), env); err != nil {
			return err
		}
		return tx.Put(kv.Local, keyHeadVer, ver[:])
	})
}

// SetExtra records a small named setting that travels in the head record
// (the backup sources, for one), and marks the catalog for a new record.
func (r *Repo) SetExtra(name string, v any) error {
	m := map[string]json.RawMessage{}
	if b, err := r.db.Get(kv.Local, keyExtra); err == nil {
		if err := json.Unmarshal(b, &m); err != nil {
			// Damaged: start afresh, or no setting could ever be saved again.
			r.log.Warn("the settings kept for the head record are damaged; starting them afresh", "setting", name, "err", err)
			m = map[string]json.RawMessage{}
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	m[name] = b
	mb, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := r.db.Put(kv.Local, keyExtra, mb); err != nil {
		return err
	}
	return r.markDirty()
}

// Extra reads a setting recorded with SetExtra into v; ok is false when it
// was never set.
func (r *Repo) Extra(name string, v any) (ok bool, err error) {
	b, err := r.db.Get(kv.Local, keyExtra)
	if errors.Is(err, kv.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &m); err != nil {
		return false, err
	}
	raw, ok := m[name]
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(raw, v)
}

// Job returns what holds the job lock now, or "".
func (r *Repo) Job() string { return r.jobs.job() }
