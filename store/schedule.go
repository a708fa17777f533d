package store

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

	"github.com/plug-net/plug/store/prune"
	"github.com/plug-net/plug/store/target"
)

// Defaults of the backup schedule.
const (
	DefaultEvery  = time.Hour
	DefaultSettle = time.Minute
	maxWatches    = 20000
)

// Scheduler backs up the sources every interval and soon after they change
// (a file-system watcher, debounced), then applies the default retention;
// with no source it still backs up a changed timeline. What it runs also
// runs by hand, never two at once (the Repo's job lock).
type Scheduler struct {
	r      *Repo
	every  time.Duration
	settle time.Duration
	ignore string // the plug's own data directory: its changes are not the owner's
	log    *slog.Logger

	watcher *fsnotify.Watcher
	rewatch chan struct{}
}

// NewScheduler returns the schedule of r: every interval and settle after
// the last change seen (0: DefaultEvery, DefaultSettle); changes under
// ignore (the data directory) do not count.
func NewScheduler(r *Repo, every, settle time.Duration, ignore string) *Scheduler {
	if every <= 0 {
		every = DefaultEvery
	}
	if settle <= 0 {
		settle = DefaultSettle
	}
	s := &Scheduler{r: r, every: every, settle: settle, ignore: ignore, log: r.cfg.Logger.With("component", "schedule"), rewatch: make(chan struct{}, 1)}
	r.OnSourcesChanged(s.changed)
	return s
}

// changed says the sources changed: watch them anew.
func (s *Scheduler) changed() {
	select {
	case s.rewatch <- struct{}{}:
	default:
	}
}

// Run runs the schedule until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		s.log.Warn("cannot watch the sources for changes; backing up on the schedule only", "err", err)
	}
	s.watcher = w
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w != nil {
		defer func() {
			if err := w.Close(); err != nil {
				s.log.Debug("the watcher did not stop cleanly", "err", err)
			}
		}()
		events, errs = w.Events, w.Errors
	}
	s.watch()
	next := time.NewTimer(s.every)
	defer next.Stop()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	// Re-coding looks once the friends had time to connect, then after
	// every change of the target and every schedule.
	recode := time.NewTimer(s.settle)
	defer recode.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.r.RecodeWanted():
			recode.Reset(0)
		case <-recode.C:
			recode.Reset(s.recode(ctx))
		case <-s.rewatch:
			s.watch()
		case e := <-events:
			if e.Has(fsnotify.Create) {
				if fi, err := os.Lstat(e.Name); err == nil && fi.IsDir() {
					s.addTree(e.Name)
				}
			}
			if !s.ignored(e.Name) {
				settle.Reset(s.settle)
			}
		case err := <-errs:
			s.log.Debug("watcher error", "err", err)
		case <-settle.C:
			s.log.Info("sources changed: backing up")
			next.Reset(s.backup(ctx))
		case <-next.C:
			next.Reset(s.backup(ctx))
		}
	}
}

// ignored reports whether a change is the plug's own (its data directory).
func (s *Scheduler) ignored(path string) bool {
	d := s.ignore
	return d != "" && (path == d || strings.HasPrefix(path, d+string(filepath.Separator)))
}

// watch (re)adds watches on every directory of the sources.
func (s *Scheduler) watch() {
	if s.watcher == nil {
		return
	}
	for _, p := range s.watcher.WatchList() {
		// Fails only for a folder gone meanwhile, whose watch went with it.
		_ = s.watcher.Remove(p)
	}
	src, err := s.r.Sources()
	if err != nil {
		s.log.Warn("cannot read the backup sources to watch them", "err", err)
	}
	for _, p := range src {
		s.addTree(p)
	}
}

func (s *Scheduler) addTree(root string) {
	n := len(s.watcher.WatchList())
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
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
	if err != nil { // the walk skips what it cannot read: not expected
		s.log.Warn("could not watch a source for changes; it is backed up on the schedule", "path", root, "err", err)
	}
	if n >= maxWatches {
		s.log.Warn("too many folders to watch for changes; the others are backed up on the schedule", "watched", n)
	}
}

// backup runs a scheduled backup of the sources (or of a changed timeline
// when there is none) and the retention, and returns when to run next.
func (s *Scheduler) backup(ctx context.Context) time.Duration {
	src, err := s.r.Sources()
	if err != nil {
		s.log.Warn("cannot read the backup sources", "err", err)
		return s.every
	}
	if len(src) == 0 {
		if s.r.StateChanged() {
			_, err := s.r.BackupNow(ctx, nil, BackupOptions{})
			switch {
			case err == nil:
				s.log.Info("posts and harvested items backed up")
			case errors.Is(err, ErrBusy):
				return time.Minute
			case errors.Is(err, target.ErrTooFewFriends):
				s.log.Debug("posts not backed up: not enough friends yet", "err", err)
			default:
				s.log.Warn("backing up the posts failed", "err", err)
			}
		}
		return s.every
	}
	_, err = s.r.BackupNow(ctx, src, BackupOptions{})
	switch {
	case errors.Is(err, ErrBusy):
		s.log.Info("a backup or other job is running; the scheduled backup waits a minute")
		return time.Minute
	case err != nil:
		s.log.Warn("scheduled backup failed", "err", err)
		return s.every
	}
	if rep, err := s.r.Forget(ctx, prune.DefaultRetention, true); err != nil {
		s.log.Warn("applying the retention failed", "err", err)
	} else if rep.Removed > 0 {
		s.log.Info("retention applied", "removed", rep.Removed, "kept", rep.Kept, "packs_deleted", rep.PacksDeleted)
	}
	return s.every
}

// recode re-codes the packs not in the target's shape, if any, and returns
// when to look again.
func (s *Scheduler) recode(ctx context.Context) time.Duration {
	if !s.r.NeedsRecode() {
		return s.every
	}
	rep, err := s.r.Recode(ctx)
	switch {
	case errors.Is(err, ErrBusy):
		s.log.Info("re-coding pauses for another job; it goes on in a minute", "packs_left", rep.Left, "err", err)
		return time.Minute
	case err != nil && ctx.Err() == nil:
		s.log.Warn("re-coding stopped; it goes on later", "err", err, "packs_left", rep.Left)
		return 5 * time.Minute
	case rep.Waiting:
		return 5 * time.Minute
	}
	return s.every
}
