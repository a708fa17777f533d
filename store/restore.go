package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/restorer"
)

// Restore writes snapshot snap (or its opt.Path) under dir, each path at
// its absolute original place (DIR/home/ann/photos for /home/ann/photos);
// see restorer.Restore.
func (r *Repo) Restore(ctx context.Context, snap data.Snapshot, dir string, opt restorer.Options) (restorer.Stats, error) {
	return restorer.Restore(ctx, restorer.Config{Trees: r, Index: r.cat, Packs: r.fetcher, Keyer: r.keyer}, snap, dir, opt)
}

// LatestState returns the newest snapshot that carries the plug's own
// state folder; ok is false when none does.
func (r *Repo) LatestState() (data.Snapshot, bool, error) {
	all, err := r.Snapshots()
	if err != nil {
		return data.Snapshot{}, false, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if len(all[i].State) > 0 {
			return all[i], true, nil
		}
	}
	return data.Snapshot{}, false, nil
}

// RestoreState restores the state folder that snap carries to dest (the
// state folder of this plug, wherever the old plug kept it). What dest held
// is moved aside to dest.before-recovery; nothing is merged.
func (r *Repo) RestoreState(ctx context.Context, snap data.Snapshot, dest string) (restorer.Stats, error) {
	if len(snap.State) == 0 {
		return restorer.Stats{}, fmt.Errorf("snapshot %s carries no state", snap.ID.Short())
	}
	tmp := dest + ".restoring"
	if err := os.RemoveAll(tmp); err != nil {
		return restorer.Stats{}, err
	}
	defer os.RemoveAll(tmp)
	st, err := r.Restore(ctx, data.Snapshot{ID: snap.ID, Tree: snap.State, Paths: []string{snap.StatePath}}, tmp, restorer.Options{Path: snap.StatePath})
	if err != nil {
		return st, fmt.Errorf("restore the plug's own state: %w", err)
	}
	aside := dest + ".before-recovery"
	if err := os.RemoveAll(aside); err != nil {
		return st, err
	}
	if err := os.Rename(dest, aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return st, err
	}
	if err := os.Rename(filepath.Join(tmp, snap.StatePath), dest); err != nil {
		return st, fmt.Errorf("restore the plug's own state: %w", err)
	}
	return st, nil
}
