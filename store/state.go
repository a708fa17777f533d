package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/kv"
	"github.com/plug-net/plug/store/restorer"
)

// StateSource is the plug's own state that travels with every backup:
// posts, friends' posts, harvested items and their media (package social
// provides it). It is declared here so that the state's owner needs
// nothing of the store.
type StateSource interface {
	// StateDir is the folder that travels with every backup.
	StateDir() string
	// WriteState brings the folder up to date before a backup (a dump of
	// the database into it).
	WriteState(ctx context.Context) error
	// Changes counts the changes to the state: a state-only backup runs
	// when it moved since the last backup that carried it.
	Changes() uint64
	// ReloadState loads the folder after a recovery put the backed-up one
	// in its place, and says how many records it loaded.
	ReloadState(ctx context.Context) (int, error)
}

var keyLastBackup = []byte("backup/last-owner-backup") // when the owner's folders were last backed up

// LastBackup returns when the owner's folders were last backed up (zero:
// never).
func (r *Repo) LastBackup() time.Time {
	b, err := r.db.Get(kv.Local, keyLastBackup)
	if err != nil || len(b) != 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)))
}

// Recovering reports whether this plug, made from its recovery words, is
// still getting its backup back (Config.RecoveringMark exists).
func (r *Repo) Recovering() bool {
	if r.cfg.RecoveringMark == "" {
		return false
	}
	_, err := os.Stat(r.cfg.RecoveringMark)
	return err == nil
}

// BackupNow is the owner's backup: paths (none: a state-only backup) and
// the plug's own state beside them. A recovered plug carries no state
// until its own is back: an empty one would become the newest.
func (r *Repo) BackupNow(ctx context.Context, paths []string, opt BackupOptions) (data.Snapshot, error) {
	var seen uint64
	if r.cfg.State != nil && !r.Recovering() {
		seen = r.cfg.State.Changes()
		if err := r.cfg.State.WriteState(ctx); err != nil {
			r.log.Warn("could not write the timeline for the backup; backing up without it", "err", err)
		} else {
			opt.State = r.cfg.State.StateDir()
		}
	}
	if len(paths) == 0 && opt.State == "" {
		return data.Snapshot{}, errors.New("nothing to back up: no folder given, and no posts to keep")
	}
	snap, err := r.Backup(ctx, paths, opt)
	if err != nil {
		return snap, err
	}
	if opt.State != "" {
		r.stateSaved.Store(seen)
	}
	if len(paths) > 0 {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(time.Now().UnixNano()))
		if err := r.db.Put(kv.Local, keyLastBackup, b[:]); err != nil {
			return snap, fmt.Errorf("backed up, but could not record when: %w", err)
		}
	}
	return snap, nil
}

// StateChanged reports whether the plug's state changed since the last
// backup that carried it.
func (r *Repo) StateChanged() bool {
	return r.cfg.State != nil && !r.Recovering() && r.cfg.State.Changes() != r.stateSaved.Load()
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
	defer func() { _ = os.RemoveAll(tmp) }() // best-effort: the next RestoreState removes a leftover first
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

// errNoStateBackup says no snapshot carries the plug's state.
var errNoStateBackup = errors.New("no snapshot carries the plug's state")

// reloadState brings the state back after a recovery: the state folder of
// the newest snapshot that carries one is restored and loaded.
func (r *Repo) reloadState(ctx context.Context) error {
	snap, ok, err := r.LatestState()
	if err != nil {
		return err
	}
	if !ok {
		return errNoStateBackup
	}
	st, err := r.RestoreState(ctx, snap, r.cfg.State.StateDir())
	if err != nil {
		return err
	}
	n, err := r.cfg.State.ReloadState(ctx)
	if err != nil {
		return err
	}
	r.log.Info("timeline, posts and harvested items are back from the backup", "snapshot", snap.ID.Short(), "records", n, "files", st.Files)
	return nil
}
