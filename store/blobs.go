package store

import (
	"context"
	"fmt"

	"github.com/plug-net/plug/store/catalog"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/kv"
	"github.com/plug-net/plug/store/pack"
)

// ErrUnknownChunk is wrapped when the catalog does not know a chunk.
var ErrUnknownChunk = catalog.ErrUnknownChunk

// fetchPackOf fetches the pack that holds chunk id.
func (r *Repo) fetchPackOf(ctx context.Context, id data.ID) ([]byte, []pack.Entry, catalog.ChunkRef, error) {
	ref, ok, err := r.cat.Chunk(id)
	if err != nil {
		return nil, nil, ref, err
	}
	if !ok {
		return nil, nil, ref, fmt.Errorf("%w: %s", ErrUnknownChunk, id.Short())
	}
	rec, ok, err := r.cat.Pack(ref.Pack)
	if err != nil {
		return nil, nil, ref, err
	}
	if !ok {
		return nil, nil, ref, fmt.Errorf("chunk %s is in pack %s, which the catalog does not know", id.Short(), ref.Pack.Short())
	}
	plain, entries, err := r.fetcher.Fetch(ctx, rec)
	return plain, entries, ref, err
}

// readMetaBlob returns a tree, index or state chunk: from the local tree
// cache, else from its pack (and then every tree of that pack goes into the
// cache, since neighbours are usually wanted next).
func (r *Repo) readMetaBlob(ctx context.Context, id data.ID) ([]byte, error) {
	if b, err := r.db.Get(kv.Trees, id[:]); err == nil {
		if data.ID(r.keyer.ID(b)) == id {
			return b, nil
		}
		// A damaged cache entry: fetched again below, and put back.
		if err := r.db.Delete(kv.Trees, id[:]); err != nil {
			r.log.Warn("could not drop a damaged entry of the local tree cache", "chunk", id.Short(), "err", err)
		}
	}
	plain, entries, _, err := r.fetchPackOf(ctx, id)
	if err != nil {
		return nil, err
	}
	var want []byte
	for _, e := range entries {
		if e.Type != data.TreeBlob && e.ID != id {
			continue
		}
		b, err := pack.Extract(plain, e, r.keyer)
		if err != nil {
			if e.ID == id {
				return nil, err
			}
			continue
		}
		if e.Type == data.TreeBlob {
			// Only a cache: without it the tree is fetched from the
			// friends again when needed.
			if err := r.db.Put(kv.Trees, e.ID[:], b); err != nil {
				r.log.Warn("could not keep a tree in the local cache", "chunk", e.ID.Short(), "err", err)
			}
		}
		if e.ID == id {
			want = b
		}
	}
	if want == nil {
		return nil, fmt.Errorf("chunk %s is not in its pack", id.Short())
	}
	return want, nil
}

// LoadTree reads and checks the tree whose chunks are ids.
func (r *Repo) LoadTree(ctx context.Context, ids []data.ID) (*data.Tree, error) {
	if len(ids) == 0 {
		return &data.Tree{}, nil
	}
	var b []byte
	for _, id := range ids {
		c, err := r.readMetaBlob(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("read tree: %w", err)
		}
		if len(b)+len(c) > data.MaxTreeSize {
			return nil, fmt.Errorf("%w: larger than %d bytes", data.ErrBadTree, data.MaxTreeSize)
		}
		b = append(b, c...)
	}
	return data.DecodeTree(b)
}
