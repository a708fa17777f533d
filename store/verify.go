package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/plug-net/plug/p2p"
	"github.com/plug-net/plug/p2p/holdstore"
	"github.com/plug-net/plug/store/kv"
)

// VerifyOptions tune a verification.
type VerifyOptions struct {
	// ReadData downloads every shard and checks it against its ID, instead
	// of spot-checking proofs of storage.
	ReadData bool
	// Sample is how many shards per friend a spot check proves (0: 64).
	Sample int
	// Progress, if set, is told how many shards were checked.
	Progress func(done, total int)
}

// FriendCheck is what a verification found at one friend.
type FriendCheck struct {
	PeerID  string `json:"peer_id"`
	Name    string `json:"name"`
	Shards  int    `json:"shards"`  // shards it should hold
	Checked int    `json:"checked"` // shards checked
	Proved  int    `json:"proved"`
	Missing int    `json:"missing"`
	Corrupt int    `json:"corrupt"`
	Offline bool   `json:"offline"`
	Error   string `json:"error,omitempty"`
}

// VerifyReport is the result of Verify; its JSON keys are the contract of
// "plug verify --json".
type VerifyReport struct {
	OK bool `json:"ok"`
	// HeadVersion is the newest head record the friends keep; every pack
	// it names was checked too.
	HeadVersion uint64 `json:"head_version"`
	// HeadPacksUnknown counts packs named by that head record that the
	// catalog does not know (there should be none).
	HeadPacksUnknown int           `json:"head_packs_unknown,omitempty"`
	CanLose          int           `json:"can_lose"` // friends that may still go without loss
	Target           int           `json:"target"`   // m: what the plug aims for
	Packs            int           `json:"packs"`
	LostPacks        []string      `json:"lost_packs,omitempty"`
	Friends          []FriendCheck `json:"friends"`
	ReadData         bool          `json:"read_data"`
}

// shardRef is one shard of one pack, for verification and repair.
type shardRef struct {
	pack  PackRecord
	index int
}

// holderHealth is what the last verification said of a friend.
type holderHealth struct {
	Checked time.Time `json:"checked"`
	Failed  int       `json:"failed"` // shards missing or corrupt
	OK      int       `json:"ok"`
}

func healthKey(peer string) []byte { return []byte("health/" + peer) }

