package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/plug-net/plug/store/catalog"
	"github.com/plug-net/plug/store/head"
	"github.com/plug-net/plug/store/repair"

	"github.com/plug-net/plug/store/check"
	"github.com/plug-net/plug/store/kv"
)

// Defaults of the checks the plug makes by itself.
const (
	// DefaultCheckEvery is how often the friends are checked.
	DefaultCheckEvery = time.Hour
	// DefaultReadPeriod is how long it takes to read every shard once in
	// full, a slice each round.
	DefaultReadPeriod = 30 * 24 * time.Hour
	// checkSample is how many proofs of storage a round asks of each
	// friend: at most 64 KiB each, so a round costs little bandwidth.
	checkSample = 8
)

var (
	keyLastCheck  = []byte("backup/last-check")  // when the last round ended
	keyCheckRound = []byte("backup/check-round") // rounds so far: the slice to read next
)

// HealConfig tunes the checks and repairs the plug makes by itself.
type HealConfig struct {
	Every      time.Duration // between rounds (0: DefaultCheckEvery)
	ReadPeriod time.Duration // to read every shard once (0: DefaultReadPeriod)
	Grace      time.Duration // a friend gone longer loses its role (0: repair.DefaultGrace)
}

// FriendHealth is what the last check found at one friend.
type FriendHealth struct {
	Checked time.Time `json:"checked"`
	Proved  int       `json:"proved"` // shards proved or read intact
	Failed  int       `json:"failed"` // shards missing or corrupt
}

// RunChecks checks the friends every cfg.Every until ctx ends, and
// repairs by itself (CheckRound).
func (r *Repo) RunChecks(ctx context.Context, cfg HealConfig) {
	if cfg.Every <= 0 {
		cfg.Every = DefaultCheckEvery
	}
	t := time.NewTimer(cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := r.CheckRound(ctx, cfg); err != nil && ctx.Err() == nil {
			r.log.Warn("the scheduled check did not finish; it runs again later", "err", err)
		}
		t.Reset(cfg.Every)
	}
}

// CheckRound is one round of the checks the plug makes by itself: a few
// random proofs of storage at every friend, and one slice of each friend's
// shards read in full, so that every shard is read once per ReadPeriod.
// What fails is logged. Then the friends that failed, or have been gone
// longer than the grace, lose their role by the same code as plug repair
// (under the job lock), and shards of replaced packs still waiting are
// released from friends that came back.
func (r *Repo) CheckRound(ctx context.Context, cfg HealConfig) (check.Report, error) {
	if cfg.Every <= 0 {
		cfg.Every = DefaultCheckEvery
	}
	if cfg.ReadPeriod <= 0 {
		cfg.ReadPeriod = DefaultReadPeriod
	}
	round := r.counter(keyCheckRound)
	of := max(1, int(cfg.ReadPeriod/cfg.Every))
	rep, err := r.Verify(ctx, check.Options{Sample: checkSample, Slice: check.Slice{At: int(round % uint64(of)), Of: of}})
	if err != nil {
		return rep, err
	}
	if err := r.putCounter(keyCheckRound, round+1); err != nil {
		return rep, err
	}
	if err := r.putTime(keyLastCheck, time.Now()); err != nil {
		return rep, err
	}
	for _, fc := range rep.Friends {
		if fc.Missing+fc.Corrupt > 0 {
			r.log.Warn("a friend failed the check of the shards it holds for you", "friend", fc.Name, "missing", fc.Missing, "corrupt", fc.Corrupt, "proved", fc.Proved)
		}
	}
	rr, err := r.Repair(ctx, cfg.Grace)
	switch {
	case errors.Is(err, ErrBusy):
		r.log.Info("the repair waits for the job that runs", "err", err)
	case err != nil:
		r.log.Error("the repair made by itself failed; it tries again at the next check", "err", err)
	case len(rr.Replaced) > 0:
		r.log.Info("repaired by itself", "replaced", strings.Join(rr.Replaced, " "), "moved", rr.Moved, "repacked", rr.Repacked)
	}
	if n, err := r.moveExcess(ctx); err != nil && !errors.Is(err, ErrBusy) {
		r.log.Warn("could not move data off a friend that gives less room now; it tries again at the next check", "err", err)
	} else if n > 0 {
		r.log.Info("moved data off friends that give less room now", "shards", n)
	}
	if _, err := r.releasePending(ctx); err != nil && !errors.Is(err, ErrBusy) {
		r.log.Debug("replaced shards wait", "err", err)
	}
	return rep, nil
}

