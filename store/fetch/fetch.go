package fetch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"time"

	"filippo.io/age"

	"github.com/plug-net/plug/p2p/proof"
	"github.com/plug-net/plug/store/catalog"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/pack"
	"github.com/plug-net/plug/store/seal"
	"github.com/plug-net/plug/store/target"
)

// BadShard reports a shard that could not be used.
type BadShard struct {
	Pack    data.ID `json:"pack"`
	Index   int     `json:"index"`
	Shard   data.ID `json:"shard"`
	Holder  string  `json:"holder"`
	Problem string  `json:"problem"` // "missing", "corrupt" or "unreachable"
	Err     string  `json:"error,omitempty"`
}

// Fetcher downloads packs from their holders: the k holders expected to
// deliver soonest first (data shards before parity, which saves decoding),
// asking another holder when one is missing, wrong or slow to fail. The
// pack's authenticated encryption checks the shards used; only when it
// fails are they checked one by one against their IDs, to find and report
// the bad ones. Safe for concurrent use: the fetches of concurrent calls
// share what is learnt of each holder.
type Fetcher struct {
	target   func(holder string) target.ShardTarget
	identity age.Identity
	now      func() time.Time // time.Now; tests set a clock of their own

	mu      sync.Mutex
	holders map[string]*holderStats
}

// holderStats is what a Fetcher has learnt of one holder: how fast it
// delivers, how many fetches it has in flight, and when it last failed.
//
// A holder's uplink is shared by the fetches in flight to it: while n are,
// each has 1/n of it. share sums, over time, each fetch's part of the link
// (it grows by dt/n), so the part one fetch had is share at its end less
// share at its start, and bytes over those link seconds is the holder's
// speed, whatever the shard sizes and however many workers ask at once.
// The sums of bytes and link seconds decay by a quarter per fetch, so the
// speed follows a link that changes.
type holderStats struct {
	bytes    float64 // decayed sum of bytes delivered
	busy     float64 // decayed sum of the link seconds they took
	inFlight int
	share    float64   // link seconds each fetch in flight has had, summed since the first fetch
	at       time.Time // when share was last brought up to date
	failed   time.Time // the last failure
}

// advance brings share up to now.
func (st *holderStats) advance(now time.Time) {
	if st.inFlight > 0 {
		st.share += now.Sub(st.at).Seconds() / float64(st.inFlight)
	}
	st.at = now
}

// perByte returns the link seconds per byte st's holder has taken, or
// false if it has delivered nothing yet.
func (st *holderStats) perByte() (float64, bool) {
	if st == nil || st.busy <= 0 || st.bytes <= 0 {
		return 0, false
	}
	return st.busy / st.bytes, true
}

// nominalPerByte stands for a holder's speed (100 MB/s) when no holder has
// delivered anything yet: it only has to rank holders by their fetches in
// flight.
const nominalPerByte = 1e-8

// failPenalty ranks a holder that failed within failMemory after those that
// did not: it is asked again only when the others cannot serve, until the
// failure is that old.
const (
	failPenalty = 10 * time.Second
	failMemory  = time.Minute
)

type badKey struct{}

// WithBadShards returns a context under which Fetch tells report of each
// bad shard it meets (missing, corrupt, or its holder unreachable): an
// operation learns of its own, and only of its own.
func WithBadShards(ctx context.Context, report func(BadShard)) context.Context {
	return context.WithValue(ctx, badKey{}, report)
}

// New returns a Fetcher that reaches holders through target and
// decrypts with identity.
func New(target func(holder string) target.ShardTarget, identity age.Identity) *Fetcher {
	return &Fetcher{target: target, identity: identity, now: time.Now, holders: make(map[string]*holderStats)}
}

func report(ctx context.Context, b BadShard) {
	if r, ok := ctx.Value(badKey{}).(func(BadShard)); ok {
		r(b)
	}
}

// stats returns holder's entry; f.mu is held.
func (f *Fetcher) stats(holder string) *holderStats {
	st := f.holders[holder]
	if st == nil {
		st = &holderStats{}
		f.holders[holder] = st
	}
	return st
}

// begin counts a fetch from holder in flight and returns the holder's
// share at its start, for done.
func (f *Fetcher) begin(holder string) float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.stats(holder)
	st.advance(f.now())
	st.inFlight++
	return st.share
}

