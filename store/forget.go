package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/kv"
	"github.com/plug-net/plug/store/prune"
)

// ForgetReport says what Forget did.
type ForgetReport struct {
	Kept         int   `json:"kept"`
	Removed      int   `json:"removed"`
	PacksDeleted int   `json:"packs_deleted"`
	BytesFreed   int64 `json:"bytes_freed"` // shard bytes deleted at friends
	PacksKept    int   `json:"packs_kept"`
}

// Forget drops the snapshots the retention does not keep and, with prune,
// deletes on every friend the packs that no remaining snapshot uses. A new
// head record is published.
func (r *Repo) Forget(ctx context.Context, ret prune.Retention, withPrune bool) (ForgetReport, error) {
	var rep ForgetReport
	unlock, err := r.lock(ctx, "forget")
	if err != nil {
		return rep, err
	}
	defer unlock()
	snaps, err := r.Snapshots()
	if err != nil {
		return rep, err
	}
	keep := ret.Keep(snaps)
	for _, s := range snaps {
		if keep[s.ID] {
			rep.Kept++
			continue
		}
		if err := r.db.Delete(kv.Snapshots, s.ID[:]); err != nil {
			return rep, err
		}
		if err := r.db.Delete(kv.Local, snapDropsKey(s.ID)); err != nil {
			return rep, err
		}
		rep.Removed++
	}
	if rep.Removed > 0 {
		r.log.Info("snapshots forgotten", "removed", rep.Removed, "kept", rep.Kept)
	}
	if withPrune {
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
		// Only now, with no head record naming the dropped packs left to
		// publish, their shards go.
		if _, err := r.releaseAfterPublish(ctx); err != nil {
			return rep, fmt.Errorf("forgot, but releasing the dropped packs' shards failed (prune again later): %w", err)
		}
	}
	return rep, nil
}

// prune deletes the packs none of whose blobs is used by a snapshot, the
// index or the state (prune.Prune).
func (r *Repo) prune(ctx context.Context, rep *ForgetReport) error {
	snaps, err := r.Snapshots()
	if err != nil {
		return err
	}
	keepPacks := map[data.ID]bool{}
	for _, key := range [][]byte{keyIndexRefs, keyState} {
		refs, err := r.loadRefs(key)
		if err != nil {
			return err
		}
		for _, ref := range refs {
			keepPacks[ref.Pack] = true
		}
	}
	var errs []error
	pr, err := prune.Prune(ctx, prune.Config{
		Trees: r, Catalog: r.cat, Holder: r.net.Holder, KeepPacks: keepPacks,
		Release: func(shards []prune.Shard) error {
			rs := make([]release, len(shards))
			for i, x := range shards {
				rs[i] = release{Pack: x.Pack, Holder: x.Holder, Shard: x.ID}
			}
			return r.releaseLater(rs)
		},
		Dropped: func(chunks []data.ID) {
			for _, c := range chunks {
				if err := r.db.Delete(kv.Trees, c[:]); err != nil {
					errs = append(errs, err)
				}
			}
		},
	}, snaps)
	rep.PacksDeleted, rep.BytesFreed, rep.PacksKept = pr.PacksDeleted, pr.BytesFreed, pr.PacksKept
	if err != nil {
		return err
	}
	if pr.PacksDeleted > 0 {
		// Old index segments describe the dropped packs: write a fresh one.
		if err := r.db.Put(kv.Local, keyIndexFull, []byte{1}); err != nil {
			return err
		}
	}
	r.log.Info("pruned", "packs_deleted", rep.PacksDeleted, "packs_kept", rep.PacksKept, "bytes_freed", rep.BytesFreed)
	if len(errs) > 0 {
		return fmt.Errorf("pruned, but the tree cache kept some dropped trees: %w", errors.Join(errs...))
	}
	return nil
}
