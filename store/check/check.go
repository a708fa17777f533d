package check

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/plug-net/plug/p2p/proof"
	"github.com/plug-net/plug/store/catalog"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/head"
	"github.com/plug-net/plug/store/seal"
	"github.com/plug-net/plug/store/target"
)

// DefaultSample is how many shards per friend a spot check proves.
const DefaultSample = 64

// Options tune a verification.
type Options struct {
	// ReadData downloads every shard and checks it against its ID, instead
	// of spot-checking proofs of storage.
	ReadData bool
	// Sample is how many shards per friend a spot check proves (0:
	// DefaultSample).
	Sample int
	// Slice, with Of > 0, also downloads in full the shards at positions
	// At, At+Of, At+2·Of … of each friend's list (sorted by pack): Of
	// rounds with At = 0 … Of-1 read every shard once.
	Slice Slice
	// Progress, if set, is told how many shards were checked.
	Progress func(done, total int)
}

// Slice is one of Of parts of every friend's shards.
type Slice struct{ At, Of int }

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

// Report is the result of Verify; its JSON keys are the contract of "plug
// verify --json".
type Report struct {
	OK bool `json:"ok"`
	// HeadVersion is the newest head record the friends keep; every pack
	// it names was checked too.
	HeadVersion uint64 `json:"head_version"`
	// HeadPacksUnknown counts packs named by that head record that the
	// catalog does not know, nor waits to release (there should be none).
	HeadPacksUnknown int           `json:"head_packs_unknown,omitempty"`
	CanLose          int           `json:"can_lose"` // friends that may still go without loss
	Target           int           `json:"target"`   // m: what the plug aims for
	Packs            int           `json:"packs"`
	LostPacks        []string      `json:"lost_packs,omitempty"`
	Friends          []FriendCheck `json:"friends"`
	ReadData         bool          `json:"read_data"`
}

// Packs lists the packs of the catalog.
type Packs interface {
	Packs(fn func(catalog.PackRecord) error) error
}

// Friends are the holders to ask.
type Friends interface {
	// Holder returns a friend by name (peer ID), or nil.
	Holder(name string) target.Holder
	Friends() []head.Friend
}

// Config is what a verification reads and asks.
type Config struct {
	Packs   Packs
	Friends Friends
	// NewestHead returns the newest head record the friends keep (its packs
	// are checked too); nil skips it.
	NewestHead func(ctx context.Context) (head.Doc, error)
	// M is the redundancy the plug aims for.
	M int
	// House maps a holder to its house (friends in one house are lost
	// together); nil: each holder is its own.
	House func(holder string) string
	// Releasing, if set, reports packs the catalog dropped whose shards
	// wait for the next head record to be released (a prune or repair cut
	// short): a head record that names them is not ahead of the catalog,
	// only not yet replaced.
	Releasing func(pack data.ID) bool
}

// ErrCorrupt is wrapped when a holder answered, wrongly: the shard it holds
// does not match its ID, or its proof does not prove it.
var ErrCorrupt = errors.New("shard is corrupt")

// shardRef is one shard of one pack.
type shardRef struct {
	pack  catalog.PackRecord
	index int
	read  bool // download in full, even in a spot check
}

