package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/plug-net/plug/store/archiver"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/kv"
	"github.com/plug-net/plug/store/packer"
	"github.com/plug-net/plug/store/target"
)

// BackupOptions tune a backup.
type BackupOptions struct {
	// Progress, if set, is called about twice a second and at the end.
	Progress func(archiver.Progress)
	// Warn, if set, is told of every file that could not be read (it is
	// skipped; the backup goes on).
	Warn func(path string, err error)
	// State, if set, is the plug's own state folder, backed up beside the
	// paths into Snapshot.State (not counted in the snapshot's files and
	// bytes). With State set, paths may be empty: a state-only snapshot.
	State string
}

// Backup backs up paths (files or directories, made absolute) into a new
// snapshot and publishes a new head record. Unchanged files (size, mtime,
// ctime, inode) are not read again; chunks already stored are not sent again.
func (r *Repo) Backup(ctx context.Context, paths []string, opt BackupOptions) (data.Snapshot, error) {
	unlock, err := r.lock(ctx, "backup")
	if err != nil {
		return data.Snapshot{}, err
	}
	defer unlock()
	return r.backup(ctx, paths, opt)
}

func (r *Repo) backup(ctx context.Context, paths []string, opt BackupOptions) (data.Snapshot, error) {
	start := time.Now()
	abs, stateAbs, err := backupPaths(paths, opt.State)
	if err != nil {
		return data.Snapshot{}, err
	}
	holders, w, err := r.newBackupWriter(ctx, "backup")
	if err != nil {
		return data.Snapshot{}, err
	}
	defer r.closeWriter(w)
	r.log.Info("backup started", "paths", strings.Join(abs, " "), "friends", len(holders), "data_shards", w.K(), "parity_shards", w.M())
	a := r.newArchiver(w, opt, start)
	snap := data.Snapshot{ID: data.NewSnapshotID(), Time: start.UTC(), Host: *r.host.Load(), Paths: abs}
	drops, dropsErr := r.cat.Drops()
	var stateRaw int64 // what the state added: not the owner's new data
	if err := r.runArchiver(ctx, a, w, &snap, stateAbs, opt.Warn, &stateRaw); err != nil {
		r.log.Error("backup failed", "err", err)
		return data.Snapshot{}, err
	}
	st := a.Stats()
	snap.Files, snap.Dirs, snap.Bytes, snap.Errors = st.Files, st.Dirs, st.Bytes, st.Errors
	snap.NewBytes = w.Stats().RawBytes - st.MetaBytes - stateRaw
	snap.Duration = time.Since(start).Seconds()
	if err := r.saveSnapshot(snap); err != nil {
		return data.Snapshot{}, err
	}
	if dropsErr == nil {
		// Every chunk the snapshot names is stored while no chunk leaves
		// the index: the next backup need not look them up (parentFor).
		// Without this mark it does, which is only slower.
		if err := r.db.Put(kv.Local, snapDropsKey(snap.ID), binary.BigEndian.AppendUint64(nil, drops)); err != nil {
			r.log.Warn("could not note the snapshot's chunk-drop count: the next backup looks up its chunks one by one", "err", err)
		}
	}
	if err := r.publishWith(ctx, holders, w); err != nil {
		// The snapshot is safe on the friends and in the catalog; the head
		// record follows with the next backup or at the next start.
		r.log.Warn("snapshot stored, but the head record could not be given to the friends yet", "err", err)
	}
	a.Report("done")
	r.log.Info("backup done", "snapshot", snap.ID.Short(), "files", snap.Files, "bytes", snap.Bytes, "new_bytes", snap.NewBytes,
		"errors", snap.Errors, "duration", time.Since(start).Round(time.Millisecond).String())
	return snap, nil
}

// backupPaths cleans the paths of a backup and of the state folder.
func backupPaths(paths []string, state string) (abs, stateAbs []string, err error) {
	if len(paths) > 0 || state == "" {
		if abs, err = archiver.CleanPaths(paths); err != nil {
			return nil, nil, err
		}
	}
	if state != "" {
		if stateAbs, err = archiver.CleanPaths([]string{state}); err != nil {
			return nil, nil, err
		}
	}
	return abs, stateAbs, nil
}

// newBackupWriter reaches the friends once and makes the one Writer that a
// backup (or a repair) and the head record it publishes share.
func (r *Repo) newBackupWriter(ctx context.Context, what string) ([]target.Holder, *packer.Writer, error) {
	m := r.parity()
	holders := r.placeHolders(r.net.Reachable(ctx), m)
	if need := m + 1; len(holders) < need {
		return nil, nil, fmt.Errorf("%w: %d friend(s) reachable in different houses, and keeping everything when %d may be lost takes at least %d: pair with %d more (plug invite), bring the others online, or lower the target (plug redundancy set)",
			target.ErrTooFewFriends, len(holders), m, need, need-len(holders))
	}
	targets := make([]target.ShardTarget, len(holders))
	for i, h := range holders {
		targets[i] = h
	}
	w, err := packer.NewWriter(ctx, packer.Config{
		Targets: targets, M: m, Recipient: r.keys.AgeRecipient(), Catalog: r.cat,
		TargetLost: func(name string, err error, left int) {
			r.log.Warn("a friend went away during the "+what+"; going on with the others", "friend", name, "friends_left", left, "err", err)
		},
	})
	if err != nil {
		return nil, nil, err
	}
	return holders, w, nil
}

