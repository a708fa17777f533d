package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/plug-net/plug/store/catalog"
	"github.com/plug-net/plug/store/check"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/head"
	"github.com/plug-net/plug/store/kv"
)

// holderHealth is what the last verification said of a friend.
type holderHealth struct {
	Checked time.Time `json:"checked"`
	Failed  int       `json:"failed"` // shards missing or corrupt
	OK      int       `json:"ok"`
}

func healthKey(peer string) []byte { return []byte("health/" + peer) }

// Verify checks that the friends still hold the owner's data (see
// check.Verify), and keeps what it found of each friend reached: a friend
// whose shards failed loses its role at the next repair.
func (r *Repo) Verify(ctx context.Context, opt check.Options) (check.Report, error) {
	rep, err := check.Verify(ctx, check.Config{Packs: r.cat, Friends: r.net, NewestHead: r.newestFriendHead, M: r.parity(), House: houseOf(r.net.Friends()), Releasing: r.releasing}, opt)
	if err != nil {
		return rep, err
	}
	now := time.Now().UTC()
	for _, fc := range rep.Friends {
		if fc.Offline {
			continue
		}
		hb, err := json.Marshal(holderHealth{Checked: now, Failed: fc.Missing + fc.Corrupt, OK: fc.Proved})
		if err == nil {
			err = r.db.Put(kv.Local, healthKey(fc.PeerID), hb)
		}
		if err != nil {
			return rep, fmt.Errorf("record what the check found at %s: %w", fc.Name, err)
		}
	}
	r.log.Info("verification done", "read_data", opt.ReadData, "ok", rep.OK, "can_lose", rep.CanLose, "lost_packs", len(rep.LostPacks))
	return rep, nil
}

// newestFriendHead returns the newest valid head record among the reachable
// friends.
func (r *Repo) newestFriendHead(ctx context.Context) (head.Doc, error) {
	var (
		mu   sync.Mutex
		best head.Doc
		wg   sync.WaitGroup
	)
	for _, h := range r.net.Reachable(ctx) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			env, err := h.GetHead(cctx)
			if err != nil {
				return
			}
			doc, err := r.OpenHeadRecord(env)
			if err != nil {
				return
			}
			mu.Lock()
			if doc.Version > best.Version {
				best = doc
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if best.Version == 0 {
		return best, ErrNothingToRecover
	}
	return best, nil
}

// Health is what the catalog says of the backups now.
type Health struct {
	// CanLose is how many friends may vanish at once with every pack still
	// rebuildable (check.CanLose; friends in one house count as one);
	// Target is what the plug aims for.
	CanLose, Target int
	Packs           int
	LostPacks       int
	// SharedHouses names the friends that live in one house ("Bob and
	// Cat"): losing it loses them all.
	SharedHouses []string
}

// Health counts, from the catalog, how many friends the plug can lose: a
// holder that is no longer a friend counts as gone already.
func (r *Repo) Health() (Health, error) {
	h := Health{Target: r.parity(), SharedHouses: r.SharedHouses()}
	fs := r.net.Friends()
	friends := map[string]bool{}
	for _, f := range fs {
		friends[f.PeerID] = true
	}
	var packs []catalog.PackRecord
	if err := r.cat.Packs(func(p catalog.PackRecord) error { packs = append(packs, p); return nil }); err != nil {
		return h, err
	}
	canLose, lost := check.CanLose(packs, len(friends), houseOf(fs), func(_ data.ID, _ int, holder string) bool { return friends[holder] })
	h.CanLose, h.Packs, h.LostPacks = canLose, len(packs), len(lost)
	return h, nil
}
