package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/kv"
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
	released := 0
	var left []release // friends out of reach: asked again at the next round
	for _, x := range rs {
		if r.stillHeld(x) {
			continue // its pack still names it (a prune cut short): not garbage
		}
		tg := r.net.Holder(x.Holder)
		if tg == nil {
			continue // no longer a friend: it dropped everything of this plug
		}
		if err := tg.DeleteShard(ctx, x.Shard); err != nil && !errors.Is(err, fs.ErrNotExist) {
			if time.Since(x.Since) < releaseKept {
				left = append(left, x)
			}
			continue
		}
		released++
	}
	if len(left) == 0 {
		return released, r.db.Delete(kv.Local, keyReleases)
	}
	b, err := json.Marshal(left)
	if err != nil {
		return released, err
	}
	return released, r.db.PutSync(kv.Local, keyReleases, b)
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