// Verify checks that the friends still hold the owner's data: by random
// proofs of storage (challenges chosen now, never precomputed) or, with
// ReadData, by downloading every shard. It reports per friend and overall
// how many friends can still be lost.
func Verify(ctx context.Context, cfg Config, opt Options) (Report, error) {
	rep := Report{Target: cfg.M, ReadData: opt.ReadData}
	if opt.Sample <= 0 {
		opt.Sample = DefaultSample
	}
	packs, err := packsToCheck(ctx, cfg, &rep)
	if err != nil {
		return rep, err
	}
	byHolder, names := holdersOf(packs, cfg.Friends.Friends())
	plan, total := sample(byHolder, opt)
	bad := newBadSet()
	var (
		mu     sync.Mutex
		done   int
		checks = make([]FriendCheck, 0, len(plan))
		wg     sync.WaitGroup
	)
	for h, sel := range plan {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fc := checkFriend(ctx, cfg.Friends.Holder(h), h, names[h], len(byHolder[h]), sel, opt.ReadData, bad, func() {
				mu.Lock()
				done++
				if opt.Progress != nil {
					opt.Progress(done, total)
				}
				mu.Unlock()
			})
			if fc.Offline {
				for _, s := range byHolder[h] {
					bad.mark(s.pack.ID, s.index)
				}
			}
			mu.Lock()
			checks = append(checks, fc)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	slices.SortFunc(checks, func(a, b FriendCheck) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.PeerID, b.PeerID))
	})
	rep.Friends = checks
	canLose, lost := CanLose(packs, len(checks), cfg.House, func(p data.ID, i int, _ string) bool { return !bad.has(p, i) })
	rep.CanLose = canLose
	for _, p := range lost {
		rep.LostPacks = append(rep.LostPacks, p.String())
	}
	rep.OK = len(rep.LostPacks) == 0 && rep.CanLose >= cfg.M
	return rep, nil
}

// packsToCheck returns the catalog's packs and those of the newest head
// record the friends keep: a head record must never name a shard that is
// not stored.
func packsToCheck(ctx context.Context, cfg Config, rep *Report) ([]catalog.PackRecord, error) {
	var packs []catalog.PackRecord
	known := map[data.ID]bool{}
	if err := cfg.Packs.Packs(func(p catalog.PackRecord) error { packs = append(packs, p); known[p.ID] = true; return nil }); err != nil {
		return nil, err
	}
	if cfg.NewestHead != nil {
		if doc, err := cfg.NewestHead(ctx); err == nil {
			rep.HeadVersion = doc.Version
			for _, p := range doc.Packs {
				if !known[p.ID] {
					if cfg.Releasing == nil || !cfg.Releasing(p.ID) {
						rep.HeadPacksUnknown++
					}
					known[p.ID] = true
					packs = append(packs, p)
				}
			}
		}
	}
	rep.Packs = len(packs)
	return packs, nil
}

// holdersOf groups the shards of packs by holder; every friend has an
// entry, if empty, and a name.
func holdersOf(packs []catalog.PackRecord, friends []head.Friend) (map[string][]shardRef, map[string]string) {
	byHolder := map[string][]shardRef{}
	for _, p := range packs {
		for i, h := range p.Holders {
			byHolder[h] = append(byHolder[h], shardRef{pack: p, index: i})
		}
	}
	names := map[string]string{}
	for _, f := range friends {
		names[f.PeerID] = f.Name
		if _, ok := byHolder[f.PeerID]; !ok {
			byHolder[f.PeerID] = nil
		}
	}
	return byHolder, names
}

// sample picks the shards to check at each holder: all with ReadData, else
// opt.Sample at random.
func sample(byHolder map[string][]shardRef, opt Options) (map[string][]shardRef, int) {
	plan := map[string][]shardRef{}
	total := 0
	for h, refs := range byHolder {
		sel := refs
		if !opt.ReadData && len(sel) > opt.Sample {
			sel = slices.Clone(refs)
			rand.Shuffle(len(sel), func(i, j int) { sel[i], sel[j] = sel[j], sel[i] })
			sel = sel[:opt.Sample]
		}
		if !opt.ReadData && opt.Slice.Of > 0 {
			sorted := slices.Clone(refs)
			slices.SortFunc(sorted, func(a, b shardRef) int {
				return cmp.Or(bytes.Compare(a.pack.ID[:], b.pack.ID[:]), cmp.Compare(a.index, b.index))
			})
			for i := opt.Slice.At % opt.Slice.Of; i < len(sorted); i += opt.Slice.Of {
				r := sorted[i]
				r.read = true
				sel = append(sel[:len(sel):len(sel)], r)
			}
		}
		plan[h] = sel
		total += len(sel)
	}
	return plan, total
}

