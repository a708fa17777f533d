package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/plug-net/plug/httpui"
	"github.com/plug-net/plug/store"
	"github.com/plug-net/plug/store/archiver"
	"github.com/plug-net/plug/store/check"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/kv"
	"github.com/plug-net/plug/store/prune"
	"github.com/plug-net/plug/store/repair"
	"github.com/plug-net/plug/store/restorer"
	"github.com/plug-net/plug/store/target"
)

// ---- the daemon's side (httpui.BackupsBackend) ----

var keyLastBackup = []byte("daemon/last-backup")

func (a *app) lastBackup() time.Time {
	b, err := a.db.Get(kv.Local, keyLastBackup)
	if err != nil || len(b) != 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)))
}

// backupNow runs one backup and records its success.
// Every backup carries the plug's own state (posts, friends' posts,
// harvested items and their media) beside the paths.
func (a *app) backupNow(ctx context.Context, paths []string, opt store.BackupOptions) (data.Snapshot, error) {
	state, seen, err := a.stateOption(ctx)
	if err != nil {
		a.log.Warn("could not write the timeline for the backup; backing up without it", "component", "social", "err", err)
	} else {
		opt.State = state
	}
	if len(paths) == 0 && opt.State == "" {
		return data.Snapshot{}, errors.New("nothing to back up")
	}
	snap, err := a.repo.Backup(ctx, paths, opt)
	if err != nil {
		return snap, err
	}
	if opt.State != "" {
		a.stateSaved.Store(seen)
	}
	if len(paths) == 0 {
		return snap, nil
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(time.Now().UnixNano()))
	a.db.Put(kv.Local, keyLastBackup, b[:])
	return snap, nil
}

// Backup implements httpui.BackupsBackend.
func (a *app) Backup(ctx context.Context, paths []string, progress func(archiver.Progress), warn func(string, error)) (httpui.BackupResult, error) {
	snap, err := a.backupNow(ctx, paths, store.BackupOptions{Progress: progress, Warn: warn})
	if err != nil {
		if errors.Is(err, target.ErrTooFewFriends) {
			return httpui.BackupResult{}, httpui.StatusError(http.StatusConflict, err)
		}
		return httpui.BackupResult{}, err
	}
	return httpui.BackupResult{SnapshotID: snap.ID.String(), Files: snap.Files, Bytes: snap.Bytes, NewBytes: snap.NewBytes, DurationS: snap.Duration, Errors: snap.Errors}, nil
}

// Snapshots implements httpui.BackupsBackend.
func (a *app) Snapshots(ctx context.Context) ([]httpui.SnapshotInfo, error) {
	snaps, err := a.repo.Snapshots()
	if err != nil {
		return nil, err
	}
	out := make([]httpui.SnapshotInfo, 0, len(snaps))
	for _, s := range snaps {
		if s.StateOnly() {
			continue // the timeline's own backups: not the owner's folders
		}
		out = append(out, httpui.SnapshotInfo{ID: s.ID.String(), Time: s.Time, Paths: s.Paths, Files: s.Files, Bytes: s.Bytes, NewBytes: s.NewBytes, Host: s.Host})
	}
	return out, nil
}

// Restore implements httpui.BackupsBackend.
func (a *app) Restore(ctx context.Context, req httpui.RestoreRequest, progress func(restorer.Progress)) (restorer.Stats, error) {
	snap, err := a.repo.FindSnapshot(req.Snapshot)
	if err != nil {
		return restorer.Stats{}, httpui.StatusError(http.StatusNotFound, err)
	}
	a.log.Info("restore started", "component", "backup", "snapshot", snap.ID.Short(), "to", req.To, "path", req.Path)
	st, err := a.repo.Restore(ctx, snap, req.To, restorer.Options{Path: req.Path, Overwrite: req.Overwrite, Progress: progress})
	for _, b := range st.BadShards {
		a.log.Warn("a friend returned a bad shard; used others instead", "component", "backup", "friend", b.Holder, "problem", b.Problem, "pack", b.Pack.Short())
	}
	if err != nil {
		a.log.Error("restore failed", "component", "backup", "err", err)
		if errors.Is(err, restorer.ErrExists) {
			return st, httpui.StatusError(http.StatusConflict, err)
		}
		return st, err
	}
	a.log.Info("restore done", "component", "backup", "files", st.Files, "bytes", st.Bytes)
	return st, nil
}