// LastCheck returns when the last scheduled check ended (zero: never).
func (r *Repo) LastCheck() time.Time { return r.getTime(keyLastCheck) }

// FriendHealth returns what the last check found at each friend (by peer
// ID).
func (r *Repo) FriendHealth() (map[string]FriendHealth, error) {
	out := map[string]FriendHealth{}
	for _, f := range r.net.Friends() {
		b, err := r.db.Get(kv.Local, healthKey(f.PeerID))
		if errors.Is(err, kv.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var h holderHealth
		if err := json.Unmarshal(b, &h); err != nil {
			return nil, fmt.Errorf("what the last check found at %s is damaged: %w", f.Name, err)
		}
		out[f.PeerID] = FriendHealth{Checked: h.Checked, Proved: h.OK, Failed: h.Failed}
	}
	return out, nil
}

func (r *Repo) counter(key []byte) uint64 {
	b, err := r.db.Get(kv.Local, key)
	if err != nil || len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func (r *Repo) putCounter(key []byte, n uint64) error {
	return r.db.Put(kv.Local, key, binary.BigEndian.AppendUint64(nil, n))
}

func (r *Repo) getTime(key []byte) time.Time {
	n := r.counter(key)
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(n))
}

func (r *Repo) putTime(key []byte, t time.Time) error { return r.putCounter(key, uint64(t.UnixNano())) }

// Friends returns the friends as the head record lists them.
func (r *Repo) Friends() []head.Friend { return r.net.Friends() }

// excessWait is how long a friend whose excess was moved is left alone:
// its use shrinks only once the head record is out and it dropped the
// shards.
const excessWait = time.Hour

// moveExcess moves shards off the friends that hold more of the owner's
// data than they give now (they shrank their quota): pack by pack, by
// repair's code, until the excess is covered. It returns the shards moved.
func (r *Repo) moveExcess(ctx context.Context) (int, error) {
	reach := r.net.Reachable(ctx)
	type over struct {
		name   string
		excess int64
	}
	var overs []over
	for _, h := range reach {
		if t, ok := r.excessMoved.Load(h.Name()); ok && time.Since(t.(time.Time)) < excessWait {
			continue
		}
		quota, used, _, err := h.Usage(ctx)
		if err != nil || used <= quota {
			continue
		}
		overs = append(overs, over{h.Name(), used - quota})
	}
	if len(overs) == 0 {
		return 0, nil
	}
	unlock, err := r.lock(ctx, "moving data off a friend that gives less room")
	if err != nil {
		return 0, err
	}
	defer unlock()
	var packs []catalog.PackRecord
	if err := r.cat.Packs(func(p catalog.PackRecord) error { packs = append(packs, p); return nil }); err != nil {
		return 0, err
	}
	cfg := repair.Config{
		Catalog: r.cat, Shards: r.fetcher, Identity: r.keys.AgeIdentity(), M: r.parity(),
		Holder: r.net.Holder, Repacked: r.relinkRefs, Logger: r.log, Release: r.releaseShards,
	}
	var rep repair.Report
	for _, o := range overs {
		r.log.Warn("a friend gives less room than your data there takes: moving the excess to others", "friend", o.name, "excess", humanize.IBytes(uint64(o.excess)))
		replace := map[string]string{o.name: "gives less room"}
		for _, p := range packs {
			i := slices.Index(p.Holders, o.name)
			if i < 0 || o.excess <= 0 {
				continue
			}
			if err := repair.Pack(ctx, cfg, p, []int{i}, replace, reach, &rep); err != nil {
				return rep.Moved, fmt.Errorf("move pack %s off %s: %w", p.ID.Short(), o.name, err)
			}
			o.excess -= int64(p.Shape.ShardSize())
		}
		r.excessMoved.Store(o.name, time.Now())
	}
	if err := r.markDirty(); err != nil {
		return rep.Moved, err
	}
	if err := r.publish(ctx); err != nil {
		return rep.Moved, err
	}
	_, err = r.releaseAfterPublish(ctx)
	return rep.Moved + rep.Repacked, err
}
