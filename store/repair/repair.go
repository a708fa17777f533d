package repair

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"filippo.io/age"

	"github.com/plug-net/plug/store/catalog"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/head"
	"github.com/plug-net/plug/store/pack"
	"github.com/plug-net/plug/store/seal"
	"github.com/plug-net/plug/store/target"
)

// DefaultGrace is how long a friend may be offline before its shards are
// placed elsewhere.
const DefaultGrace = 72 * time.Hour

// Report says what a repair did.
type Report struct {
	Replaced  []string `json:"replaced"` // friends whose role was given to others
	Moved     int      `json:"moved"`    // shards rebuilt on another friend
	Repacked  int      `json:"repacked"` // packs cut again over the friends left
	Failed    []string `json:"failed,omitempty"`
	Published bool     `json:"published"`
}

// Choose returns the holders of packs that lose their role, and why: those
// that are no longer friends, offline longer than grace, or that failed
// proofs of storage at the last verification (failed).
func Choose(packs []catalog.PackRecord, friends []head.Friend, online map[string]bool, failed func(holder string) bool, grace time.Duration) map[string]string {
	lastSeen := map[string]time.Time{}
	for _, f := range friends {
		lastSeen[f.PeerID] = f.LastSeen
	}
	replace := map[string]string{} // holder -> why
	for _, p := range packs {
		for _, h := range p.Holders {
			if _, done := replace[h]; done {
				continue
			}
			seen, isFriend := lastSeen[h]
			switch {
			case !isFriend:
				replace[h] = "no longer a friend"
			case !online[h] && time.Since(seen) > grace:
				replace[h] = fmt.Sprintf("offline since %s", seen.Format(time.DateTime))
			case online[h] && failed(h):
				replace[h] = "failed proofs of storage"
			}
		}
	}
	return replace
}

// Catalog is what a repair changes.
type Catalog interface {
	PutPack(rec catalog.PackRecord) error
	AddPack(rec catalog.PackRecord, entries []pack.Entry) error
	DropPack(id data.ID, chunks []data.ID) error
}

// Shards fetches every shard of a pack, rebuilding the missing ones.
type Shards interface {
	FetchShards(ctx context.Context, rec catalog.PackRecord, skip map[int]bool) ([][]byte, error)
}

// Config is what a repair works with.
type Config struct {
	Catalog  Catalog
	Shards   Shards
	Identity age.Identity // opens a pack cut again, to re-point its chunks
	M        int
	// Holder returns a friend by name (peer ID), or nil.
	Holder func(name string) target.Holder
	// Repacked is told when a pack was cut again into a new one: what
	// referred to the old pack must follow (the offsets are the same).
	Repacked func(old, new data.ID)
	// Release, if set, records shards of pack (holders[i] holds shards[i])
	// to release once no head record names them there.
	Release func(pack data.ID, holders []string, shards []data.ID) error
	// Cutting, if set, is told the new pack's shards and holders before
	// any is put, so that a crash midway leaves a record of what to
	// release (re-coding uses it).
	Cutting func(np catalog.PackRecord) error
	Logger  *slog.Logger
}

// Pack gives the shards badIdx of pack p (held by friends in replace) to
// others: each is rebuilt from k others and put on a reachable friend
// (reach) that holds no shard of the pack; when there are not enough, the
// pack's ciphertext is cut again over the good friends left, into a new
// pack. It adds to rep what it did.
func Pack(ctx context.Context, cfg Config, p catalog.PackRecord, badIdx []int, replace map[string]string, reach []target.Holder, rep *Report) error {
	skip := map[int]bool{}
	for _, i := range badIdx {
		skip[i] = true
	}
	shards, err := cfg.Shards.FetchShards(ctx, p, skip)
	if err != nil {
		return err
	}
	// Friends that can take a shard of this pack: reachable, good, and
	// holding none of it yet.
	var spare []target.Holder
	for _, h := range reach {
		if _, bad := replace[h.Name()]; bad || slices.Contains(p.Holders, h.Name()) {
			continue
		}
		spare = append(spare, h)
	}
	if len(spare) >= len(badIdx) {
		return move(ctx, cfg, p, badIdx, shards, spare, rep)
	}
	var keep []target.Holder
	for _, h := range reach {
		if _, bad := replace[h.Name()]; !bad {
			keep = append(keep, h)
		}
	}
	// Turned by the pack, as a backup turns its targets: packs cut again
	// do not all put their parity shards, which a restore does not read, on
	// the same friends.
	if len(keep) > 0 {
		r := int(p.ID[0]) % len(keep)
		keep = slices.Concat(keep[r:], keep[:r])
	}
	if _, err := Recut(ctx, cfg, p, shards, keep); err != nil {
		return err
	}
	// The old shards go once no head record names their pack: those of
	// the friends replaced too, if they come back.
	if cfg.Release != nil {
		if err := cfg.Release(p.ID, p.Holders, p.Shape.ShardIDs); err != nil {
			return err
		}
	}
	rep.Repacked++
	return nil
}

