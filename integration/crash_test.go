package integration

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// crashRounds is how many times each phase is killed (fewer with -short).
func crashRounds() int {
	if testing.Short() {
		return 3
	}
	return 10
}

// noPartialFiles fails when a file under dst, by its final name, is not
// whole (the same bytes as at its original absolute path).
func noPartialFiles(t *testing.T, dst string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".plug-restore-") {
			return err
		}
		rel, err := filepath.Rel(dst, p)
		if err != nil {
			return err
		}
		want, err := os.ReadFile(filepath.Join("/", rel))
		if err != nil {
			return err
		}
		got, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if string(got) != string(want) {
			return fmt.Errorf("%s is under its final name but not whole (%d of %d bytes)", p, len(got), len(want))
		}
		n++
		return nil
	})
	mustOK(t, err)
	return n
}

// TestKillDuringRestore: the daemon is killed with SIGKILL at random
// moments while it restores. No file is ever half-written under its final
// name; after a restart the same restore, run again without --overwrite,
// keeps what was whole and finishes, byte-identical.
func TestKillDuringRestore(t *testing.T) {
	c := newCluster(t, nil, "a", "b", "c")
	src := filepath.Join(c.base, "src")
	makeFiles(t, src, 5, 300, 96<<20, 64<<20, 48<<20)
	id := c.backup(src)
	rng := rand.New(rand.NewPCG(11, 11))
	kept, cut := 0, 0
	for i := range crashRounds() {
		dst := filepath.Join(c.base, fmt.Sprintf("restore%02d", i))
		cmd, progressed, _ := runInBackground(t, "restore", "--data", c.dir("a"), id, "--to", dst, "--json")
		select {
		case <-progressed:
		case <-time.After(30 * time.Second):
		}
		time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond) // a random moment inside the restore
		c.kill("a")
		if cmd.Wait() != nil {
			cut++ // the restore did not finish
		}
		kept += noPartialFiles(t, dst)
		c.start("a")
		mustPlug(t, "restore", "--data", c.dir("a"), id, "--to", dst)
		sameFiles(t, src, filepath.Join(dst, src))
	}
	t.Logf("%d kills, %d of them inside the restore; %d whole files kept across them", crashRounds(), cut, kept)
	if cut < crashRounds()/2 {
		t.Fatalf("only %d of %d kills came before the restore ended: the test checks too little", cut, crashRounds())
	}
}

// TestKillDuringForget: the daemon is killed at random moments while it
// forgets old snapshots and prunes; after each restart verify --read-data
// passes, the kept snapshot restores byte-identical, and forget runs again
// to the end.
func TestKillDuringForget(t *testing.T) {
	c := newCluster(t, nil, "a", "b", "c", "d")
	src := filepath.Join(c.base, "src")
	rng := rand.New(rand.NewPCG(13, 13))
	cut := 0
	for i := range crashRounds() {
		makeFiles(t, filepath.Join(src, fmt.Sprintf("round%02d", i)), uint64(200+i), 40, 24<<20)
		c.backup(src)
		// Some of this round's files go: the next prune has packs to drop.
		mustOK(t, os.Remove(filepath.Join(src, fmt.Sprintf("round%02d", i), "large-0.bin")))
		id := c.backup(src)
		cmd, _, _ := runInBackground(t, "forget", "--data", c.dir("a"), "--keep-last", "1", "--prune", "--json")
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond) // a random moment inside forget and prune
		c.kill("a")
		if cmd.Wait() != nil {
			cut++
		}
		c.start("a")
		v, code := c.verify(true)
		if code != 0 || !v.OK || len(v.LostPacks) > 0 || v.HeadPacksUnknown > 0 {
			t.Fatalf("after kill %d during forget: verify --read-data exit %d: %+v", i+1, code, v)
		}
		o := filepath.Join(c.base, fmt.Sprintf("out%02d", i))
		mustPlug(t, "restore", "--data", c.dir("a"), id, "--to", o)
		sameFiles(t, src, filepath.Join(o, src))
		mustPlug(t, "forget", "--data", c.dir("a"), "--keep-last", "1", "--prune")
	}
	t.Logf("%d kills, %d of them inside forget and prune", crashRounds(), cut)
	if cut == 0 {
		t.Fatal("no kill came before forget and prune ended: the test checks nothing")
	}
}

