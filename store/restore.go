package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/plug-net/plug/store/restorer"
)

// RestoreOptions tune a restore.
type RestoreOptions = restorer.Options

// RestoreProgress is what a running restore has done.
type RestoreProgress = restorer.Progress

// RestoreStats is what a restore did.
type RestoreStats = restorer.Stats

// ErrExists is wrapped when a restore would replace files.
var ErrExists = restorer.ErrExists

// Restore writes snapshot snap (or its opt.Path) under dir, each path at
// its absolute original place (DIR/home/ann/photos for /home/ann/photos);
// see restorer.Restore.
func (r *Repo) Restore(ctx context.Context, snap Snapshot, dir string, opt RestoreOptions) (RestoreStats, error) {
	return restorer.Restore(ctx, restorer.Config{Trees: r, Index: r.cat, Packs: r.fetcher, Keyer: r.keyer}, snap, dir, opt)
}

// LatestState returns the newest snapshot that carries the plug's own
// state folder; ok is false when none does.
func (r *Repo) LatestState() (Snapshot, bool, error) {
	all, err := r.Snapshots()
	if err != nil {
		return Snapshot{}, false, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if len(all[i].State) > 0 {
			return all[i], true, nil
		}
	}
	return Snapshot{}, false, nil
}

// RestoreState restores the state folder that snap carries to dest (the
// state folder of this plug, wherever the old plug kept it). What dest held
// is moved aside to dest.before-recovery; nothing is merged.
func (r *Repo) RestoreState(ctx context.Context, snap Snapshot, dest string) (RestoreStats, error) {
	if len(snap.State) == 0 {
		return RestoreStats{}, fmt.Errorf("snapshot %s carries no state", snap.ID.Short())
	}
	tmp := dest + ".restoring"
	if err := os.RemoveAll(tmp); err != nil {
		return RestoreStats{}, err
	}
	defer os.RemoveAll(tmp)
	st, err := r.Restore(ctx, Snapshot{ID: snap.ID, Tree: snap.State, Paths: []string{snap.StatePath}}, tmp, RestoreOptions{Path: snap.StatePath})
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
