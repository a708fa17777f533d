package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/plug-net/plug/chunker"
	"github.com/plug-net/plug/crypto/cryptotest"
	"github.com/plug-net/plug/store/catalog"
	"github.com/plug-net/plug/store/check"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/prune"
	"github.com/plug-net/plug/store/restorer"
	"github.com/plug-net/plug/store/target"
)

func TestVerify(t *testing.T) {
	keys := cryptotest.FixedKeys(t)
	net := newMemNet(3) // k=2, m=1
	r := newTestRepo(t, keys, net)
	src := t.TempDir()
	makeTree(t, src)
	ctx := t.Context()
	if _, err := r.Backup(ctx, []string{src}, BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, readData := range []bool{false, true} {
		rep, err := r.Verify(ctx, check.Options{ReadData: readData})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK || rep.CanLose != 1 || len(rep.Friends) != 3 {
			t.Fatalf("healthy verify (read data %v): %+v", readData, rep)
		}
		for _, f := range rep.Friends {
			if f.Proved != f.Checked || f.Checked == 0 || f.Missing+f.Corrupt != 0 {
				t.Fatalf("friend %+v", f)
			}
		}
	}
	// One friend flips a bit in every shard, then puts them back and cuts
	// every one short: either way its shards are corrupt (a truncated one
	// it answers for as corrupt itself), and the friend is not offline.
	flip := func(b []byte) []byte {
		for i := 0; i < len(b); i += 1024 {
			b[i] ^= 0x80
		}
		return b
	}
	for _, damage := range []struct {
		name string
		f    func(b []byte) []byte
	}{
		{"flips bits", flip},
		{"truncates", func(b []byte) []byte { return flip(b)[:len(b)/2] }},
	} {
		for _, id := range net.holders[1].IDs() {
			net.holders[1].Tamper(id, damage.f)
		}
		for _, readData := range []bool{false, true} {
			rep, err := r.Verify(ctx, check.Options{ReadData: readData})
			if err != nil {
				t.Fatal(err)
			}
			var bad check.FriendCheck
			for _, f := range rep.Friends {
				if f.PeerID == net.holders[1].Name() {
					bad = f
				}
			}
			if rep.OK || rep.CanLose != 0 || bad.Corrupt == 0 || bad.Proved != 0 || bad.Offline {
				t.Fatalf("verify with a friend that %s (read data %v): %+v, friend %+v", damage.name, readData, rep, bad)
			}
		}
	}
	// Another one is wiped too: data is lost and verify says so.
	net.holders[2].Wipe()
	rep, _ := r.Verify(ctx, check.Options{})
	if rep.OK || len(rep.LostPacks) == 0 {
		t.Fatalf("verify with m+1 friends bad: %+v", rep)
	}
}

func TestRepair(t *testing.T) {
	keys := cryptotest.FixedKeys(t)
	net := newMemNet(5)
	net.holders[4].SetDown(true) // not there at backup time: 4 friends, k=3
	r := newTestRepo(t, keys, net)
	src := t.TempDir()
	makeTree(t, src)
	ctx := t.Context()
	snap, err := r.Backup(ctx, []string{src}, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// friend-0 dies; friend-4 comes.
	net.holders[0].SetDown(true)
	net.holders[4].SetDown(false)
	if rep, _ := r.Verify(ctx, check.Options{}); rep.CanLose != 0 {
		t.Fatalf("before repair can lose %d", rep.CanLose)
	}
	rep, err := r.Repair(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Replaced) != 1 || rep.Replaced[0] != net.holders[0].Name() || rep.Moved == 0 || rep.Repacked != 0 {
		t.Fatalf("repair %+v: want friend-0's shards moved to friend-4", rep)
	}
	v, err := r.Verify(ctx, check.Options{ReadData: true})
	if err != nil || !v.OK || v.CanLose != 1 {
		t.Fatalf("after repair: %+v %v", v, err)
	}
	// friend-1 dies too, and no one new comes: packs are cut again over the
	// three friends left.
	net.holders[1].SetDown(true)
	rep, err = r.Repair(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Repacked == 0 {
		t.Fatalf("repair without a spare friend: %+v", rep)
	}
	v, err = r.Verify(ctx, check.Options{ReadData: true})
	if err != nil || !v.OK || v.CanLose != 1 {
		t.Fatalf("after repack: %+v %v", v, err)
	}
	o := t.TempDir()
	if _, err := r.Restore(ctx, snap, o, restorer.Options{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, filepath.Join(o, src))
	// A recovered plug sees the repaired placement.
	r2 := newTestRepo(t, keys, net)
	if _, err := r2.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	o2 := t.TempDir()
	if _, err := r2.Restore(ctx, snap, o2, restorer.Options{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, filepath.Join(o2, src))
}

// removingNet is a memNet whose friend gone is removed right after it took
// its first shard, while a repair is giving it shards; later puts to it
// are counted.
type removingNet struct {
	*memNet
	gone      string
	mu        sync.Mutex
	removed   bool
	putsAfter int
}

func (n *removingNet) wrap(h target.Holder) target.Holder {
	if h == nil || h.Name() != n.gone {
		return h
	}
	return &removedOnPut{Holder: h, n: n}
}

func (n *removingNet) Reachable(ctx context.Context) []target.Holder {
	hs := n.memNet.Reachable(ctx)
	for i := range hs {
		hs[i] = n.wrap(hs[i])
	}
	return hs
}

func (n *removingNet) Holder(name string) target.Holder { return n.wrap(n.memNet.Holder(name)) }

type removedOnPut struct {
	target.Holder
	n *removingNet
}

func (h *removedOnPut) PutShard(ctx context.Context, id [32]byte, b []byte) error {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	if h.n.removed {
		h.n.putsAfter++
		return errors.New("dial backoff: the removed friend is offline") // what a real removed friend costs
	}
	if err := h.Holder.PutShard(ctx, id, b); err != nil {
		return err
	}
	h.n.removed = true
	h.n.memNet.remove(h.Name())
	return nil
}

// TestRepairStopsUsingARemovedFriend: a friend removed while a repair is
// giving it shards gets no more, and the packs it took before its removal
// are repaired again: no pack names it afterwards.
func TestRepairStopsUsingARemovedFriend(t *testing.T) {
	keys := cryptotest.FixedKeys(t)
	mem := newMemNet(5)
	mem.holders[4].SetDown(true) // not there at backup time: 4 friends, k=3
	net := &removingNet{memNet: mem, gone: mem.holders[4].Name()}
	r := newTestRepo(t, keys, net)
	src := t.TempDir()
	makeTree(t, src)
	ctx := t.Context()
	snap, err := r.Backup(ctx, []string{src}, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	packs := 0
	mustOK(t, r.cat.Packs(func(catalog.PackRecord) error { packs++; return nil }))
	if packs < 3 {
		t.Fatalf("%d packs: the test needs several", packs)
	}
	// friend-0 dies; friend-4 comes, takes one shard and is removed.
	mem.holders[0].SetDown(true)
	mem.holders[4].SetDown(false)
	rep, err := r.Repair(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if net.putsAfter != 0 {
		t.Fatalf("repair asked the removed friend %d more times", net.putsAfter)
	}
	if !slices.Contains(rep.Replaced, net.gone) || !slices.Contains(rep.Replaced, mem.holders[0].Name()) {
		t.Fatalf("replaced %v, want friend-0 and the removed friend-4", rep.Replaced)
	}
	mustOK(t, r.cat.Packs(func(p catalog.PackRecord) error {
		if slices.Contains(p.Holders, net.gone) || slices.Contains(p.Holders, mem.holders[0].Name()) {
			t.Errorf("pack %s still names %v", p.ID.Short(), p.Holders)
		}
		return nil
	}))
	v, err := r.Verify(ctx, check.Options{ReadData: true})
	if err != nil || !v.OK || v.CanLose != 1 {
		t.Fatalf("after repair: %+v %v", v, err)
	}
	o := t.TempDir()
	if _, err := r.Restore(ctx, snap, o, restorer.Options{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, filepath.Join(o, src))
}

func TestForgetPrune(t *testing.T) {
	keys := cryptotest.FixedKeys(t)
	net := newMemNet(3)
	r := newTestRepo(t, keys, net)
	src := t.TempDir()
	ctx := t.Context()
	mustOK(t, os.WriteFile(filepath.Join(src, "old"), randBytes(21, 9<<20), 0o644))
	s1, err := r.Backup(ctx, []string{src}, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, os.Remove(filepath.Join(src, "old")))
	mustOK(t, os.WriteFile(filepath.Join(src, "new"), randBytes(22, 3<<20), 0o644))
	s2, err := r.Backup(ctx, []string{src}, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := shardBytes(net)
	rep, err := r.Forget(ctx, prune.Retention{Last: 1}, false)
	if err != nil || rep.Removed != 1 || rep.Kept != 1 {
		t.Fatalf("forget: %+v %v", rep, err)
	}
	if _, err := r.FindSnapshot(s1.ID.String()); err == nil {
		t.Fatal("the forgotten snapshot is still listed")
	}
	rep, err = r.Forget(ctx, prune.Retention{Last: 1}, true)
	if err != nil || rep.PacksDeleted == 0 {
		t.Fatalf("prune: %+v %v", rep, err)
	}
	if after := shardBytes(net); after >= before-8<<20 {
		t.Fatalf("prune freed %d bytes at friends, want the 9 MiB file's packs", before-after)
	}
	o := t.TempDir()
	if _, err := r.Restore(ctx, s2, o, restorer.Options{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, filepath.Join(o, src))
	// A plug recovered after the prune restores as well, and does not
	// believe pruned chunks are stored.
	r2 := newTestRepo(t, keys, net)
	if _, err := r2.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	c, _ := chunker.New(bytes.NewReader(randBytes(21, 9<<20)), chunker.Config{Gear: r2.gear})
	ch, _ := c.Next()
	if ok, _ := r2.cat.HasChunk(data.ID(r2.keyer.ID(ch.Data))); ok {
		t.Fatal("the recovered catalog believes a pruned chunk is stored: a backup would skip it")
	}
	if ok, _ := r.cat.HasChunk(data.ID(r.keyer.ID(ch.Data))); ok {
		t.Fatal("the catalog still lists a pruned chunk")
	}
	o2 := t.TempDir()
	if _, err := r2.Restore(ctx, s2, o2, restorer.Options{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, filepath.Join(o2, src))
}

// TestVerifyAfterAPruneCutShort: a prune stopped after it dropped a pack
// from the catalog, before a head record without it went out, leaves the
// friends' head naming a pack whose shards wait for release: verify checks
// them and does not count the pack as unknown.
func TestVerifyAfterAPruneCutShort(t *testing.T) {
	keys := cryptotest.FixedKeys(t)
	net := newMemNet(3)
	r := newTestRepo(t, keys, net)
	src := t.TempDir()
	makeTree(t, src)
	ctx := t.Context()
	if _, err := r.Backup(ctx, []string{src}, BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	var p catalog.PackRecord
	mustOK(t, r.cat.Packs(func(rec catalog.PackRecord) error { p = rec; return nil }))
	// What prune does before a kill: release later, then drop.
	mustOK(t, r.releaseShards(p.ID, p.Holders, p.Shape.ShardIDs))
	mustOK(t, r.cat.DropPack(p.ID, nil))
	v, err := r.Verify(ctx, check.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if v.HeadPacksUnknown != 0 || len(v.LostPacks) != 0 || !v.OK {
		t.Fatalf("verify after a prune cut short: %+v", v)
	}
	// A pack the head names that nothing explains is still reported.
	mustOK(t, r.cat.Packs(func(rec catalog.PackRecord) error { p = rec; return nil }))
	mustOK(t, r.cat.DropPack(p.ID, nil))
	if v, _ := r.Verify(ctx, check.Options{}); v.HeadPacksUnknown != 1 {
		t.Fatalf("a head naming a pack the catalog lost: head_packs_unknown %d, want 1", v.HeadPacksUnknown)
	}
}