// move puts the rebuilt shards badIdx on spare friends.
func move(ctx context.Context, cfg Config, p catalog.PackRecord, badIdx []int, shards [][]byte, spare []target.Holder, rep *Report) error {
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
	if err := cfg.Catalog.PutPack(np); err != nil {
		return err
	}
	// The replaced friend drops its copy if it comes back.
	if cfg.Release != nil {
		var hs []string
		var ids []data.ID
		for _, i := range badIdx {
			hs, ids = append(hs, p.Holders[i]), append(ids, p.Shape.ShardIDs[i])
		}
		return cfg.Release(p.ID, hs, ids)
	}
	return nil
}

// Recut cuts the pack's ciphertext (all its shards) again over keep
// (k' = len(keep) - m, the first k'+m of keep), records the new pack with
// the chunks its trailer lists once every shard is acknowledged, drops the
// old one and returns the new. The old shards are the caller's to release.
func Recut(ctx context.Context, cfg Config, p catalog.PackRecord, shards [][]byte, keep []target.Holder) (catalog.PackRecord, error) {
	k := min(len(keep)-cfg.M, seal.MaxDataShards)
	if k < 1 {
		return catalog.PackRecord{}, fmt.Errorf("%w: %d good friends reachable, need %d", target.ErrTooFewFriends, len(keep), cfg.M+1)
	}
	sealed, err := seal.Recut(&seal.Sealed{ID: p.ID, Shape: p.Shape, Shards: shards}, k, cfg.M)
	if err != nil {
		return catalog.PackRecord{}, err
	}
	np := catalog.PackRecord{ID: sealed.ID, Shape: sealed.Shape, Meta: p.Meta, Created: time.Now().UTC()}
	for i := range sealed.Shards {
		np.Holders = append(np.Holders, keep[i].Name())
	}
	if cfg.Cutting != nil {
		if err := cfg.Cutting(np); err != nil {
			return catalog.PackRecord{}, err
		}
	}
	for i, b := range sealed.Shards {
		if err := keep[i].PutShard(ctx, sealed.Shape.ShardIDs[i], b); err != nil {
			return catalog.PackRecord{}, fmt.Errorf("put shard %d of the repacked pack on %s: %w", i, keep[i].Name(), err)
		}
	}
	plain, _, err := seal.NewOpener(cfg.Identity).Open(sealed.Shape, slices.Clone(sealed.Shards))
	if err != nil {
		return catalog.PackRecord{}, err
	}
	entries, err := pack.Parse(plain)
	if err != nil {
		return catalog.PackRecord{}, err
	}
	np.Blobs = len(entries)
	if err := cfg.Catalog.AddPack(np, entries); err != nil {
		return catalog.PackRecord{}, err
	}
	// What refers to the old pack follows before it goes: a crash in
	// between leaves both packs, never a reference to a dropped one.
	if cfg.Repacked != nil {
		cfg.Repacked(p.ID, np.ID)
	}
	if err := cfg.Catalog.DropPack(p.ID, nil); err != nil { // its chunks now point at np
		return catalog.PackRecord{}, err
	}
	return np, nil
}