// checkFriend checks the selected shards at one holder (nil: no longer a
// friend), marking the bad ones.
func checkFriend(ctx context.Context, holder target.Holder, h, name string, shards int, sel []shardRef, readData bool, bad *badSet, tick func()) FriendCheck {
	fc := FriendCheck{PeerID: h, Name: name, Shards: shards}
	if holder == nil {
		fc.Offline, fc.Error = true, "no longer a friend"
	}
	for _, s := range sel {
		if fc.Offline || ctx.Err() != nil {
			break
		}
		err := checkShard(ctx, holder, s, readData || s.read)
		fc.Checked++
		switch {
		case err == nil:
			fc.Proved++
		case ctx.Err() != nil:
			return fc
		case errors.Is(err, fs.ErrNotExist):
			fc.Missing++
			bad.mark(s.pack.ID, s.index)
		case errors.Is(err, ErrCorrupt):
			fc.Corrupt++
			bad.mark(s.pack.ID, s.index)
		default:
			fc.Offline, fc.Error = true, err.Error()
		}
		tick()
	}
	return fc
}

// checkShard proves (or, with readData, downloads) one shard.
func checkShard(ctx context.Context, h target.Holder, s shardRef, readData bool) error {
	id := s.pack.Shape.ShardIDs[s.index]
	size := int64(s.pack.Shape.ShardSize())
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if readData {
		b, err := h.GetShard(cctx, id)
		if err != nil && isProofFailure(err) {
			// The holder knows its copy is damaged (a truncated file):
			// corrupt, not a friend away.
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if err != nil {
			return err
		}
		if int64(len(b)) != size || seal.ShardID(b) != id {
			return fmt.Errorf("%w: %d bytes that do not hash to %s", ErrCorrupt, len(b), id.Short())
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
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return err
}

// isProofFailure reports whether err says the holder answered, wrongly.
func isProofFailure(err error) bool {
	return errors.Is(err, proof.ErrBad) || errors.Is(err, proof.ErrCorrupt)
}

// badSet marks shards found missing, corrupt or offline; safe for
// concurrent use.
type badSet struct {
	mu sync.Mutex
	m  map[data.ID]map[int]bool
}

func newBadSet() *badSet { return &badSet{m: map[data.ID]map[int]bool{}} }

func (b *badSet) mark(p data.ID, i int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m[p] == nil {
		b.m[p] = map[int]bool{}
	}
	b.m[p][i] = true
}

func (b *badSet) has(p data.ID, i int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[p][i]
}

// CanLose is the one redundancy count of the plug (verify, the overview and
// plug status all use it): how many friends may still vanish at once with
// every pack still rebuildable, in the worst case (the friends that hold
// the most shards go first). usable says whether shard i of pack p at
// holder is there. With no pack nothing can be lost: it returns friends.
// It also returns the packs already beyond repair. Friends in one house
// (house, nil for none) are lost together: they count as one, and their
// shards together.
func CanLose(packs []catalog.PackRecord, friends int, house func(holder string) string, usable func(p data.ID, i int, holder string) bool) (int, []data.ID) {
	if house == nil {
		house = func(h string) string { return h }
	}
	if len(packs) == 0 {
		return friends, nil
	}
	canLose := -1
	var lost []data.ID
	for _, p := range packs {
		perHolder := map[string]int{}
		good := 0
		for i, h := range p.Holders {
			if usable(p.ID, i, h) {
				perHolder[house(h)]++
				good++
			}
		}
		spare := good - p.Shape.K // shards the pack may still lose
		if spare < 0 {
			lost = append(lost, p.ID)
		}
		per := make([]int, 0, len(perHolder))
		for _, n := range perHolder {
			per = append(per, n)
		}
		slices.SortFunc(per, func(a, b int) int { return cmp.Compare(b, a) })
		n := 0
		for _, c := range per {
			if spare < c {
				break
			}
			spare -= c
			n++
		}
		if canLose < 0 || n < canLose {
			canLose = n
		}
	}
	return canLose, lost
}
