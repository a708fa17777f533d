package main

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/plug-net/plug/store"
	"github.com/plug-net/plug/store/prune"
	"github.com/plug-net/plug/store/target"
)

// Defaults of the backup schedule.
const (
	defaultEvery  = time.Hour
	defaultSettle = time.Minute
	maxWatches    = 20000
)

// scheduler backs up the sources every interval and soon after they change
// (a file-system watcher, debounced), then applies the default retention.
// What it runs also runs by hand, never two at once (the repository's job
// lock).
type scheduler struct {
	a      *app
	every  time.Duration
	settle time.Duration
	log    *slog.Logger

	watcher *fsnotify.Watcher
	rewatch chan struct{}
}

func newScheduler(a *app, every, settle time.Duration) *scheduler {
	return &scheduler{a: a, every: every, settle: settle, log: a.log.With("component", "schedule"), rewatch: make(chan struct{}, 1)}
}

// changed says the sources changed: watch them anew.
func (s *scheduler) changed() {
	if s == nil {
		return
	}
	select {
	case s.rewatch <- struct{}{}:
	default:
	}
}

func (s *scheduler) run(ctx context.Context) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		s.log.Warn("cannot watch the sources for changes; backing up on the schedule only", "err", err)
	}
	s.watcher = w
	if w != nil {
		defer w.Close()
	}
	s.watch(ctx)
	next := time.NewTimer(s.every)
	defer next.Stop()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w != nil {
		events, errs = w.Events, w.Errors
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.rewatch:
			s.watch(ctx)
		case e := <-events:
			if e.Has(fsnotify.Create) {
				if fi, err := statDir(e.Name); err == nil && fi {
					s.addTree(e.Name)
				}
			}
			if s.ignored(e.Name) {
				continue
			}
			settle.Reset(s.settle)
		case err := <-errs:
			s.log.Debug("watcher error", "err", err)
		case <-settle.C:
			s.log.Info("sources changed: backing up")
			s.backup(ctx, next)
		case <-next.C:
			s.backup(ctx, next)
		}
	}
}

// ignored reports whether a change is the plug's own (its data directory).
func (s *scheduler) ignored(path string) bool {
	d := string(s.a.cfg.dir)
	return path == d || strings.HasPrefix(path, d+string(filepath.Separator))
}

func statDir(p string) (bool, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return false, err
	}
	return fi.IsDir(), nil
}

// watch (re)adds watches on every directory of the sources.
func (s *scheduler) watch(ctx context.Context) {
	if s.watcher == nil {
		return
	}
	for _, p := range s.watcher.WatchList() {
		s.watcher.Remove(p)
	}
	src, _ := s.a.Sources(ctx)
	for _, p := range src {
		s.addTree(p)
	}
}

func (s *scheduler) addTree(root string) {
	n := len(s.watcher.WatchList())
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if s.ignored(p) {
			return filepath.SkipDir
		}
		if n >= maxWatches {
			return filepath.SkipAll
		}
		if s.watcher.Add(p) == nil {
			n++
		}
		return nil
	})
	if n >= maxWatches {
		s.log.Warn("too many folders to watch for changes; the others are backed up on the schedule", "watched", n)
	}
}

// backup runs a scheduled backup of the sources and the retention, then
// sets the next run.
func (s *scheduler) backup(ctx context.Context, next *time.Timer) {
	delay := s.every
	defer func() { next.Reset(delay) }()
	src, err := s.a.Sources(ctx)
	if err != nil {
		return
	}
	if len(src) == 0 {
		err = s.backupState(ctx)
	} else {
		_, err = s.a.backupNow(ctx, src, store.BackupOptions{})
	}
	switch {
	case len(src) == 0 && errors.Is(err, target.ErrTooFewFriends):
		s.log.Debug("posts not backed up: not enough friends yet", "err", err)
		return
	case len(src) == 0 && err == nil:
		return
	case errors.Is(err, store.ErrBusy):
		s.log.Info("a backup or other job is running; the scheduled backup waits a minute")
		delay = time.Minute
		return
	case err != nil:
		s.log.Warn("scheduled backup failed", "err", err)
		return
	}
	if rep, err := s.a.repo.Forget(ctx, prune.DefaultRetention, true); err != nil {
		s.log.Warn("applying the retention failed", "err", err)
	} else if rep.Removed > 0 {
		s.log.Info("retention applied", "removed", rep.Removed, "kept", rep.Kept, "packs_deleted", rep.PacksDeleted)
	}
}
