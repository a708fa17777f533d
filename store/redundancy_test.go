package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/plug-net/plug/crypto/cryptotest"
	"github.com/plug-net/plug/store/catalog"
	"github.com/plug-net/plug/store/check"
	"github.com/plug-net/plug/store/kv"
	"github.com/plug-net/plug/store/pack"
	"github.com/plug-net/plug/store/restorer"
)

func TestDefaultTarget(t *testing.T) {
	for friends, want := range map[int]int{1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 2, 7: 2, 8: 2, 9: 3, 12: 4} {
		if got := DefaultTarget(friends); got != want {
			t.Errorf("DefaultTarget(%d) = %d, want %d", friends, got, want)
		}
		if m := DefaultTarget(friends); friends > m && float64(friends)/float64(friends-m) > MaxOverhead && m > 1 {
			t.Errorf("DefaultTarget(%d) = %d: overhead above %.1f", friends, m, MaxOverhead)
		}
	}
}

func TestRedundancyTarget(t *testing.T) {
	r := newTestRepo(t, cryptotest.FixedKeys(t), newMemNet(3))
	red, err := r.Redundancy()
	if err != nil || red != (Redundancy{Target: 1, Auto: true, K: 2, M: 1, Friends: 3, Overhead: 1.5}) {
		t.Fatalf("default with 3 friends: %+v %v", red, err)
	}
	_, err = r.SetRedundancy(3)
	if !errors.Is(err, ErrTargetTooHigh) || !strings.Contains(err.Error(), "pair with 1 more friend ") {
		t.Fatalf("target 3 with 3 friends: %v, want refused with pair with 1 more friend", err)
	}
	if red, err = r.SetRedundancy(2); err != nil || red.Target != 2 || red.Auto || red.K != 1 || red.M != 2 || red.Overhead != 3 {
		t.Fatalf("target 2: %+v %v", red, err)
	}
	if r.parity() != 2 {
		t.Fatalf("new packs get m=%d, want 2", r.parity())
	}
	if red, err = r.SetRedundancy(0); err != nil || !red.Auto || red.Target != 1 {
		t.Fatalf("back to auto: %+v %v", red, err)
	}
}

