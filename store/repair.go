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
)

// Repair replaces the friends that have been offline longer than grace, that
// failed proofs at the last verification, or that are no longer friends (see
// repair.Pack). A new head record is published.
func (r *Repo) Repair(ctx context.Context, grace time.Duration) (repair.Report, error) {
	var rep repair.Report
	unlock, err := r.lock("repair")
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
		rep.Replaced = append(rep.Replaced, h)
		r.log.Warn("replacing a friend's role", "friend", h, "why", why)
	}
	slices.Sort(rep.Replaced)
	if len(replace) == 0 {
		return rep, nil
	}
	cfg := repair.Config{
		Catalog: r.cat, Shards: r.fetcher, Identity: r.keys.AgeIdentity(), M: r.parity(),
		Holder: r.net.Holder, Repacked: r.relinkRefs, Logger: r.log,
		Release: r.releaseShards,
	}
	for _, p := range packs {
		var badIdx []int
		for i, h := range p.Holders {
			if _, ok := replace[h]; ok {
				badIdx = append(badIdx, i)
			}
		}
		if len(badIdx) == 0 {
			continue
		}
		if err := repair.Pack(ctx, cfg, p, badIdx, replace, reach, &rep); err != nil {
			rep.Failed = append(rep.Failed, fmt.Sprintf("pack %s: %v", p.ID.Short(), err))
			r.log.Error("could not repair a pack", "pack", p.ID.Short(), "err", err)
		}
	}
	return rep, r.finishRepair(ctx, replace, &rep)
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
