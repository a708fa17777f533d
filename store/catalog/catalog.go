package catalog

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/index"
	"github.com/plug-net/plug/store/kv"
	"github.com/plug-net/plug/store/pack"
	"github.com/plug-net/plug/store/seal"
)

// ChunkRef says where a chunk lives: which pack, and where in its plaintext.
type ChunkRef struct {
	Pack        data.ID
	Type        data.BlobType
	Compression data.Compression
	Offset      uint32
	Length      uint32
	RawLength   uint32
}

const chunkRefSize = 32 + 1 + 1 + 4 + 4 + 4

func (r ChunkRef) marshal() []byte {
	b := make([]byte, chunkRefSize)
	copy(b, r.Pack[:])
	b[32] = byte(r.Type)
	b[33] = byte(r.Compression)
	binary.LittleEndian.PutUint32(b[34:], r.Offset)
	binary.LittleEndian.PutUint32(b[38:], r.Length)
	binary.LittleEndian.PutUint32(b[42:], r.RawLength)
	return b
}

func unmarshalChunkRef(b []byte) (ChunkRef, error) {
	var r ChunkRef
	if len(b) != chunkRefSize {
		return r, fmt.Errorf("chunk index entry of %d bytes, want %d", len(b), chunkRefSize)
	}
	copy(r.Pack[:], b)
	r.Type = data.BlobType(b[32])
	r.Compression = data.Compression(b[33])
	r.Offset = binary.LittleEndian.Uint32(b[34:])
	r.Length = binary.LittleEndian.Uint32(b[38:])
	r.RawLength = binary.LittleEndian.Uint32(b[42:])
	return r, nil
}

// ErrUnknownChunk is wrapped when the catalog does not know a chunk.
var ErrUnknownChunk = errors.New("chunk not in the catalog")

// PackRecord is the catalog's entry for a stored pack: its shape and which
// target holds each shard.
type PackRecord struct {
	ID      data.ID    `json:"id"`
	Shape   seal.Shape `json:"shape"`
	Holders []string   `json:"holders"` // Holders[i] holds shard i
	Blobs   int        `json:"blobs"`
	Meta    bool       `json:"meta,omitempty"` // trees, index or state: no file data
	Created time.Time  `json:"created"`
}

// Catalog is the owner's record, in the local store, of every stored chunk
// and pack. It is rebuilt from the head record after a recovery.
type Catalog struct {
	db *kv.DB
}

// NewCatalog returns the catalog kept in db.
func NewCatalog(db *kv.DB) *Catalog { return &Catalog{db: db} }

// Chunk returns where a chunk is stored; ok is false for an unknown chunk.
func (c *Catalog) Chunk(id data.ID) (ref ChunkRef, ok bool, err error) {
	b, err := c.db.Get(kv.Chunks, id[:])
	if errors.Is(err, kv.ErrNotFound) {
		return ref, false, nil
	}
	if err != nil {
		return ref, false, fmt.Errorf("look up chunk %s: %w", id.Short(), err)
	}
	ref, err = unmarshalChunkRef(b)
	if err != nil {
		return ref, false, fmt.Errorf("look up chunk %s: %w", id.Short(), err)
	}
	return ref, true, nil
}

// HasChunk reports whether a chunk is stored.
func (c *Catalog) HasChunk(id data.ID) (bool, error) {
	ok, err := c.db.Has(kv.Chunks, id[:])
	if err != nil {
		return false, fmt.Errorf("look up chunk %s: %w", id.Short(), err)
	}
	return ok, nil
}

// AddPack records a pack whose shards every holder has acknowledged, with
// the chunks it holds, in one transaction: a chunk is never indexed without
// its pack. It is not synced; whatever later refers to the pack (a
// snapshot) is written with a sync, which makes this durable too.
func (c *Catalog) AddPack(rec PackRecord, entries []pack.Entry) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	err = c.db.Update(func(tx *kv.Tx) error {
		if err := tx.Put(kv.Packs, rec.ID[:], b); err != nil {
			return err
		}
		onlyIndex := true
		for _, e := range entries {
			ref := ChunkRef{Pack: rec.ID, Type: e.Type, Compression: e.Compression, Offset: e.Offset, Length: e.Length, RawLength: e.RawLength}
			if err := tx.Put(kv.Chunks, e.ID[:], ref.marshal()); err != nil {
				return err
			}
			onlyIndex = onlyIndex && e.Type == data.IndexBlob
		}
		if onlyIndex {
			return nil // the head record names index blobs directly
		}
		// The next head record's index segment will describe this pack.
		return tx.Put(kv.Local, pendingKey(rec.ID), index.AppendPacked(nil, index.Packed{Pack: rec.ID, Entries: entries}))
	})
	if err != nil {
		return fmt.Errorf("index pack %s: %w", rec.ID.Short(), err)
	}
	return nil
}