// Friends seen in one house hold at most target shards of a pack, and
// count as one.
func TestHousesInPlacement(t *testing.T) {
	net := newMemNet(4)
	net.friends[1].House, net.friends[2].House = "ip:198.18.0.7", "ip:198.18.0.7"
	r := newTestRepo(t, cryptotest.FixedKeys(t), net)
	red, err := r.Redundancy()
	if err != nil || red.Friends != 3 || red.K != 2 || red.M != 1 {
		t.Fatalf("4 friends, two in one house: %+v %v; want 3 placeable, k=2 m=1", red, err)
	}
	src := t.TempDir()
	makeTree(t, src)
	if _, err := r.Backup(t.Context(), []string{src}, BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	err = r.cat.Packs(func(p catalog.PackRecord) error {
		in := 0
		for _, h := range p.Holders {
			if h == net.friends[1].PeerID || h == net.friends[2].PeerID {
				in++
			}
		}
		if in > 1 {
			t.Errorf("pack %s has %d shards in the shared house", p.ID.Short(), in)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := r.Health()
	if err != nil || h.CanLose != 1 || len(h.SharedHouses) != 1 || h.SharedHouses[0] != "friend-1 and friend-2" {
		t.Fatalf("health %+v %v", h, err)
	}
}

// Changing the target re-codes the stored packs; the old shards go only
// after the new ones are in place, and losing as many friends as the new
// target restores byte-identical.
func TestRecode(t *testing.T) {
	net := newMemNet(6)
	r := newTestRepo(t, cryptotest.FixedKeys(t), net)
	ctx := t.Context()
	if _, err := r.SetRedundancy(1); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	makeTree(t, src)
	snap, err := r.Backup(ctx, []string{src}, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.NeedsRecode() {
		t.Fatal("a fresh backup needs re-coding")
	}
	if _, err := r.SetRedundancy(2); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.RecodeWanted():
	default:
		t.Fatal("setting the target did not ask for a re-coding")
	}
	if !r.NeedsRecode() {
		t.Fatal("after the target changed nothing needs re-coding")
	}
	rep, err := r.Recode(ctx)
	if err != nil || rep.Packs == 0 || rep.Left != 0 {
		t.Fatalf("recode: %+v %v", rep, err)
	}
	shards := 0
	err = r.cat.Packs(func(p catalog.PackRecord) error {
		if p.Shape.K != 4 || p.Shape.M != 2 {
			t.Errorf("pack %s is %d+%d after re-coding, want 4+2", p.ID.Short(), p.Shape.K, p.Shape.M)
		}
		shards += len(p.Holders)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, h := range net.holders {
		n, _ := h.Len()
		held += n
	}
	if held != shards {
		t.Fatalf("friends hold %d shards, the catalog %d: the old shards were not all released", held, shards)
	}
	v, err := r.Verify(ctx, check.Options{ReadData: true})
	if err != nil || !v.OK || v.CanLose != 2 {
		t.Fatalf("verify after re-coding: %+v %v", v, err)
	}
	// A plug recovered now finds, from the friends' head record, packs
	// that are all still there.
	r2 := newTestRepo(t, cryptotest.FixedKeys(t), net)
	if _, err := r2.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	net.holders[0].SetDown(true)
	net.holders[3].SetDown(true)
	for _, rr := range []*Repo{r, r2} {
		o := t.TempDir()
		if _, err := rr.Restore(ctx, snap, o, restorer.Options{}); err != nil {
			t.Fatal(err)
		}
		sameTree(t, src, filepath.Join(o, src))
	}
}

// A re-coding cut short by a crash leaves a record; the next one releases
// the shards it put.
func TestRecodeReleasesInterrupted(t *testing.T) {
	net := newMemNet(3)
	r := newTestRepo(t, cryptotest.FixedKeys(t), net)
	ctx := t.Context()
	src := t.TempDir()
	makeTree(t, src)
	if _, err := r.Backup(ctx, []string{src}, BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	var p catalog.PackRecord
	if err := r.cat.Packs(func(pr catalog.PackRecord) error { p = pr; return nil }); err != nil {
		t.Fatal(err)
	}
	// What a crash between putting the new shards and recording the pack
	// leaves: a pending record, and shards no pack names.
	np := p
	np.ID[0] ^= 0xff
	np.Shape.ShardIDs = slices.Clone(p.Shape.ShardIDs)
	for i, h := range np.Holders {
		np.Shape.ShardIDs[i][0] ^= 0xff
		mustOK(t, r.net.Holder(h).PutShard(ctx, np.Shape.ShardIDs[i], []byte("stray")))
	}
	before := 0
	for _, h := range net.holders {
		n, _ := h.Len()
		before += n
	}
	b, err := jsonMarshalPack(np)
	mustOK(t, err)
	mustOK(t, r.db.PutSync(kvLocal, keyRecoding, b))
	rep, err := r.Recode(ctx)
	if err != nil || rep.Released != len(np.Holders) {
		t.Fatalf("recode after a crash: %+v %v; want %d shards released", rep, err, len(np.Holders))
	}
	after := 0
	for _, h := range net.holders {
		n, _ := h.Len()
		after += n
	}
	if before-after != len(np.Holders) {
		t.Fatalf("friends held %d shards, now %d: want the %d strays gone and nothing else", before, after, len(np.Holders))
	}
}

var kvLocal = kv.Local

func jsonMarshalPack(p catalog.PackRecord) ([]byte, error) { return json.Marshal(p) }

// BenchmarkBackupTarget backs up 64 MiB of random file bytes to six
// friends (in memory) with targets 1, 2 and 3, and reports what the friends
// store per byte backed up.
func BenchmarkBackupTarget(b *testing.B) {
	const size = 64 << 20
	src := b.TempDir()
	f, err := os.Create(filepath.Join(src, "data"))
	mustOK(b, err)
	_, err = io.Copy(f, newRandReader(3, size))
	mustOK(b, err)
	mustOK(b, f.Close())
	keys := cryptotest.FixedKeys(b)
	for _, m := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("target=%d", m), func(b *testing.B) {
			b.SetBytes(size)
			var stored int64
			for b.Loop() {
				b.StopTimer()
				net := newMemNet(6)
				r, err := NewRepo(Config{DB: openKV(b), Keys: keys, Net: net, Host: "bench"})
				mustOK(b, err)
				_, err = r.SetRedundancy(m)
				mustOK(b, err)
				b.StartTimer()
				if _, err := r.Backup(b.Context(), []string{src}, BackupOptions{}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				stored = 0
				for _, h := range net.holders {
					_, n := h.Len()
					stored += n
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(stored)/size, "stored-bytes/B")
		})
	}
}

// A friend that gives less room than the owner's data there takes has the
// excess moved to others at the next check; everything still restores.
func TestCheckMovesExcess(t *testing.T) {
	net := newMemNet(4)
	r := newTestRepo(t, cryptotest.FixedKeys(t), net)
	ctx := t.Context()
	src := t.TempDir()
	makeTree(t, src)
	snap, err := r.Backup(ctx, []string{src}, BackupOptions{})
	mustOK(t, err)
	_, before := net.holders[0].Len()
	net.holders[0].SetQuota(before / 3)
	if _, err := r.CheckRound(ctx, HealConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, after := net.holders[0].Len(); after > before/3 {
		t.Fatalf("friend-0 holds %d bytes after the check, more than the %d it gives (it held %d)", after, before/3, before)
	}
	o := t.TempDir()
	if _, err := r.Restore(ctx, snap, o, restorer.Options{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, filepath.Join(o, src))
	if v, err := r.Verify(ctx, check.Options{ReadData: true}); err != nil || !v.OK {
		t.Fatalf("verify after moving the excess: %+v %v", v, err)
	}
}

// recodingPacks is the Repo's fetcher, which re-codes every pack (new packs
// with the same chunks, the old ones dropped and released) before the
// first fetch of a restore goes out.
type recodingPacks struct {
	r     *Repo
	t     *testing.T
	once  sync.Once
	moved int
}

func (p *recodingPacks) FetchInto(ctx context.Context, rec catalog.PackRecord, buf []byte) ([]byte, []pack.Entry, error) {
	p.once.Do(func() {
		if _, err := p.r.SetRedundancy(2); err != nil {
			p.t.Error(err)
		}
		rep, err := p.r.Recode(ctx)
		if err != nil {
			p.t.Error(err)
		}
		p.moved = rep.Packs
	})
	return p.r.fetcher.FetchInto(ctx, rec, buf)
}

// TestRestoreWhileRecoding: packs replaced while a restore runs (here all
// of them, after it planned) are followed to the packs that hold their
// chunks now: the restore is byte-identical, not "pack … is not in the
// catalog".
func TestRestoreWhileRecoding(t *testing.T) {
	net := newMemNet(6)
	r := newTestRepo(t, cryptotest.FixedKeys(t), net)
	ctx := t.Context()
	if _, err := r.SetRedundancy(1); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	makeTree(t, src)
	snap, err := r.Backup(ctx, []string{src}, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	packs := &recodingPacks{r: r, t: t}
	o := t.TempDir()
	if _, err := restorer.Restore(ctx, restorer.Config{Trees: r, Index: r.cat, Packs: packs, Keyer: r.keyer}, snap, o, restorer.Options{}); err != nil {
		t.Fatalf("restore while the packs were re-coded (%d): %v", packs.moved, err)
	}
	if packs.moved == 0 {
		t.Fatal("nothing was re-coded: the test checks nothing")
	}
	sameTree(t, src, filepath.Join(o, src))
}