// done ends a fetch of size bytes from holder, begun at share start, and
// learns from it: its speed, or that it failed. A fetch that failed because
// ctx ended (cancelled by the caller, or not needed any more) teaches
// nothing.
func (f *Fetcher) done(ctx context.Context, holder string, size int, start float64, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.stats(holder)
	now := f.now()
	st.advance(now)
	st.inFlight--
	switch {
	case !ok && ctx.Err() != nil:
	case !ok:
		st.failed = now
	default:
		st.bytes = 0.75*st.bytes + float64(size)
		st.busy = 0.75*st.busy + (st.share - start)
	}
}

// expect returns how long a new fetch of size bytes from st's holder should
// take, at perByte link seconds a byte: one shard's time for each fetch in
// flight to the holder and this one, and failPenalty more if the holder
// failed lately.
func (st *holderStats) expect(size int, perByte float64, now time.Time) time.Duration {
	d := time.Duration(perByte * float64(size) * float64(st.inFlight+1) * float64(time.Second))
	if !st.failed.IsZero() && now.Sub(st.failed) < failMemory {
		d += failPenalty
	}
	return d
}

// order returns the shard indexes of rec to try, best first.
func (f *Fetcher) order(rec catalog.PackRecord) []int {
	idx := make([]int, len(rec.Holders))
	for i := range idx {
		idx[i] = i
	}
	size := rec.Shape.ShardSize()
	exp := make([]time.Duration, len(idx))
	f.mu.Lock()
	now := f.now()
	// A holder not heard from yet is taken to be as fast as the others on
	// average: it is tried, but not piled onto while its first fetches run.
	known, sum := 0, 0.0
	for _, st := range f.holders {
		if pb, ok := st.perByte(); ok {
			known++
			sum += pb
		}
	}
	prior := nominalPerByte
	if known > 0 {
		prior = sum / float64(known)
	}
	for i, h := range rec.Holders {
		st := f.holders[h]
		if st == nil {
			st = &holderStats{}
		}
		pb, ok := st.perByte()
		if !ok {
			pb = prior
		}
		exp[i] = st.expect(size, pb, now)
	}
	f.mu.Unlock()
	// A parity shard costs a Reed-Solomon rebuild: its holder is asked
	// before a data shard's only when it should deliver clearly sooner (by
	// half as much again and 20 ms): its link is faster or less busy, or
	// the data shard's holder failed lately.
	k := rec.Shape.K
	for i := k; i < len(exp); i++ {
		exp[i] += exp[i]/2 + 20*time.Millisecond
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(exp[a], exp[b]) })
	return idx
}

// Fetch returns the plaintext of a pack (the caller owns it) and the entries
// of its trailer. An error wraps seal.ErrNotEnoughShards when fewer than k intact
// shards could be had.
func (f *Fetcher) Fetch(ctx context.Context, rec catalog.PackRecord) ([]byte, []pack.Entry, error) {
	if err := rec.Shape.Validate(); err != nil {
		return nil, nil, fmt.Errorf("fetch pack %s: %w", rec.ID.Short(), err)
	}
	return f.FetchInto(ctx, rec, make([]byte, 0, rec.Shape.JoinedSize()))
}

// FetchInto is Fetch with the pack's memory taken from buf when it is large
// enough (else a new buffer): the data shards are read into it back to back
// and the pack is decrypted where they lie, so the plaintext is buf's
// memory and a caller fetching pack after pack needs one buffer, whatever
// the collector does. No goroutine of the fetch touches buf once it returns.
func (f *Fetcher) FetchInto(ctx context.Context, rec catalog.PackRecord, buf []byte) ([]byte, []pack.Entry, error) {
	sh := rec.Shape
	if err := sh.Validate(); err != nil {
		return nil, nil, fmt.Errorf("fetch pack %s: %w", rec.ID.Short(), err)
	}
	if len(rec.Holders) != sh.K+sh.M {
		return nil, nil, fmt.Errorf("fetch pack %s: %d holders for %d shards", rec.ID.Short(), len(rec.Holders), sh.K+sh.M)
	}
	if need := sh.JoinedSize(); cap(buf) < need {
		// Room for a pack closed at its target size, so that the next one
		// (a little larger, perhaps) fits too.
		buf = make([]byte, max(need, JoinedBufferSize))
	}
	buf = buf[:sh.JoinedSize()]
	// The pack's authenticated encryption checks every byte of the k
	// shards used, so they are not hashed as they arrive. When it fails,
	// the shards are fetched again, each checked against its ID, the bad
	// ones reported and replaced from other holders.
	failed := make([]bool, len(rec.Holders))
	plain, err := f.fetchOpen(ctx, rec, buf, failed, false)
	if errors.Is(err, errNotOpened) {
		plain, err = f.fetchOpen(ctx, rec, buf, failed, true)
	}
	if err != nil {
		return nil, nil, err
	}
	entries, err := pack.Parse(plain)
	if err != nil {
		return nil, nil, fmt.Errorf("pack %s: %w", rec.ID.Short(), err)
	}
	return plain, entries, nil
}