// Verify implements httpui.BackupsBackend.
func (a *app) Verify(ctx context.Context, readData bool, progress func(done, total int)) (check.Report, error) {
	return a.repo.Verify(ctx, check.Options{ReadData: readData, Progress: progress})
}

// Repair implements httpui.BackupsBackend.
func (a *app) Repair(ctx context.Context) (repair.Report, error) {
	return a.repo.Repair(ctx, a.cfg.grace)
}

// Forget implements httpui.BackupsBackend.
func (a *app) Forget(ctx context.Context, keepLast int, withPrune bool) (store.ForgetReport, error) {
	return a.repo.Forget(ctx, prune.Retention{Last: keepLast}, withPrune)
}

// Sources implements httpui.BackupsBackend.
func (a *app) Sources(ctx context.Context) ([]string, error) {
	var src []string
	_, err := a.repo.Extra("sources", &src)
	return src, err
}

// AddSource implements httpui.BackupsBackend.
func (a *app) AddSource(ctx context.Context, path string) ([]string, error) {
	path = filepath.Clean(path)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, httpui.StatusError(http.StatusBadRequest, fmt.Errorf("cannot back up %s: %w", path, err))
	}
	if !fi.IsDir() {
		return nil, httpui.StatusError(http.StatusBadRequest, fmt.Errorf("%s is not a folder", path))
	}
	src, err := a.Sources(ctx)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(src, path) {
		src = append(src, path)
		slices.Sort(src)
		if err := a.repo.SetExtra("sources", src); err != nil {
			return nil, err
		}
		a.log.Info("backup source added", "component", "backup", "path", path)
		a.sched.changed()
	}
	return src, nil
}

// RemoveSource implements httpui.BackupsBackend.
func (a *app) RemoveSource(ctx context.Context, path string) ([]string, error) {
	path = filepath.Clean(path)
	src, err := a.Sources(ctx)
	if err != nil {
		return nil, err
	}
	i := slices.Index(src, path)
	if i < 0 {
		return nil, httpui.StatusError(http.StatusNotFound, fmt.Errorf("%s is not a backup source (see plug sources ls)", path))
	}
	src = slices.Delete(src, i, i+1)
	if err := a.repo.SetExtra("sources", src); err != nil {
		return nil, err
	}
	a.log.Info("backup source removed", "component", "backup", "path", path)
	a.sched.changed()
	return src, nil
}

// recoverLoop runs on a plug that has no head record: a plug recovered from
// its words finds the friends that hold its data (through the DHT
// rendezvous), and gets its catalog back. It gives up once the plug has its
// own head record.
func (a *app) recoverLoop(ctx context.Context) {
	if _, err := os.Stat(a.cfg.dir.recovering()); err != nil {
		return // made new: nothing to recover
	}
	if a.repo.HeadVersion() > 0 {
		// The catalog came back before the last stop; the timeline may not
		// have.
		if a.recoverState(ctx) {
			os.Remove(a.cfg.dir.recovering())
		}
		return
	}
	log := a.log.With("component", "backup")
	wait := 2 * time.Second
	said, lastWhy := false, ""
	for ctx.Err() == nil && a.repo.HeadVersion() == 0 {
		doc, err := a.repo.Recover(ctx)
		switch {
		case err == nil && doc.Version > 0:
			log.Info("this plug was recovered: its friends, snapshots and catalog are back", "snapshots", len(doc.Snapshots), "friends", len(doc.Friends))
			if a.recoverState(ctx) {
				os.Remove(a.cfg.dir.recovering())
			}
			return
		case errors.Is(err, store.ErrBusy):
		case errors.Is(err, store.ErrNothingToRecover):
			if !said {
				log.Info("looking for friends that hold a backup of this plug (none found yet; they are asked again and again)")
				said = true
			}
			if why := err.Error(); why != lastWhy {
				lastWhy = why
				log.Debug("no head record yet", "err", err)
			}
		case err != nil:
			log.Warn("recovery attempt failed; trying again", "err", err)
		}
		if !sleepCtx(ctx, wait) {
			return
		}
		wait = min(wait*2, 2*time.Minute)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ---- the command line ----

// absPaths makes command-line paths absolute.
func absPaths(paths []string) ([]string, error) {
	out := make([]string, len(paths))
	for i, p := range paths {
		a, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		out[i] = a
	}
	return out, nil
}

// humanSize renders a byte count for people (binary units).
func humanSize(n int64) string { return humanize.IBytes(uint64(max(n, 0))) }

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func joinPaths(ps []string) string { return strings.Join(ps, " ") }