var pendingPrefix = []byte("pend/")

func pendingKey(id data.ID) []byte { return append(append([]byte(nil), pendingPrefix...), id[:]...) }

// PendingPacks returns the packs not yet described by an index segment.
func (c *Catalog) PendingPacks() ([]data.ID, error) {
	var out []data.ID
	err := c.db.Iterate(kv.Local, kv.IterOptions{Prefix: pendingPrefix, KeysOnly: true}, func(k, _ []byte) error {
		if len(k) != len(pendingPrefix)+len(data.ID{}) {
			return fmt.Errorf("damaged pending-pack mark %x", k)
		}
		out = append(out, data.ID(k[len(pendingPrefix):]))
		return nil
	})
	return out, err
}

// pendingPage is about how many bytes of pending packs EachPending reads
// in one transaction.
const pendingPage = 1 << 20

// EachPending calls fn with each pack not yet described by an index
// segment, in pack-ID order, in the form index.AppendPacked gives (checked).
// It reads them a page at a time and calls fn outside any transaction, so
// that fn may take its time (store a segment with friends): what it holds
// does not grow with the number of packs. packed is valid only during the
// call.
func (c *Catalog) EachPending(fn func(id data.ID, packed []byte) error) error {
	var (
		start []byte
		buf   []byte
		ends  []int
	)
	for {
		buf, ends = buf[:0], ends[:0]
		more := false
		err := c.db.Iterate(kv.Local, kv.IterOptions{Prefix: pendingPrefix, Start: start}, func(k, v []byte) error {
			if len(buf) >= pendingPage {
				start, more = append(start[:0], k...), true
				return kv.ErrStop
			}
			buf = append(buf, v...)
			ends = append(ends, len(buf))
			return nil
		})
		if err != nil {
			return err
		}
		off := 0
		for _, end := range ends {
			id, err := index.CheckPacked(buf[off:end])
			if err != nil {
				return fmt.Errorf("damaged pending-pack record: %w", err)
			}
			if err := fn(id, buf[off:end]); err != nil {
				return err
			}
			off = end
		}
		if !more {
			return nil
		}
	}
}

// Pack returns a pack's record.
func (c *Catalog) Pack(id data.ID) (PackRecord, bool, error) {
	var rec PackRecord
	b, err := c.db.Get(kv.Packs, id[:])
	if errors.Is(err, kv.ErrNotFound) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, fmt.Errorf("look up pack %s: %w", id.Short(), err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, false, fmt.Errorf("look up pack %s: damaged record: %w", id.Short(), err)
	}
	return rec, true, nil
}

// PutPack replaces a pack's record (after a repair moved shards).
func (c *Catalog) PutPack(rec PackRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return c.db.Put(kv.Packs, rec.ID[:], b)
}

// Packs calls fn for every pack record.
func (c *Catalog) Packs(fn func(PackRecord) error) error {
	return c.db.Iterate(kv.Packs, kv.IterOptions{}, func(_, v []byte) error {
		var rec PackRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("damaged pack record: %w", err)
		}
		return fn(rec)
	})
}

// Sync makes every catalog write so far durable.
func (c *Catalog) Sync() error { return c.db.Sync() }

// ClearPending forgets that packs await an index segment (one now
// describes them).
func (c *Catalog) ClearPending(packs []data.ID) error {
	return c.db.Batch(func(b *kv.Batch) error {
		for _, id := range packs {
			if err := b.Delete(kv.Local, pendingKey(id)); err != nil {
				return err
			}
		}
		return nil
	})
}