// JoinedBufferSize is the buffer FetchInto makes when it is given none
// large enough: the data shards of a pack closed at its target size.
const JoinedBufferSize = pack.MaxPlainSize + 64<<10

// errNotOpened says the shards fetched unchecked did not open the pack.
var errNotOpened = errors.New("the pack's shards do not open it")

// fetchOpen fetches k shards of rec, the data shards into their places in
// buf (len(buf) is the pack's JoinedSize), and opens the pack there. It
// asks no holder that failed before (failed, which it updates). checked
// hashes each shard as it arrives; unchecked, a pack that does not open is
// errNotOpened.
func (f *Fetcher) fetchOpen(ctx context.Context, rec catalog.PackRecord, buf []byte, failed []bool, checked bool) ([]byte, error) {
	sh := rec.Shape
	size := sh.ShardSize()
	ctx, cancel := context.WithCancel(ctx)
	type result struct {
		i     int
		b     []byte
		err   error
		began float64 // the holder's share when it began
	}
	results := make(chan result, len(rec.Holders))
	var order []int
	for _, i := range f.order(rec) {
		if !failed[i] {
			order = append(order, i)
		}
	}
	next, running := 0, 0
	start := func() {
		i := order[next]
		next++
		running++
		began := f.begin(rec.Holders[i])
		go func() {
			tg := f.target(rec.Holders[i])
			var b []byte
			var err error
			switch {
			case tg == nil:
				err = fmt.Errorf("holder %s is not a friend any more", rec.Holders[i])
			case i < sh.K:
				// A data shard goes to its place (capacity: its size).
				b, err = getShardInto(ctx, tg, sh.ShardIDs[i], buf[i*size:i*size:(i+1)*size])
			default:
				b, err = getShard(ctx, tg, sh.ShardIDs[i])
			}
			results <- result{i, b, err, began}
		}()
	}
	shards := make([][]byte, len(rec.Holders))
	// Every fetch still running writes into buf or a pooled buffer: it is
	// stopped and waited for before buf goes back to the caller.
	defer func() {
		cancel()
		for ; running > 0; running-- {
			r := <-results
			f.done(ctx, rec.Holders[r.i], size, r.began, r.err == nil)
			if r.i >= sh.K {
				putShardBuf(r.b)
			}
		}
		for _, b := range shards[sh.K:] {
			putShardBuf(b)
		}
	}()
	for next < len(order) && next < sh.K {
		start()
	}
	good := 0
	var problems []error
	for good < sh.K && running > 0 {
		r := <-results
		running--
		if r.err != nil && ctx.Err() != nil {
			f.done(ctx, rec.Holders[r.i], size, r.began, false)
			return nil, ctx.Err()
		}
		bad := BadShard{Pack: rec.ID, Index: r.i, Shard: sh.ShardIDs[r.i], Holder: rec.Holders[r.i]}
		switch {
		case r.err != nil:
			bad.Problem = "unreachable"
			switch {
			case errors.Is(r.err, fs.ErrNotExist):
				bad.Problem = "missing"
			case errors.Is(r.err, proof.ErrCorrupt):
				bad.Problem = "corrupt"
			}
			bad.Err = r.err.Error()
		case len(r.b) != size || (checked && seal.ShardID(r.b) != sh.ShardIDs[r.i]):
			bad.Problem = "corrupt"
			bad.Err = fmt.Sprintf("%d bytes that do not hash to the shard ID", len(r.b))
		}
		f.done(ctx, rec.Holders[r.i], size, r.began, bad.Problem == "")
		if bad.Problem != "" {
			if r.i >= sh.K {
				putShardBuf(r.b)
			}
			failed[r.i] = true
			report(ctx, bad)
			problems = append(problems, fmt.Errorf("shard %d on %s: %s", r.i, shortName(bad.Holder), bad.Problem))
			if next < len(order) {
				start()
			}
			continue
		}
		if r.i < sh.K && &r.b[0] != &buf[r.i*size] {
			copy(buf[r.i*size:], r.b) // a target that reads into its own memory
			r.b = buf[r.i*size : (r.i+1)*size]
		}
		shards[r.i] = r.b
		good++
	}
	if good < sh.K {
		// Every holder not failed before was asked: good is all there is.
		return nil, fmt.Errorf("pack %s: %w: %d of %d shards intact, need %d (%w)", rec.ID.Short(), seal.ErrNotEnoughShards, good, sh.K+sh.M, sh.K, errors.Join(problems...))
	}
	plain, err := seal.OpenJoined(sh, shards, buf, f.identity)
	switch {
	case err == nil:
		return plain, nil
	case checked:
		return nil, err // every shard is what it should be: the pack itself does not open
	default:
		return nil, fmt.Errorf("%w: %w", errNotOpened, err)
	}
}