// runArchiver walks the snapshot's paths and the state folder into w, with
// progress, and flushes w; it fills the snapshot's trees.
func (r *Repo) runArchiver(ctx context.Context, a *archiver.Archiver, w *packer.Writer, snap *data.Snapshot, stateAbs []string, warn func(string, error), stateRaw *int64) error {
	scanCtx, stopScan := context.WithCancel(ctx)
	defer stopScan()
	go a.Scan(scanCtx, snap.Paths)
	progCtx, stopProg := context.WithCancel(ctx)
	progDone := make(chan struct{})
	go func() { defer close(progDone); a.ReportLoop(progCtx) }()
	defer func() { stopProg(); <-progDone }()
	if len(snap.Paths) > 0 {
		parent, parentTree := r.parentFor(ctx, snap.Paths)
		if parentTree != nil && r.parentStored(parent) {
			a.ParentStored()
		}
		root, err := a.Run(ctx, snap.Paths, parentTree)
		if err != nil {
			return err
		}
		snap.Tree, snap.Parent = root.Subtree, parent
	}
	if len(stateAbs) > 0 {
		before := w.Stats().RawBytes
		root, err := r.backupState(ctx, w, stateAbs, warn)
		if err != nil {
			return err
		}
		*stateRaw = w.Stats().RawBytes - before
		snap.State, snap.StatePath = root.Subtree, stateAbs[0]
	}
	return w.Flush(ctx)
}

// backupState archives the plug's state folder with the backup's writer,
// incrementally against the newest snapshot that carries it.
func (r *Repo) backupState(ctx context.Context, w *packer.Writer, paths []string, warn func(string, error)) (data.Node, error) {
	var parent *data.Tree
	if all, err := r.Snapshots(); err == nil {
		for i := len(all) - 1; i >= 0; i-- {
			if all[i].StatePath == paths[0] && len(all[i].State) > 0 {
				if t, err := r.LoadTree(ctx, all[i].State); err == nil {
					parent = t
				}
				break
			}
		}
	}
	a := r.newArchiver(w, BackupOptions{Warn: warn}, time.Now())
	a.ScanDone()
	n, err := a.Run(ctx, paths, parent)
	if err != nil {
		return n, fmt.Errorf("back up the plug's own state: %w", err)
	}
	return n, nil
}

// newArchiver makes one archiving run over w.
func (r *Repo) newArchiver(w *packer.Writer, opt BackupOptions, start time.Time) *archiver.Archiver {
	return archiver.New(archiver.Config{
		Saver: w, Trees: r, Index: r.cat, Keyer: r.keyer, Gear: r.gear, Open: r.openFile,
		Parallel: r.cfg.Parallel, Progress: opt.Progress, Warn: opt.Warn, Logger: r.log,
	}, start)
}

// CacheTree keeps a tree blob in the local tree cache (archiver.Trees), so
// that an incremental backup reads no tree back from friends.
func (r *Repo) CacheTree(id data.ID, b []byte) error { return r.db.Put(kv.Trees, id[:], b) }

var snapDropsPrefix = []byte("snap-drops/")

func snapDropsKey(id data.ID) []byte { return append(slices.Clip(snapDropsPrefix), id[:]...) }

// parentStored reports whether every chunk snapshot id names is known to be
// stored: the catalog's chunk-drop count is the one noted when it was made
// (a prune since then, or a recovered plug, which has no note, says no).
func (r *Repo) parentStored(id data.ID) bool {
	b, err := r.db.Get(kv.Local, snapDropsKey(id))
	if err != nil || len(b) != 8 {
		return false
	}
	now, err := r.cat.Drops()
	return err == nil && now == binary.BigEndian.Uint64(b)
}

// parentFor returns the newest snapshot of the same paths and its root tree
// (nil when there is none or it cannot be read).
func (r *Repo) parentFor(ctx context.Context, paths []string) (data.ID, *data.Tree) {
	all, err := r.Snapshots()
	if err != nil {
		return data.ID{}, nil
	}
	for i := len(all) - 1; i >= 0; i-- {
		if slices.Equal(all[i].Paths, paths) {
			t, err := r.LoadTree(ctx, all[i].Tree)
			if err != nil {
				r.log.Warn("cannot read the previous snapshot: every file is read again", "snapshot", all[i].ID.Short(), "err", err)
				return data.ID{}, nil
			}
			return all[i].ID, t
		}
	}
	return data.ID{}, nil
}
