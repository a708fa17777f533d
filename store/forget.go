package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/plug-net/plug/store/kv"
)

// Retention says which snapshots to keep: the last N, and the newest of
// each of the last D days, W weeks and M months (like FreedomBox and
// restic's --keep-daily and friends). Zero fields keep nothing by that rule.
type Retention struct {
	Last, Daily, Weekly, Monthly int
}

// DefaultRetention is what the daemon applies after scheduled backups.
var DefaultRetention = Retention{Daily: 5, Weekly: 3, Monthly: 3}

// ForgetReport says what Forget did.
type ForgetReport struct {
	Kept         int   `json:"kept"`
	Removed      int   `json:"removed"`
	PacksDeleted int   `json:"packs_deleted"`
	BytesFreed   int64 `json:"bytes_freed"` // shard bytes deleted at friends
	PacksKept    int   `json:"packs_kept"`
}

// keep returns the snapshots a retention keeps (snaps oldest first).
func (ret Retention) keep(snaps []Snapshot) map[ID]bool {
	keep := map[ID]bool{}
	for i := len(snaps) - 1; i >= 0 && len(snaps)-i <= ret.Last; i-- {
		keep[snaps[i].ID] = true
	}
	bucket := func(n int, key func(time.Time) string) {
		seen := map[string]bool{}
		for i := len(snaps) - 1; i >= 0 && len(seen) < n; i-- {
			k := key(snaps[i].Time.Local())
			if !seen[k] {
				seen[k] = true
				keep[snaps[i].ID] = true
			}
		}
	}
	bucket(ret.Daily, func(t time.Time) string { return t.Format("2006-01-02") })
	bucket(ret.Weekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprint(y, "-", w) })
	bucket(ret.Monthly, func(t time.Time) string { return t.Format("2006-01") })
	return keep
}

// Forget drops the snapshots the retention does not keep and, with prune,
// deletes on every friend the packs that no remaining snapshot uses. A new
// head record is published.
func (r *Repo) Forget(ctx context.Context, ret Retention, prune bool) (ForgetReport, error) {
	var rep ForgetReport
	unlock, err := r.lock("forget")
	if err != nil {
		return rep, err
	}
	defer unlock()
	snaps, err := r.Snapshots()
	if err != nil {
		return rep, err
	}
	// The retention chooses among the owner's snapshots; of the state-only
	// ones only the newest is kept, when it is newer than those.
	var owner []Snapshot
	for _, s := range snaps {
		if !s.StateOnly() {
			owner = append(owner, s)
		}
	}
	keep := ret.keep(owner)
	for i := len(snaps) - 1; i >= 0; i-- {
		if !snaps[i].StateOnly() {
			break
		}
		if i == len(snaps)-1 {
			keep[snaps[i].ID] = true
		}
	}
	for _, s := range snaps {
		if keep[s.ID] {
			rep.Kept++
			continue
		}
		if err := r.db.Delete(kv.Snapshots, s.ID[:]); err != nil {
			return rep, err
		}
		rep.Removed++
	}
	if rep.Removed > 0 {
		r.log.Info("snapshots forgotten", "removed", rep.Removed, "kept", rep.Kept)
	}
	if prune {
		if err := r.prune(ctx, &rep); err != nil {
			return rep, err
		}
	}
	if rep.Removed > 0 || rep.PacksDeleted > 0 {
		if err := r.markDirty(); err != nil {
			return rep, err
		}
		if err := r.publish(ctx); err != nil {
			return rep, fmt.Errorf("forgot, but publishing the head record failed: %w", err)
		}
	}
	return rep, nil
}

// prune deletes the packs none of whose blobs is used by a snapshot, the
// index or the state.
func (r *Repo) prune(ctx context.Context, rep *ForgetReport) error {
	used := map[ID]bool{}
	snaps, err := r.Snapshots()
	if err != nil {
		return err
	}
	var walk func(ids []ID) error
	walk = func(ids []ID) error {
		for _, id := range ids {
			used[id] = true
		}
		t, err := r.LoadTree(ctx, ids)
		if err != nil {
			return err
		}
		for _, n := range t.Nodes {
			for _, c := range n.Content {
				used[c] = true
			}
			if n.Type == TypeDir && !slices.ContainsFunc(n.Subtree, func(id ID) bool { return used[id] }) {
				if err := walk(n.Subtree); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, s := range snaps {
		if len(s.State) > 0 {
			if err := walk(s.State); err != nil {
				return err
			}
		}
		if len(s.Tree) == 0 {
			continue
		}
		if err := walk(s.Tree); err != nil {
			return fmt.Errorf("prune: read snapshot %s: %w (nothing deleted)", s.ID.Short(), err)
		}
	}
	usedPacks := map[ID]bool{}
	for _, key := range [][]byte{keyIndexRefs, keyState} {
		refs, err := r.loadRefs(key)
		if err != nil {
			return err
		}
		for _, ref := range refs {
			usedPacks[ref.Pack] = true
		}
	}
	chunksOf := map[ID][]ID{}
	err = r.cat.EachChunk(func(id ID, ref ChunkRef) error {
		chunksOf[ref.Pack] = append(chunksOf[ref.Pack], id)
		if used[id] {
			usedPacks[ref.Pack] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	var drop []PackRecord
	err = r.cat.Packs(func(p PackRecord) error {
		if usedPacks[p.ID] {
			rep.PacksKept++
		} else {
			drop = append(drop, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range drop {
		// The catalog first: should a friend be unreachable, its shard is
		// merely garbage, never a reference to nothing.
		if err := r.cat.DropPack(p.ID, chunksOf[p.ID]); err != nil {
			return err
		}
		for _, c := range chunksOf[p.ID] {
			r.db.Delete(kv.Trees, c[:])
		}
		for i, h := range p.Holders {
			if tg := r.net.Holder(h); tg != nil {
				if err := tg.DeleteShard(ctx, p.Shape.ShardIDs[i]); err == nil {
					rep.BytesFreed += int64(p.Shape.ShardSize())
				}
			}
		}
		rep.PacksDeleted++
	}
	if len(drop) > 0 {
		// Old index segments describe the dropped packs: write a fresh one.
		if err := r.db.Put(kv.Local, keyIndexFull, []byte{1}); err != nil {
			return err
		}
	}
	r.log.Info("pruned", "packs_deleted", rep.PacksDeleted, "packs_kept", rep.PacksKept, "bytes_freed", rep.BytesFreed)
	return nil
}
