package prune

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/plug-net/plug/store/catalog"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/target"
)

// Retention says which snapshots to keep: the last N, and the newest of
// each of the last D days, W weeks and M months (like FreedomBox and
// restic's --keep-daily and friends). Zero fields keep nothing by that rule.
type Retention struct {
	Last, Daily, Weekly, Monthly int
}

// DefaultRetention is what the daemon applies after scheduled backups.
var DefaultRetention = Retention{Daily: 5, Weekly: 3, Monthly: 3}

// Keep returns the snapshots to keep (snaps oldest first): of the owner's
// snapshots those the retention keeps, and of the state-only ones only the
// newest, when it is newer than every owner's snapshot.
func (ret Retention) Keep(snaps []data.Snapshot) map[data.ID]bool {
	var owner []data.Snapshot
	for _, s := range snaps {
		if !s.StateOnly() {
			owner = append(owner, s)
		}
	}
	keep := ret.keep(owner)
	if n := len(snaps); n > 0 && snaps[n-1].StateOnly() {
		keep[snaps[n-1].ID] = true
	}
	return keep
}

// keep returns the snapshots a retention keeps (snaps oldest first).
func (ret Retention) keep(snaps []data.Snapshot) map[data.ID]bool {
	keep := map[data.ID]bool{}
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

// Report says what a prune did.
type Report struct {
	PacksDeleted int   `json:"packs_deleted"`
	BytesFreed   int64 `json:"bytes_freed"` // shard bytes deleted at friends
	PacksKept    int   `json:"packs_kept"`
}

// Trees reads snapshot trees.
type Trees interface {
	LoadTree(ctx context.Context, ids []data.ID) (*data.Tree, error)
}

// Catalog is what a prune reads and drops.
type Catalog interface {
	EachChunk(fn func(id data.ID, ref catalog.ChunkRef) error) error
	Packs(fn func(catalog.PackRecord) error) error
	DropPack(id data.ID, chunks []data.ID) error
}

// Config is what a prune works on.
type Config struct {
	Trees   Trees
	Catalog Catalog
	// Holder returns a friend by name (peer ID), or nil.
	Holder func(name string) target.Holder
	// KeepPacks are packs in use besides the snapshots' (the head record's
	// index segments and state).
	KeepPacks map[data.ID]bool
	// Dropped, if set, is told of the chunks of each dropped pack (to drop
	// them from the tree cache).
	Dropped func(chunks []data.ID)
	// Release records, before any pack is dropped, the shards to delete at
	// the friends once a head record without their packs is out (a crash
	// before then leaves the friends' head record naming only shards that
	// are there).
	Release func([]Shard) error
}

// Shard is one shard of a pack at one friend.
type Shard struct {
	Pack   data.ID
	Holder string
	ID     data.ID
}

// Prune drops the packs none of whose blobs a snapshot uses (nor
// KeepPacks names) from the catalog, and hands their shards to Release,
// to be deleted at the friends once the head record no longer names them
// (should one be unreachable then, its shard is merely garbage, never a
// reference to nothing). A snapshot whose trees cannot be read stops it
// before anything is dropped.
func Prune(ctx context.Context, cfg Config, snaps []data.Snapshot) (Report, error) {
	var rep Report
	used, err := usedChunks(ctx, cfg.Trees, snaps)
	if err != nil {
		return rep, err
	}
	usedPacks := map[data.ID]bool{}
	for p := range cfg.KeepPacks {
		usedPacks[p] = true
	}
	chunksOf := map[data.ID][]data.ID{}
	err = cfg.Catalog.EachChunk(func(id data.ID, ref catalog.ChunkRef) error {
		chunksOf[ref.Pack] = append(chunksOf[ref.Pack], id)
		if used[id] {
			usedPacks[ref.Pack] = true
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	var drop []catalog.PackRecord
	err = cfg.Catalog.Packs(func(p catalog.PackRecord) error {
		if usedPacks[p.ID] {
			rep.PacksKept++
		} else {
			drop = append(drop, p)
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	var shards []Shard
	for _, p := range drop {
		for i, h := range p.Holders {
			shards = append(shards, Shard{Pack: p.ID, Holder: h, ID: p.Shape.ShardIDs[i]})
		}
	}
	if err := cfg.Release(shards); err != nil {
		return rep, err
	}
	for _, p := range drop {
		if err := cfg.Catalog.DropPack(p.ID, chunksOf[p.ID]); err != nil {
			return rep, err
		}
		if cfg.Dropped != nil {
			cfg.Dropped(chunksOf[p.ID])
		}
		rep.BytesFreed += int64(p.Shape.ShardSize()) * int64(len(p.Holders))
		rep.PacksDeleted++
	}
	return rep, nil
}

// usedChunks walks every snapshot's trees (and state) and returns every
// chunk they use, trees included.
func usedChunks(ctx context.Context, trees Trees, snaps []data.Snapshot) (map[data.ID]bool, error) {
	used := map[data.ID]bool{}
	var walk func(ids []data.ID) error
	walk = func(ids []data.ID) error {
		for _, id := range ids {
			used[id] = true
		}
		t, err := trees.LoadTree(ctx, ids)
		if err != nil {
			return err
		}
		for _, n := range t.Nodes {
			for _, c := range n.Content {
				used[c] = true
			}
			if n.Type == data.TypeDir && !slices.ContainsFunc(n.Subtree, func(id data.ID) bool { return used[id] }) {
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
				return nil, err
			}
		}
		if len(s.Tree) == 0 {
			continue
		}
		if err := walk(s.Tree); err != nil {
			return nil, fmt.Errorf("prune: read snapshot %s: %w (nothing deleted)", s.ID.Short(), err)
		}
	}
	return used, nil
}
