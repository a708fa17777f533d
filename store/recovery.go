package store

import (
	"context"
	"errors"
	"os"
	"time"
)

// RunRecovery runs on a plug made from its recovery words (marked by
// Config.RecoveringMark) until it has its catalog and its state back: it
// finds the friends that hold its data (through the DHT rendezvous) and
// rebuilds the catalog from the newest head record, retrying with backoff,
// then brings the plug's state back. On a plug made new it returns at
// once: there is nothing to recover.
func (r *Repo) RunRecovery(ctx context.Context) {
	if !r.Recovering() {
		return
	}
	if r.HeadVersion() == 0 && !r.recoverCatalog(ctx) {
		return
	}
	if r.recoverState(ctx) {
		if err := os.Remove(r.cfg.RecoveringMark); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.log.Warn("recovered, but could not remove the recovery mark; the next start looks again", "err", err)
		}
	}
}

// recoverCatalog asks for head records until one comes (true) or ctx ends.
func (r *Repo) recoverCatalog(ctx context.Context) bool {
	wait := 2 * time.Second
	said, lastWhy := false, ""
	for ctx.Err() == nil && r.HeadVersion() == 0 {
		doc, err := r.Recover(ctx)
		switch {
		case err == nil && doc.Version > 0:
			r.log.Info("this plug was recovered: its friends, snapshots and catalog are back", "snapshots", len(doc.Snapshots), "friends", len(doc.Friends))
			return true
		case errors.Is(err, ErrBusy):
		case errors.Is(err, ErrNothingToRecover):
			if !said {
				r.log.Info("looking for friends that hold a backup of this plug (none found yet; they are asked again and again)")
				said = true
			}
			if why := err.Error(); why != lastWhy {
				lastWhy = why
				r.log.Debug("no head record yet", "err", err)
			}
		case err != nil:
			r.log.Warn("recovery attempt failed; trying again", "err", err)
		}
		if !sleepCtx(ctx, wait) {
			return false
		}
		wait = min(wait*2, 2*time.Minute)
	}
	return r.HeadVersion() > 0
}

// recoverState brings the plug's state back after a recovery, trying again
// while friends are out of reach; it is false when it gave up (the next
// start tries again).
func (r *Repo) recoverState(ctx context.Context) bool {
	if r.cfg.State == nil {
		return true
	}
	wait := 5 * time.Second
	for attempt := 1; ctx.Err() == nil; attempt++ {
		err := r.reloadState(ctx)
		if err == nil {
			return true
		}
		if errors.Is(err, errNoStateBackup) {
			r.log.Info("the backups hold no posts or harvested items to bring back")
			return true
		}
		if attempt >= 10 {
			r.log.Error("could not bring the timeline back from the backup; restart the plug to try again", "err", err)
			return false
		}
		r.log.Warn("could not bring the timeline back from the backup yet; trying again", "err", err, "in", wait.String())
		if !sleepCtx(ctx, wait) {
			return false
		}
		wait = min(2*wait, 2*time.Minute)
	}
	return false
}

// sleepCtx waits d or until ctx ends; it reports whether ctx is still
// alive.
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
