package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/plug-net/plug/store/catalog"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/kv"
	"github.com/plug-net/plug/store/repair"
	"github.com/plug-net/plug/store/target"
)

// Repair replaces the friends that have been offline longer than grace, that
// failed proofs at the last verification, or that are no longer friends (see
// repair.Pack). A new head record is published.
func (r *Repo) Repair(ctx context.Context, grace time.Duration) (repair.Report, error) {
	var rep repair.Report
	unlock, err := r.lock(ctx, "repair")
	if err != nil {
		return rep, err
	}
	defer unlock()
	if grace <= 0 {
		grace = repair.DefaultGrace
	}
	reach := r.net.Reachable(ctx)
	online := map[string]bool{}
	for _, h := range reach {
		online[h.Name()] = true
	}
	var packs []catalog.PackRecord
	if err := r.cat.Packs(func(p catalog.PackRecord) error { packs = append(packs, p); return nil }); err != nil {
		return rep, err
	}
	replace := repair.Choose(packs, r.net.Friends(), online, r.failedProofs, grace)
	for h, why := range replace {
		r.log.Warn("replacing a friend's role", "friend", h, "why", why)
	}
	if len(replace) == 0 {
		return rep, nil
	}
	cfg := repair.Config{
		Catalog: r.cat, Shards: r.fetcher, Identity: r.keys.AgeIdentity(), M: r.parity(),
		Holder: r.net.Holder, Repacked: r.relinkRefs, Logger: r.log,
		Release: r.releaseShards,
	}
	// A friend removed while the repair runs is replaced too: a pass
	// repaired before its removal is followed by another for its packs.
	failed := map[data.ID]bool{}
	for pass := 0; ; pass++ {
		if !r.repairPass(ctx, cfg, packs, replace, &reach, failed, &rep) || ctx.Err() != nil || pass == 2 {
			break
		}
		packs = packs[:0]
		if err := r.cat.Packs(func(p catalog.PackRecord) error { packs = append(packs, p); return nil }); err != nil {
			return rep, err
		}
	}
	for h := range replace {
		rep.Replaced = append(rep.Replaced, h)
	}
	slices.Sort(rep.Replaced)
	return rep, r.finishRepair(ctx, replace, &rep)
}

// repairPass gives the shards of packs held by friends in replace to
// others. Before each pack it drops from reach, and adds to replace, the
// friends removed since the repair began; it says whether it did (packs
// repaired before then may name them). A pack that failed in an earlier
// pass (failed) is not tried again.
func (r *Repo) repairPass(ctx context.Context, cfg repair.Config, packs []catalog.PackRecord, replace map[string]string, reach *[]target.Holder, failed map[data.ID]bool, rep *repair.Report) (removed bool) {
	for _, p := range packs {
		if ctx.Err() != nil || failed[p.ID] {
			continue
		}
		*reach = slices.DeleteFunc(*reach, func(h target.Holder) bool {
			if r.net.Holder(h.Name()) != nil {
				return false
			}
			if _, known := replace[h.Name()]; !known {
				replace[h.Name()] = "no longer a friend"
				r.log.Warn("replacing a friend's role", "friend", h.Name(), "why", "removed while the repair ran")
				removed = true
			}
			return true
		})
		var badIdx []int
		for i, h := range p.Holders {
			if _, ok := replace[h]; ok {
				badIdx = append(badIdx, i)
			}
		}
		if len(badIdx) == 0 {
			continue
		}
		if err := repair.Pack(ctx, cfg, p, badIdx, replace, *reach, rep); err != nil {
			failed[p.ID] = true
			rep.Failed = append(rep.Failed, fmt.Sprintf("pack %s: %v", p.ID.Short(), err))
			r.log.Error("could not repair a pack", "pack", p.ID.Short(), "err", err)
		}
	}
	return removed
}

// finishRepair forgets the proofs of the replaced friends (once every pack
// is repaired) and publishes the head record.
func (r *Repo) finishRepair(ctx context.Context, replace map[string]string, rep *repair.Report) error {
	if len(rep.Failed) == 0 {
		for h := range replace {
			if err := r.db.Delete(kv.Local, healthKey(h)); err != nil {
				return err
			}
		}
	}
	if err := r.markDirty(); err != nil {
		return err
	}
	if err := r.publish(ctx); err != nil {
		return fmt.Errorf("repaired, but publishing the head record failed: %w", err)
	}
	rep.Published = true
	if _, err := r.releaseAfterPublish(ctx); err != nil {
		r.log.Warn("could not release the shards of repaired packs; prune releases them later", "err", err)
	}
	if len(rep.Failed) > 0 {
		return fmt.Errorf("%d packs could not be repaired: %v", len(rep.Failed), rep.Failed)
	}
	return nil
}

func (r *Repo) failedProofs(holder string) bool {
	b, err := r.db.Get(kv.Local, healthKey(holder))
	if err != nil {
		return false
	}
	var h holderHealth
	return json.Unmarshal(b, &h) == nil && h.Failed > 0
}

// relinkRefs points head-record references into a pack at its replacement
// (the offsets are the same: the plaintext is).
func (r *Repo) relinkRefs(old, new data.ID) {
	for _, key := range [][]byte{keyIndexRefs, keyState} {
		refs, err := r.loadRefs(key)
		if err != nil {
			r.log.Error("could not read the head record's references to re-point them", "err", err)
			continue
		}
		changed := false
		for i := range refs {
			if refs[i].Pack == old {
				refs[i].Pack = new
				changed = true
			}
		}
		if changed {
			if err := r.saveRefs(key, refs); err != nil {
				r.log.Error("could not re-point the head record's references to a pack cut again", "err", err)
			}
		}
	}
}
