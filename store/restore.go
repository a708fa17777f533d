package store

import (
	"context"

	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/restorer"
)

// Restore writes snapshot snap (or its opt.Path) under dir, each path at
// its absolute original place (DIR/home/ann/photos for /home/ann/photos);
// see restorer.Restore.
func (r *Repo) Restore(ctx context.Context, snap data.Snapshot, dir string, opt restorer.Options) (restorer.Stats, error) {
	return restorer.Restore(ctx, restorer.Config{Trees: r, Index: r.cat, Packs: r.fetcher, Keyer: r.keyer}, snap, dir, opt)
}

// RestoreNow is the owner's restore: Restore, with its start, the shards
// friends returned bad, and its end in the log.
func (r *Repo) RestoreNow(ctx context.Context, snap data.Snapshot, dir string, opt restorer.Options) (restorer.Stats, error) {
	r.log.Info("restore started", "snapshot", snap.ID.Short(), "to", dir, "path", opt.Path)
	st, err := r.Restore(ctx, snap, dir, opt)
	for _, b := range st.BadShards {
		r.log.Warn("a friend returned a bad shard; used others instead", "friend", b.Holder, "problem", b.Problem, "pack", b.Pack.Short())
	}
	if err != nil {
		r.log.Error("restore failed", "err", err)
		return st, err
	}
	r.log.Info("restore done", "files", st.Files, "bytes", st.Bytes)
	return st, nil
}
