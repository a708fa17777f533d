package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/plug-net/plug/store/catalog"
	"github.com/plug-net/plug/store/kv"
	"github.com/plug-net/plug/store/repair"
	"github.com/plug-net/plug/store/target"
)

// keyRecoding records the new pack of a re-coding in progress (space
// kv.Local): after a crash its shards, put or not, are released.
var keyRecoding = []byte("backup/recoding")

// RecodeReport says what a re-coding did.
type RecodeReport struct {
	Packs    int  `json:"packs"`    // packs re-cut to the target's shape
	Left     int  `json:"left"`     // packs still in another shape
	Waiting  bool `json:"waiting"`  // too few friends online to go on
	Released int  `json:"released"` // shards of an interrupted re-coding released
}

// recodeWanted says the target changed: the scheduler re-codes soon.
func (r *Repo) recodeWanted() {
	select {
	case r.recodeCh <- struct{}{}:
	default:
	}
}

// RecodeWanted returns a channel that receives when the target changed.
func (r *Repo) RecodeWanted() <-chan struct{} { return r.recodeCh }

// packsToRecode returns the packs whose shape is not the target's: k and m
// as a new backup would cut them over all the friends.
func (r *Repo) packsToRecode(red Redundancy) ([]catalog.PackRecord, error) {
	var out []catalog.PackRecord
	err := r.cat.Packs(func(p catalog.PackRecord) error {
		if p.Shape.M != red.M || p.Shape.K != red.K {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// NeedsRecode reports whether some packs are not in the target's shape.
func (r *Repo) NeedsRecode() bool {
	red, err := r.shape()
	if err != nil || red.K < 1 {
		return false
	}
	packs, err := r.packsToRecode(red)
	return err == nil && len(packs) > 0
}

// Recode re-cuts every pack that is not in the target's shape to k+m over
// the friends, one pack at a time, each under the job lock, by repair's
// machinery: the new shards are put and acknowledged, the new pack
// recorded, and only then the old shards released. It waits (Waiting) when
// fewer friends than a pack takes are online. An interrupted re-coding
// resumes where it stopped: the packs done are in the new shape, and the
// shards of the one cut short are released first.
func (r *Repo) Recode(ctx context.Context) (RecodeReport, error) {
	var rep RecodeReport
	n, err := r.releaseInterrupted(ctx)
	rep.Released = n
	if err != nil {
		return rep, err
	}
	// Shards of packs re-coded before a crash, not yet released.
	if _, err := r.releasePending(ctx); err != nil {
		return rep, err
	}
	red, err := r.shape()
	if err != nil || red.K < 1 {
		return rep, err
	}
	packs, err := r.packsToRecode(red)
	if err != nil || len(packs) == 0 {
		return rep, err
	}
	holders := r.placeHolders(r.net.Reachable(ctx), red.M)
	if len(holders) < red.K+red.M {
		rep.Waiting, rep.Left = true, len(packs)
		r.log.Info("re-coding waits for friends", "online", len(holders), "needed", red.K+red.M, "packs_left", len(packs))
		return rep, nil
	}
	r.log.Info("re-coding started", "packs", len(packs), "k", red.K, "m", red.M)
	for i, p := range packs {
		if err := ctx.Err(); err != nil {
			rep.Left = len(packs) - i
			return rep, err
		}
		// Spread the shards: each pack starts at another friend.
		keep := append(holders[i%len(holders):], holders[:i%len(holders)]...)
		if err := r.recodePack(ctx, p, keep, red, i+1, len(packs)); err != nil {
			rep.Left = len(packs) - i
			return rep, fmt.Errorf("re-code pack %s: %w", p.ID.Short(), err)
		}
		rep.Packs++
	}
	if err := r.markDirty(); err != nil {
		return rep, err
	}
	n, err = r.releasePending(ctx)
	switch {
	case errors.Is(err, ErrBusy):
		// Every pack is re-coded and recorded, but a job (a backup) took
		// the lock after the last one: the old shards are released at the
		// next check, once a head record no longer names their packs.
		r.log.Info("re-coding done; the shards it replaced are released at the next check", "packs", rep.Packs, "k", red.K, "m", red.M, "err", err)
		return rep, nil
	case err != nil:
		return rep, fmt.Errorf("re-coded, but publishing the head record failed: %w", err)
	}
	r.log.Info("re-coding done", "packs", rep.Packs, "k", red.K, "m", red.M, "shards_released", n)
	return rep, nil
}

// recodePack re-cuts one pack under the job lock.
func (r *Repo) recodePack(ctx context.Context, p catalog.PackRecord, keep []target.Holder, red Redundancy, i, total int) error {
	unlock, err := r.lockStep(fmt.Sprintf("re-coding (pack %d of %d)", i, total))
	if err != nil {
		return err
	}
	defer unlock()
	// The pack may have changed since the list was made (a prune, a repair).
	cur, ok, err := r.cat.Pack(p.ID)
	if err != nil || !ok {
		return err
	}
	shards, err := r.fetcher.FetchShards(ctx, cur, nil)
	if err != nil {
		return err
	}
	cfg := repair.Config{
		Catalog: r.cat, Shards: r.fetcher, Identity: r.keys.AgeIdentity(), M: red.M,
		Holder: r.net.Holder, Repacked: r.relinkRefs, Logger: r.log,
		Cutting: func(np catalog.PackRecord) error {
			b, err := json.Marshal(np)
			if err != nil {
				return err
			}
			return r.db.PutSync(kv.Local, keyRecoding, b)
		},
	}
	np, err := repair.Recut(ctx, cfg, cur, shards, keep[:red.K+red.M])
	if err != nil {
		return err
	}
	if err := r.db.PutSync(kv.Local, keyRecoding, nil); err != nil {
		return err
	}
	// Acknowledged and recorded: the old shards go once the head record
	// no longer names their pack.
	var rs []release
	for j, h := range cur.Holders {
		rs = append(rs, release{Pack: cur.ID, Holder: h, Shard: cur.Shape.ShardIDs[j]})
	}
	if err := r.releaseLater(rs); err != nil {
		return err
	}
	r.log.Info("pack re-coded", "pack", cur.ID.Short(), "new", np.ID.Short(), "done", i, "of", total, "k", np.Shape.K, "m", np.Shape.M)
	return nil
}

// releaseInterrupted releases the shards of a re-coding cut short (by a
// crash) whose new pack never made it into the catalog.
func (r *Repo) releaseInterrupted(ctx context.Context) (int, error) {
	b, err := r.db.Get(kv.Local, keyRecoding)
	if errors.Is(err, kv.ErrNotFound) || (err == nil && len(b) == 0) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var np catalog.PackRecord
	if err := json.Unmarshal(b, &np); err != nil {
		return 0, r.db.Delete(kv.Local, keyRecoding) // unreadable: prune finds the strays
	}
	released := 0
	if _, ok, err := r.cat.Pack(np.ID); err != nil {
		return 0, err
	} else if !ok {
		for i, h := range np.Holders {
			if tg := r.net.Holder(h); tg != nil && i < len(np.Shape.ShardIDs) {
				if tg.DeleteShard(ctx, np.Shape.ShardIDs[i]) == nil {
					released++
				}
			}
		}
		r.log.Info("released the shards of a re-coding cut short", "pack", np.ID.Short(), "shards", released)
	}
	return released, r.db.Delete(kv.Local, keyRecoding)
}