// Verify checks that the friends still hold the owner's data: by random
// proofs of storage (challenges chosen now, never precomputed) or, with
// ReadData, by downloading every shard. It reports per friend and overall
// how many friends can still be lost.
func (r *Repo) Verify(ctx context.Context, opt VerifyOptions) (VerifyReport, error) {
	rep := VerifyReport{Target: r.cfg.M, ReadData: opt.ReadData}
	if opt.Sample <= 0 {
		opt.Sample = 64
	}
	var packs []PackRecord
	known := map[ID]bool{}
	if err := r.cat.Packs(func(p PackRecord) error { packs = append(packs, p); known[p.ID] = true; return nil }); err != nil {
		return rep, err
	}
	// The packs of the newest head record the friends keep are checked as
	// well: a head record must never name a shard that is not stored.
	if doc, err := r.newestFriendHead(ctx); err == nil {
		rep.HeadVersion = doc.Version
		for _, p := range doc.Packs {
			if !known[p.ID] {
				rep.HeadPacksUnknown++
				known[p.ID] = true
				packs = append(packs, p)
			}
		}
	}
	rep.Packs = len(packs)
	byHolder := map[string][]shardRef{}
	for _, p := range packs {
		for i, h := range p.Holders {
			byHolder[h] = append(byHolder[h], shardRef{p, i})
		}
	}
	names := map[string]string{}
	for _, f := range r.net.Friends() {
		names[f.PeerID] = f.Name
		if _, ok := byHolder[f.PeerID]; !ok {
			byHolder[f.PeerID] = nil
		}
	}
	// bad[pack][index] marks shards found missing, corrupt or offline.
	var mu sync.Mutex
	bad := map[ID]map[int]bool{}
	mark := func(s shardRef) {
		mu.Lock()
		if bad[s.pack.ID] == nil {
			bad[s.pack.ID] = map[int]bool{}
		}
		bad[s.pack.ID][s.index] = true
		mu.Unlock()
	}
	total := 0
	plan := map[string][]shardRef{}
	for h, refs := range byHolder {
		sel := refs
		if !opt.ReadData && len(sel) > opt.Sample {
			sel = slices.Clone(refs)
			rand.Shuffle(len(sel), func(i, j int) { sel[i], sel[j] = sel[j], sel[i] })
			sel = sel[:opt.Sample]
		}
		plan[h] = sel
		total += len(sel)
	}
	var done int
	var wg sync.WaitGroup
	checks := make([]FriendCheck, 0, len(plan))
	var cmu sync.Mutex
	for h, sel := range plan {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fc := FriendCheck{PeerID: h, Name: names[h], Shards: len(byHolder[h])}
			holder := r.net.Holder(h)
			if holder == nil {
				fc.Offline, fc.Error = true, "no longer a friend"
			}
			for _, s := range sel {
				if fc.Offline {
					break
				}
				err := r.checkShard(ctx, holder, s, opt.ReadData)
				fc.Checked++
				switch {
				case err == nil:
					fc.Proved++
				case ctx.Err() != nil:
					return
				case errors.Is(err, fs.ErrNotExist):
					fc.Missing++
					mark(s)
				case errors.Is(err, errCorruptShard):
					fc.Corrupt++
					mark(s)
				default:
					fc.Offline, fc.Error = true, err.Error()
				}
				cmu.Lock()
				done++
				if opt.Progress != nil {
					opt.Progress(done, total)
				}
				cmu.Unlock()
			}
			if fc.Offline {
				for _, s := range byHolder[h] {
					mark(s)
				}
			}
			hb, _ := json.Marshal(holderHealth{Checked: time.Now().UTC(), Failed: fc.Missing + fc.Corrupt, OK: fc.Proved})
			if !fc.Offline {
				r.db.Put(kv.Local, healthKey(h), hb)
			}
			cmu.Lock()
			checks = append(checks, fc)
			cmu.Unlock()
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	slices.SortFunc(checks, func(a, b FriendCheck) int {
		if a.Name != b.Name {
			if a.Name < b.Name {
				return -1
			}
			return 1
		}
		if a.PeerID < b.PeerID {
			return -1
		}
		return 1
	})
	rep.Friends = checks
	rep.CanLose = r.cfg.M
	if len(packs) == 0 {
		rep.CanLose = len(checks) // nothing to lose
	}
	for i, p := range packs {
		avail := p.Shape.K + p.Shape.M - len(bad[p.ID])
		spare := avail - p.Shape.K
		if spare < 0 {
			rep.LostPacks = append(rep.LostPacks, p.ID.String())
		}
		if i == 0 || spare < rep.CanLose {
			rep.CanLose = spare
		}
	}
	if rep.CanLose < 0 {
		rep.CanLose = 0
	}
	rep.OK = len(rep.LostPacks) == 0 && rep.CanLose >= r.cfg.M
	r.log.Info("verification done", "read_data", opt.ReadData, "ok", rep.OK, "can_lose", rep.CanLose, "lost_packs", len(rep.LostPacks))
	return rep, nil
}

var errCorruptShard = errors.New("shard is corrupt")

// checkShard proves (or, with readData, downloads) one shard.
func (r *Repo) checkShard(ctx context.Context, h Holder, s shardRef, readData bool) error {
	id := s.pack.Shape.ShardIDs[s.index]
	size := int64(s.pack.Shape.ShardSize())
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if readData {
		b, err := h.GetShard(cctx, id)
		if err != nil {
			return err
		}
		if int64(len(b)) != size || ShardIDOf(b) != id {
			return fmt.Errorf("%w: %d bytes that do not hash to %s", errCorruptShard, len(b), id.Short())
		}
		return nil
	}
	length := uint64(min(size, 4096))
	offset := uint64(0)
	if uint64(size) > length {
		offset = rand.Uint64N(uint64(size) - length + 1)
	}
	_, err := h.Prove(cctx, id, size, offset, length)
	if err != nil && !errors.Is(err, fs.ErrNotExist) && isProofFailure(err) {
		return fmt.Errorf("%w: %v", errCorruptShard, err)
	}
	return err
}

// isProofFailure reports whether err says the holder answered, wrongly.
func isProofFailure(err error) bool {
	return errors.Is(err, holdstore.ErrBadProof) || errors.Is(err, holdstore.ErrCorrupt) || errors.Is(err, p2p.ErrShardCorrupt)
}

// newestFriendHead returns the newest valid head record among the reachable
// friends.
func (r *Repo) newestFriendHead(ctx context.Context) (HeadDoc, error) {
	var (
		mu   sync.Mutex
		best HeadDoc
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
