package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/plug-net/plug/social"
	"github.com/plug-net/plug/store"
)

// ---- the daemon's side (httpui.SocialBackend) ----

// Timeline implements httpui.SocialBackend.
func (a *app) Timeline(ctx context.Context, q social.TimelineQuery) ([]social.Entry, error) {
	return a.social.Timeline(ctx, q)
}

// Post implements httpui.SocialBackend.
func (a *app) Post(ctx context.Context, text string, images []social.NewImage) (social.Entry, error) {
	return a.social.Post(ctx, text, images)
}

// EditPost implements httpui.SocialBackend.
func (a *app) EditPost(ctx context.Context, id, text string, images []social.NewImage) (social.Entry, error) {
	return a.social.Edit(ctx, id, text, images)
}

// DeletePost implements httpui.SocialBackend.
func (a *app) DeletePost(ctx context.Context, id string) error { return a.social.Delete(ctx, id) }

// Import implements httpui.SocialBackend.
func (a *app) Import(ctx context.Context, kind, src string, progress func(done, total int)) (social.ImportReport, error) {
	return a.social.Import(ctx, kind, src, progress)
}

// Search implements httpui.SocialBackend.
func (a *app) Search(ctx context.Context, query, source string, limit, offset int) ([]social.Entry, uint64, error) {
	return a.social.Search(ctx, query, source, limit, offset)
}

// OpenMedia implements httpui.SocialBackend.
func (a *app) OpenMedia(hash string) (*os.File, error) { return a.social.OpenMedia(hash) }

// UploadDir implements httpui.SocialBackend.
func (a *app) UploadDir() string { return a.cfg.dir.uploads() }

// stateOption writes the social state's dump and returns the backup option
// that carries the state folder along.
func (a *app) stateOption(ctx context.Context) (string, uint64, error) {
	if a.social == nil || a.recovering() {
		// A recovered plug carries no timeline until its own is back: an
		// empty one would become the newest.
		return "", 0, nil
	}
	seen := a.social.Changes()
	if err := a.social.WriteState(ctx); err != nil {
		return "", 0, err
	}
	return a.social.StateDir(), seen, nil
}

// recoverState brings the timeline back after a recovery: the state folder
// of the newest snapshot that carries one is restored and loaded. It tries
// again while friends are out of reach; done is false when it gave up (the
// next start tries again).
func (a *app) recoverState(ctx context.Context) (done bool) {
	log := a.log.With("component", "social")
	wait := 5 * time.Second
	for attempt := 1; ctx.Err() == nil; attempt++ {
		err := a.loadStateFromBackup(ctx)
		if err == nil {
			return true
		}
		if errors.Is(err, errNoStateBackup) {
			log.Info("the backups hold no posts or harvested items to bring back")
			return true
		}
		if attempt >= 10 {
			log.Error("could not bring the timeline back from the backup; restart the plug to try again", "err", err)
			return false
		}
		log.Warn("could not bring the timeline back from the backup yet; trying again", "err", err, "in", wait.String())
		if !sleepCtx(ctx, wait) {
			return false
		}
		wait = min(2*wait, 2*time.Minute)
	}
	return false
}

var errNoStateBackup = errors.New("no snapshot carries the plug's state")

func (a *app) loadStateFromBackup(ctx context.Context) error {
	snap, ok, err := a.repo.LatestState()
	if err != nil {
		return err
	}
	if !ok {
		return errNoStateBackup
	}
	st, err := a.repo.RestoreState(ctx, snap, a.cfg.dir.social())
	if err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(a.cfg.dir.social(), social.StateFile))
	if err != nil {
		return fmt.Errorf("the restored state has no %s: %w", social.StateFile, err)
	}
	defer f.Close()
	n, err := a.social.LoadState(ctx, f)
	if err != nil {
		return err
	}
	a.log.Info("timeline, posts and harvested items are back from the backup", "component", "social", "snapshot", snap.ID.Short(), "records", n, "files", st.Files)
	return nil
}

// backupState runs a state-only backup when the sources are empty but the
// timeline changed since the last backup (posts, friends' posts, imports
// are kept even for a plug that backs up no folder).
func (s *scheduler) backupState(ctx context.Context) error {
	a := s.a
	if a.social == nil || a.recovering() || a.social.Changes() == a.stateSaved.Load() {
		return nil
	}
	_, err := a.backupNow(ctx, nil, store.BackupOptions{})
	if err == nil {
		s.log.Info("posts and harvested items backed up")
	}
	return err
}

// recovering reports whether this plug, made from its recovery words, is
// still getting its backup back.
func (a *app) recovering() bool {
	_, err := os.Stat(a.cfg.dir.recovering())
	return err == nil
}