// shardInto is a target that can read a shard into a caller's memory
// (p2p.FriendTarget, target.MemTarget).
type shardInto interface {
	GetShardInto(ctx context.Context, id [32]byte, buf []byte) ([]byte, error)
}

// shardBufs keeps shard buffers between packs: a restore of 1 GiB otherwise
// allocates, zeroes and collects 1.3 GB of them.
var shardBufs sync.Pool // of *[]byte

// getShardInto reads a shard into slot's capacity when the target can
// (else into the target's own memory).
func getShardInto(ctx context.Context, tg target.ShardTarget, id [32]byte, slot []byte) ([]byte, error) {
	if into, ok := tg.(shardInto); ok {
		return into.GetShardInto(ctx, id, slot)
	}
	return tg.GetShard(ctx, id)
}

func getShard(ctx context.Context, tg target.ShardTarget, id [32]byte) ([]byte, error) {
	into, ok := tg.(shardInto)
	if !ok {
		return tg.GetShard(ctx, id)
	}
	var buf []byte
	if p, ok := shardBufs.Get().(*[]byte); ok {
		buf = *p
	}
	b, err := into.GetShardInto(ctx, id, buf)
	if err != nil {
		putShardBuf(buf)
		return nil, err
	}
	return b, nil
}

func putShardBuf(b []byte) {
	if cap(b) > 0 {
		b = b[:0]
		shardBufs.Put(&b)
	}
}

func shortName(s string) string {
	if len(s) > 12 {
		return "…" + s[len(s)-8:]
	}
	return s
}

// FetchShards returns every shard of a pack: the intact ones fetched, the
// others rebuilt with Reed-Solomon from any k intact ones and checked
// against their IDs.
func (f *Fetcher) FetchShards(ctx context.Context, rec catalog.PackRecord, skip map[int]bool) ([][]byte, error) {
	sh := rec.Shape
	if err := sh.Validate(); err != nil {
		return nil, err
	}
	shards := make([][]byte, sh.K+sh.M)
	good := 0
	for _, i := range f.order(rec) {
		if good == sh.K {
			break
		}
		if skip[i] {
			continue
		}
		tg := f.target(rec.Holders[i])
		if tg == nil {
			continue
		}
		began := f.begin(rec.Holders[i])
		b, err := tg.GetShard(ctx, sh.ShardIDs[i])
		f.done(ctx, rec.Holders[i], sh.ShardSize(), began, err == nil)
		if err != nil || len(b) != sh.ShardSize() || seal.ShardID(b) != sh.ShardIDs[i] {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		shards[i] = b
		good++
	}
	if good < sh.K {
		return nil, fmt.Errorf("pack %s: %w: %d intact shards found, need %d", rec.ID.Short(), seal.ErrNotEnoughShards, good, sh.K)
	}
	if err := seal.Rebuild(sh, shards); err != nil {
		return nil, err
	}
	for i, b := range shards {
		if seal.ShardID(b) != sh.ShardIDs[i] {
			return nil, fmt.Errorf("pack %s: rebuilt shard %d does not match its ID", rec.ID.Short(), i)
		}
	}
	return shards, nil
}