// TestKillFriendReceiving: a friend is killed with SIGKILL at random moments
// while shards come in. The backup goes on with the others; after the
// friend restarts it holds no half-received shard, verify --read-data
// passes, and the snapshot restores byte-identical.
func TestKillFriendReceiving(t *testing.T) {
	c := newCluster(t, nil, "a", "b", "c", "d")
	owner := status(t, c.dir("a"))["peer_id"].(string)
	src := filepath.Join(c.base, "src")
	rng := rand.New(rand.NewPCG(17, 17))
	for i := range crashRounds() {
		makeFiles(t, filepath.Join(src, fmt.Sprintf("round%02d", i)), uint64(300+i), 20, 48<<20)
		cmd, progressed, _ := runInBackground(t, "backup", "--data", c.dir("a"), "--json", src)
		select {
		case <-progressed:
		case <-time.After(30 * time.Second):
		}
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond) // a random moment while shards arrive
		c.kill("b")
		if err := cmd.Wait(); err != nil {
			t.Fatalf("round %d: the backup failed when one friend of three went away: %v", i, err)
		}
		c.start("b")
		entries, err := os.ReadDir(filepath.Join(c.dir("b"), "shards", owner))
		mustOK(t, err)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".put-") {
				t.Fatalf("round %d: b kept a half-received shard after its restart: %s", i, e.Name())
			}
		}
		eventually(t, time.Minute, "b did not come back online", func() bool { return onlineFriends(t, c.dir("a")) == 3 })
		if v, code := c.verify(true); code != 0 || !v.OK || len(v.LostPacks) > 0 {
			t.Fatalf("round %d: verify --read-data exit %d: %+v", i, code, v)
		}
	}
	o := filepath.Join(c.base, "out")
	mustPlug(t, "restore", "--data", c.dir("a"), "latest", "--to", o)
	sameFiles(t, src, filepath.Join(o, src))
}

// TestKillDuringRepair: a friend is gone for good and the owner is killed
// at random moments while it repairs. After each restart no pack is lost
// and no head record names a pack the catalog lacks; the snapshot restores
// byte-identical; the repair run again finishes, and verify passes.
func TestKillDuringRepair(t *testing.T) {
	c := newCluster(t, []string{"--grace", "1s"}, "a", "b", "c", "d", "e")
	src := filepath.Join(c.base, "src")
	makeFiles(t, src, 19, 60, 40<<20, 24<<20)
	id := c.backup(src)
	c.kill("b") // gone for good: its role goes to the others
	rng := rand.New(rand.NewPCG(19, 19))
	cut := 0
	for i := range crashRounds() {
		cmd, _, _ := runInBackground(t, "repair", "--data", c.dir("a"), "--json")
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond) // a random moment inside the repair
		c.kill("a")
		if cmd.Wait() != nil {
			cut++
		}
		c.start("a")
		v, _ := c.verify(false)
		if len(v.LostPacks) > 0 || v.HeadPacksUnknown > 0 {
			t.Fatalf("after kill %d during repair: %+v", i+1, v)
		}
	}
	mustPlug(t, "repair", "--data", c.dir("a"))
	if v, code := c.verify(true); code != 0 || !v.OK {
		t.Fatalf("verify --read-data after the repair: exit %d, %+v", code, v)
	}
	o := filepath.Join(c.base, "out")
	mustPlug(t, "restore", "--data", c.dir("a"), id, "--to", o)
	sameFiles(t, src, filepath.Join(o, src))
	t.Logf("%d kills, %d of them inside the repair", crashRounds(), cut)
	if cut == 0 {
		t.Fatal("no kill came before a repair ended: the test checks nothing")
	}
}