// EachPacked calls fn with every pack's entries, from the chunk index, index
// blobs left out (the head record names them), in the form
// index.AppendPacked gives and in pack-ID order. It holds about budget
// bytes of them at a time, not the whole index (46 MB at a million chunks):
// it reads the chunk index once to count each pack's chunks, then once for
// each part of the packs that fits the budget (a pack larger than the budget
// is a part of its own). packed is valid only during the call.
func (c *Catalog) EachPacked(budget int, fn func(packed []byte) error) error {
	count := map[data.ID]int{}
	err := c.EachChunk(func(_ data.ID, ref ChunkRef) error {
		if ref.Type != data.IndexBlob {
			count[ref.Pack]++
		}
		return nil
	})
	if err != nil {
		return err
	}
	packs := slices.SortedFunc(maps.Keys(count), func(a, b data.ID) int { return bytes.Compare(a[:], b[:]) })
	for len(packs) > 0 {
		// The next part: packs, in order, while their entries fit.
		n, size := 0, 0
		for ; n < len(packs); n++ {
			s := index.HeaderSize + count[packs[n]]*index.EntrySize
			if n > 0 && size+s > budget {
				break
			}
			size += s
		}
		part := map[data.ID][]byte{}
		for _, p := range packs[:n] {
			part[p] = index.AppendHeader(make([]byte, 0, index.HeaderSize+count[p]*index.EntrySize), p, 0)
		}
		err := c.EachChunk(func(id data.ID, ref ChunkRef) error {
			if b, ok := part[ref.Pack]; ok && ref.Type != data.IndexBlob {
				part[ref.Pack] = index.AppendEntry(b, ref.Entry(id))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, p := range packs[:n] {
			b := part[p]
			// The count read first, unless the index changed in between.
			binary.LittleEndian.PutUint32(b[32:], uint32((len(b)-index.HeaderSize)/index.EntrySize))
			if err := fn(b); err != nil {
				return err
			}
			delete(part, p)
		}
		packs = packs[n:]
	}
	return nil
}

// EachChunk calls fn for every chunk in the index.
func (c *Catalog) EachChunk(fn func(id data.ID, ref ChunkRef) error) error {
	return c.db.Iterate(kv.Chunks, kv.IterOptions{}, func(k, v []byte) error {
		ref, err := unmarshalChunkRef(v)
		if err != nil {
			return err
		}
		var id data.ID
		copy(id[:], k)
		return fn(id, ref)
	})
}

// Entry returns the chunk's pack entry.
func (r ChunkRef) Entry(id data.ID) pack.Entry {
	return pack.Entry{Type: r.Type, Compression: r.Compression, ID: id, Offset: r.Offset, Length: r.Length, RawLength: r.RawLength}
}

// RefOf returns the chunk reference of a pack entry.
func RefOf(packID data.ID, e pack.Entry) ChunkRef {
	return ChunkRef{Pack: packID, Type: e.Type, Compression: e.Compression, Offset: e.Offset, Length: e.Length, RawLength: e.RawLength}
}

// PutChunk records where a chunk lives.
func (c *Catalog) PutChunk(id data.ID, ref ChunkRef) error {
	return c.db.Put(kv.Chunks, id[:], ref.marshal())
}

// IndexPacks records the chunks of the packs of an index segment, in one
// batch per pack: a recovered plug rebuilds its chunk index from them.
func (c *Catalog) IndexPacks(packs []index.Packed) error {
	for _, pe := range packs {
		err := c.db.Batch(func(b *kv.Batch) error {
			for _, e := range pe.Entries {
				if err := b.Put(kv.Chunks, e.ID[:], RefOf(pe.Pack, e).marshal()); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("index pack %s: %w", pe.Pack.Short(), err)
		}
	}
	return nil
}

var keyDrops = []byte("chunk-drops")

// Drops counts the times chunks left the index (DropPack with chunks). A
// backup whose parent snapshot was made at the same count knows that every
// chunk the parent names is still stored, without looking each one up.
func (c *Catalog) Drops() (uint64, error) {
	return decodeDrops(c.db.Get(kv.Local, keyDrops))
}

func decodeDrops(b []byte, err error) (uint64, error) {
	if errors.Is(err, kv.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("damaged chunk-drop count (%d bytes)", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// DropPack removes a pack record, its pending index entries and the given
// chunks of the index, in one batch. When chunks leave, the drop count goes
// up first (should the batch not follow, the count is only cautious).
func (c *Catalog) DropPack(id data.ID, chunks []data.ID) error {
	if len(chunks) > 0 {
		err := c.db.Update(func(tx *kv.Tx) error {
			n, err := decodeDrops(tx.Get(kv.Local, keyDrops))
			if err != nil {
				return err
			}
			return tx.Put(kv.Local, keyDrops, binary.BigEndian.AppendUint64(nil, n+1))
		})
		if err != nil {
			return fmt.Errorf("drop pack %s: %w", id.Short(), err)
		}
	}
	return c.db.Batch(func(b *kv.Batch) error {
		for _, k := range chunks {
			if err := b.Delete(kv.Chunks, k[:]); err != nil {
				return err
			}
		}
		if err := b.Delete(kv.Local, pendingKey(id)); err != nil {
			return err
		}
		return b.Delete(kv.Packs, id[:])
	})
}
