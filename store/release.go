package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/kv"
	"github.com/plug-net/plug/store/target"
)

// keyReleases lists the shards of packs that a re-coding or a repair
// replaced (space kv.Local). They are released only once a head record
// that no longer names their pack reached the friends: until then a
// recovery from the friends' head record still finds them.
var keyReleases = []byte("backup/releases")

// release is one shard to release from one friend.
type release struct {
	Pack   data.ID   `json:"pack"`
	Holder string    `json:"holder"`
	Shard  data.ID   `json:"shard"`
	Since  time.Time `json:"since,omitzero"`
}

// releaseKept is how long a shard waits for its friend to come back and
// drop it.
const releaseKept = 90 * 24 * time.Hour

// releaseShards records shards of pack (holders[i] holds shards[i]) to
// release after the next head record.
func (r *Repo) releaseShards(pack data.ID, holders []string, shards []data.ID) error {
	rs := make([]release, len(holders))
	for i := range holders {
		rs[i] = release{Pack: pack, Holder: holders[i], Shard: shards[i]}
	}
	return r.releaseLater(rs)
}

// releaseLater records shards to release after the next head record.
func (r *Repo) releaseLater(rs []release) error {
	if len(rs) == 0 {
		return nil
	}
	// The catalog is about to change: a head record must go out before
	// these are released, even if a crash comes first.
	if err := r.markDirty(); err != nil {
		return err
	}
	r.releaseMu.Lock()
	defer r.releaseMu.Unlock()
	all, err := r.pendingReleases()
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	for i := range rs {
		rs[i].Since = now
	}
	b, err := json.Marshal(append(all, rs...))
	if err != nil {
		return err
	}
	return r.db.PutSync(kv.Local, keyReleases, b)
}

func (r *Repo) pendingReleases() ([]release, error) {
	b, err := r.db.Get(kv.Local, keyReleases)
	if errors.Is(err, kv.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rs []release
	if err := json.Unmarshal(b, &rs); err != nil {
		r.log.Warn("the list of shards to release is damaged; prune releases them instead", "err", err)
		return nil, nil
	}
	return rs, nil
}

// releasePending publishes the head record if the catalog changed, then
// releases the shards waiting for it (best effort: what a friend does not
// drop now, prune drops later). It returns how many were released.
func (r *Repo) releasePending(ctx context.Context) (int, error) {
	if r.Dirty() {
		if rs, err := r.pendingReleases(); err != nil || len(rs) == 0 {
			return 0, err
		}
		if err := r.Publish(ctx); err != nil {
			return 0, fmt.Errorf("the replaced shards wait for the head record: %w", err)
		}
	}
	return r.releaseAfterPublish(ctx)
}

// releaseAfterPublish releases the shards waiting for a head record, which
// was just published.
func (r *Repo) releaseAfterPublish(ctx context.Context) (int, error) {
	r.releaseMu.Lock()
	defer r.releaseMu.Unlock()
	rs, err := r.pendingReleases()
	if err != nil || len(rs) == 0 {
		return 0, err
	}
	// Each friend's shards in turn, the friends at once. A friend that
	// does not answer (or fails) keeps the rest of its list until the
	// next round: a friend that is away costs one bounded try, not one
	// per shard.
	byHolder := map[string][]release{}
	var holders []string
	for _, x := range rs {
		if r.stillHeld(x) {
			continue // its pack still names it (a prune cut short): not garbage
		}
		if r.net.Holder(x.Holder) == nil {
			continue // no longer a friend: it dropped everything of this plug
		}
		if _, ok := byHolder[x.Holder]; !ok {
			holders = append(holders, x.Holder)
		}
		byHolder[x.Holder] = append(byHolder[x.Holder], x)
	}
	var (
		mu       sync.Mutex
		released int
		left     []release // friends out of reach: asked again at the next round
		wg       sync.WaitGroup
	)
	for _, h := range holders {
		wg.Go(func() {
			n, kept := r.releaseFrom(ctx, r.net.Holder(h), byHolder[h])
			mu.Lock()
			defer mu.Unlock()
			released += n
			left = append(left, kept...)
		})
	}
	wg.Wait()
	if len(left) == 0 {
		return released, r.db.Delete(kv.Local, keyReleases)
	}
	b, err := json.Marshal(left)
	if err != nil {
		return released, err
	}
	return released, r.db.PutSync(kv.Local, keyReleases, b)
}

// releaseTry bounds the first release asked of a friend in a round: one
// that is away is not waited for.
var releaseTry = 15 * time.Second

// releaseFrom asks tg to drop the shards rs; it stops at the first failure
// and returns how many went and the ones still to release.
func (r *Repo) releaseFrom(ctx context.Context, tg target.Holder, rs []release) (int, []release) {
	if tg == nil {
		return 0, nil
	}
	drop := func(id data.ID, first bool) error {
		if !first {
			return tg.DeleteShard(ctx, id)
		}
		cctx, cancel := context.WithTimeout(ctx, releaseTry)
		defer cancel()
		return tg.DeleteShard(cctx, id)
	}
	for i, x := range rs {
		if err := drop(x.Shard, i == 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
			var kept []release
			for _, y := range rs[i:] {
				if time.Since(y.Since) < releaseKept {
					kept = append(kept, y)
				}
			}
			r.log.Debug("a friend could not release replaced shards yet", "friend", x.Holder, "shards", len(rs)-i, "err", err)
			return i, kept
		}
	}
	return len(rs), nil
}

// releasing reports whether shards of pack wait to be released: the
// catalog dropped it, and a head record without it is still to go out.
func (r *Repo) releasing(pack data.ID) bool {
	r.releaseMu.Lock()
	defer r.releaseMu.Unlock()
	rs, err := r.pendingReleases()
	if err != nil {
		return false
	}
	for _, x := range rs {
		if x.Pack == pack {
			return true
		}
	}
	return false
}

// stillHeld reports whether the catalog still names shard x at its holder.
func (r *Repo) stillHeld(x release) bool {
	p, ok, err := r.cat.Pack(x.Pack)
	if err != nil || !ok {
		return err != nil // unsure: keep it
	}
	for i, h := range p.Holders {
		if h == x.Holder && i < len(p.Shape.ShardIDs) && p.Shape.ShardIDs[i] == x.Shard {
			return true
		}
	}
	return false
}
