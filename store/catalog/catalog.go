package catalog

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
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

// Pending returns the packs not yet described by an index segment.
func (c *Catalog) Pending() ([]index.Packed, error) {
	var out []index.Packed
	err := c.db.Iterate(kv.Local, kv.IterOptions{Prefix: pendingPrefix}, func(_, v []byte) error {
		pes, err := index.DecodePacked(v)
		if err != nil {
			return err
		}
		out = append(out, pes...)
		return nil
	})
	return out, err
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
func (c *Catalog) ClearPending(packs []index.Packed) error {
	return c.db.Batch(func(b *kv.Batch) error {
		for _, pe := range packs {
			if err := b.Delete(kv.Local, pendingKey(pe.Pack)); err != nil {
				return err
			}
		}
		return nil
	})
}

// AllEntries returns every pack's entries, from the chunk index, index
// blobs left out (the head record names them), sorted by pack ID.
func (c *Catalog) AllEntries() ([]index.Packed, error) {
	byPack := map[data.ID][]pack.Entry{}
	err := c.EachChunk(func(id data.ID, ref ChunkRef) error {
		if ref.Type != data.IndexBlob {
			byPack[ref.Pack] = append(byPack[ref.Pack], ref.Entry(id))
		}
		return nil
	})
	out := make([]index.Packed, 0, len(byPack))
	for p, es := range byPack {
		out = append(out, index.Packed{Pack: p, Entries: es})
	}
	slices.SortFunc(out, func(a, b index.Packed) int { return bytes.Compare(a.Pack[:], b.Pack[:]) })
	return out, err
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

// DropPack removes a pack record, its pending index entries and the given
// chunks of the index, in one batch.
func (c *Catalog) DropPack(id data.ID, chunks []data.ID) error {
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
