package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/plug-net/plug/store/kv"
)

// DefaultGrace is how long a friend may be offline before its shards are
// placed elsewhere.
const DefaultGrace = 72 * time.Hour

// RepairReport says what a repair did.
type RepairReport struct {
	Replaced  []string `json:"replaced"` // friends whose role was given to others
	Moved     int      `json:"moved"`    // shards rebuilt on another friend
	Repacked  int      `json:"repacked"` // packs cut again over the friends left
	Failed    []string `json:"failed,omitempty"`
	Published bool     `json:"published"`
}

// Repair replaces the friends that have been offline longer than grace, that
// failed proofs at the last verification, or that are no longer friends: each
// of their shards is rebuilt from k others and put on a reachable friend that
// holds no shard of that pack; when there is none, the pack is cut again
// over the friends left. A new head record is published.
func (r *Repo) Repair(ctx context.Context, grace time.Duration) (RepairReport, error) {
	var rep RepairReport
	unlock, err := r.lock("repair")
	if err != nil {
		return rep, err
	}
	defer unlock()
	if grace <= 0 {
		grace = DefaultGrace
	}
	reach := r.net.Reachable(ctx)
	online := map[string]Holder{}
	for _, h := range reach {
		online[h.Name()] = h
	}
	lastSeen := map[string]time.Time{}
	for _, f := range r.net.Friends() {
		lastSeen[f.PeerID] = f.LastSeen
	}
	replace := map[string]string{} // holder -> why
	var packs []PackRecord
	if err := r.cat.Packs(func(p PackRecord) error { packs = append(packs, p); return nil }); err != nil {
		return rep, err
	}
	for _, p := range packs {
		for _, h := range p.Holders {
			if _, done := replace[h]; done {
				continue
			}
			seen, isFriend := lastSeen[h]
			switch {
			case !isFriend:
				replace[h] = "no longer a friend"
			case online[h] == nil && time.Since(seen) > grace:
				replace[h] = fmt.Sprintf("offline since %s", seen.Format(time.DateTime))
			case online[h] != nil && r.failedProofs(h):
				replace[h] = "failed proofs of storage"
			}
		}
	}
	for h, why := range replace {
		rep.Replaced = append(rep.Replaced, h)
		r.log.Warn("replacing a friend's role", "friend", h, "why", why)
	}
	slices.Sort(rep.Replaced)
	if len(replace) == 0 {
		return rep, nil
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
		if err := r.repairPack(ctx, p, badIdx, replace, reach, &rep); err != nil {
			rep.Failed = append(rep.Failed, fmt.Sprintf("pack %s: %v", p.ID.Short(), err))
			r.log.Error("could not repair a pack", "pack", p.ID.Short(), "err", err)
		}
	}
	for h := range replace {
		if len(rep.Failed) == 0 {
			r.db.Delete(kv.Local, healthKey(h))
		}
	}
	if err := r.markDirty(); err != nil {
		return rep, err
	}
	if err := r.publish(ctx); err != nil {
		return rep, fmt.Errorf("repaired, but publishing the head record failed: %w", err)
	}
	rep.Published = true
	if len(rep.Failed) > 0 {
		return rep, fmt.Errorf("%d packs could not be repaired: %v", len(rep.Failed), rep.Failed)
	}
	return rep, nil
}

func (r *Repo) failedProofs(holder string) bool {
	b, err := r.db.Get(kv.Local, healthKey(holder))
	if err != nil {
		return false
	}
	var h holderHealth
	return json.Unmarshal(b, &h) == nil && h.Failed > 0
}

func (r *Repo) repairPack(ctx context.Context, p PackRecord, badIdx []int, replace map[string]string, reach []Holder, rep *RepairReport) error {
	skip := map[int]bool{}
	for _, i := range badIdx {
		skip[i] = true
	}
	shards, err := r.fetcher.FetchShards(ctx, p, skip)
	if err != nil {
		return err
	}
	// Friends that can take a shard of this pack: reachable, good, and
	// holding none of it yet.
	var spare []Holder
	for _, h := range reach {
		if _, bad := replace[h.Name()]; bad || slices.Contains(p.Holders, h.Name()) {
			continue
		}
		spare = append(spare, h)
	}
	if len(spare) >= len(badIdx) {
		np := p
		np.Holders = slices.Clone(p.Holders)
		for j, i := range badIdx {
			h := spare[j]
			if err := h.PutShard(ctx, p.Shape.ShardIDs[i], shards[i]); err != nil {
				return fmt.Errorf("put rebuilt shard %d on %s: %w", i, h.Name(), err)
			}
			np.Holders[i] = h.Name()
			rep.Moved++
		}
		return r.cat.PutPack(np)
	}
	// Not enough spare friends: cut the pack again over the friends left.
	var keep []Holder
	for _, h := range reach {
		if _, bad := replace[h.Name()]; !bad {
			keep = append(keep, h)
		}
	}
	k := min(len(keep)-r.cfg.M, MaxDataShards)
	if k < 1 {
		return fmt.Errorf("%w: %d good friends reachable, need %d", ErrTooFewFriends, len(keep), r.cfg.M+1)
	}
	sealed, err := recut(&Sealed{ID: p.ID, Shape: p.Shape, Shards: shards}, k, r.cfg.M)
	if err != nil {
		return err
	}
	for i, b := range sealed.Shards {
		if err := keep[i].PutShard(ctx, sealed.Shape.ShardIDs[i], b); err != nil {
			return fmt.Errorf("put shard %d of the repacked pack on %s: %w", i, keep[i].Name(), err)
		}
	}
	// Move the chunks to the new pack: its trailer lists them.
	o := NewOpener(r.keys.AgeIdentity())
	plain, _, err := o.Open(sealed.Shape, slices.Clone(sealed.Shards))
	if err != nil {
		return err
	}
	entries, err := ParsePack(plain)
	if err != nil {
		return err
	}
	np := PackRecord{ID: sealed.ID, Shape: sealed.Shape, Blobs: len(entries), Meta: p.Meta, Created: time.Now().UTC()}
	for i := range sealed.Shards {
		np.Holders = append(np.Holders, keep[i].Name())
	}
	if err := r.cat.AddPack(np, entries); err != nil {
		return err
	}
	if err := r.cat.DropPack(p.ID, nil); err != nil { // its chunks now point at np
		return err
	}
	r.relinkIndexRefs(p.ID, np.ID)
	for i, h := range p.Holders { // best effort: the old shards are garbage now
		if tg := r.net.Holder(h); tg != nil && !skip[i] {
			tg.DeleteShard(ctx, p.Shape.ShardIDs[i])
		}
	}
	rep.Repacked++
	return nil
}

// relinkIndexRefs points head-record references into a pack at its
// replacement (the offsets are the same: the plaintext is).
func (r *Repo) relinkIndexRefs(old, new ID) {
	for _, key := range [][]byte{keyIndexRefs, keyState} {
		refs, err := r.loadRefs(key)
		if err != nil {
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
			r.saveRefs(key, refs)
		}
	}
}
