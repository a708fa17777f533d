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
