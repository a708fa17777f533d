package integration

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
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

// hasFile reports whether there is a regular file under dir.
func hasFile(dir string) bool {
	found := errors.New("found")
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			return found
		}
		return nil // dir not made yet, or a folder being made: go on
	})
	return errors.Is(err, found)
}

// TestKillDuringRestore: the daemon is killed with SIGKILL at random
// moments while it restores. No file is ever half-written under its final
// name; after a restart the same restore, run again without --overwrite,
// keeps what was whole and finishes, byte-identical.
func TestKillDuringRestore(t *testing.T) {
	t.Parallel() // beside the other crash tests and the soak: see TestChaos
	c := newCluster(t, nil, "a", "b", "c")
	src := filepath.Join(c.base, "src")
	makeFiles(t, src, 5, 300, 96<<20, 64<<20, 48<<20)
	id := c.backup(src)
	rng := rand.New(rand.NewPCG(11, 11))
	kept, cut := 0, 0
	for i := range crashRounds() {
		dst := filepath.Join(c.base, fmt.Sprintf("restore%02d", i))
		cmd, _, _ := runInBackground(t, "restore", "--data", c.dir("a"), id, "--to", dst, "--json")
		// The first file being written says the restore is under way (the
		// first progress report, half a second in, came after the end of
		// half the restores once both friends sent their share); then a
		// random moment inside it.
		deadline := time.Now().Add(30 * time.Second)
		for !hasFile(dst) && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
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
	t.Parallel() // beside the other crash tests and the soak: see TestChaos
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
	t.Parallel() // beside the other crash tests and the soak: see TestChaos
	c := newCluster(t, nil, "a", "b", "c", "d")
	owner := status(t, c.dir("a"))["peer_id"].(string)
	src := filepath.Join(c.base, "src")
	rng := rand.New(rand.NewPCG(17, 17))
	during, midShard := 0, 0
	for i := range crashRounds() {
		makeFiles(t, filepath.Join(src, fmt.Sprintf("round%02d", i)), uint64(300+i), 20, 48<<20)
		// b's return may start a re-coding of the packs cut without it:
		// the backup runs all the same (the re-coding yields to it).
		cmd, _, out := runInBackground(t, "backup", "--data", c.dir("a"), "--json", src)
		// The kill comes at a random moment after a shard began to arrive
		// at b (its temporary .put- file is there).
		held := filepath.Join(c.dir("b"), "shards", owner)
		for deadline := time.Now().Add(30 * time.Second); !receiving(held); time.Sleep(2 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no shard began to arrive at b within 30 s", i)
			}
		}
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		if !strings.Contains(out.String(), "snapshot_id") {
			during++ // the backup had not ended when b went
		}
		c.kill("b")
		if receiving(held) {
			midShard++ // b died with a shard half-received
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("round %d: the backup failed when one friend of three went away: %v\n%s", i, err, out)
		}
		c.start("b")
		// b holds no folder for the owner when it was killed before its
		// first shard arrived (on a busy machine).
		entries, err := os.ReadDir(filepath.Join(c.dir("b"), "shards", owner))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
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
	t.Logf("%d kills, %d of them before the backup ended, %d with a shard half-received", crashRounds(), during, midShard)
	if during < crashRounds()/2 || midShard == 0 {
		t.Fatalf("only %d of %d kills came before the backup ended, %d with a shard half-received: the test checks too little", during, crashRounds(), midShard)
	}
}

// receiving reports whether a friend's folder for an owner holds a shard
// being received (its temporary .put- file).
func receiving(dir string) bool {
	es, _ := os.ReadDir(dir) // not made yet: nothing arrives
	for _, e := range es {
		if strings.HasPrefix(e.Name(), ".put-") {
			return true
		}
	}
	return false
}

// TestKillDuringRepair: a friend is gone for good and the owner is killed
// at random moments while it repairs. After each restart no pack is lost
// and no head record names a pack the catalog lacks; the snapshot restores
// byte-identical; the repair run again finishes, and verify passes.
func TestKillDuringRepair(t *testing.T) {
	t.Parallel() // beside the other crash tests and the soak: see TestChaos
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

// recoveryWords returns the 24 words a plug printed when it was created.
func recoveryWords(t *testing.T, log string) string {
	t.Helper()
	_, after, ok := strings.Cut(log, "They are stored nowhere and not shown again.\n")
	if !ok {
		t.Fatal("the plug did not print its 24 words")
	}
	words, _, _ := strings.Cut(after, "\n")
	if n := len(strings.Fields(words)); n != 24 {
		t.Fatalf("%d recovery words, want 24: %q", n, words)
	}
	return strings.TrimSpace(words)
}

// TestKillDuringHeadPublish: the owner is killed at random moments while
// it publishes a head record (the index segment, the record kept locally,
// the record given to each friend). After each restart verify --read-data
// passes and the next backup restores byte-identical; at the end every
// snapshot restores byte-identical, and a new plug recovered from the 24
// words finds the newest snapshot in the records the friends hold.
func TestKillDuringHeadPublish(t *testing.T) {
	t.Parallel() // beside the other crash tests and the soak: see TestChaos
	c := newCluster(t, []string{"-v"}, "a", "b", "c", "d")
	words := recoveryWords(t, c.d["a"].logText())
	src := filepath.Join(c.base, "src")
	makeFiles(t, filepath.Join(src, "base"), 400, 600)
	// How long a publish of as many new files takes here: the kills land
	// inside that window.
	start, end := c.d["a"].when("publishing the head record"), c.d["a"].when("head record published")
	began := make(chan time.Time, 1)
	go func() { <-start; began <- time.Now() }()
	c.backup(src)
	<-end
	window := time.Since(<-began)
	t.Logf("a publish takes about %v", window.Round(time.Millisecond))
	rng := rand.New(rand.NewPCG(23, 23))
	inside := 0
	// The kill waits a random time up to within after the publish is seen
	// to begin. Seeing it takes time too (the daemon's output is read
	// through a pipe), more on a loaded machine: after a kill that came
	// too late the next rounds aim earlier, after one in time later again,
	// up to the measured window.
	within := window
	// Rounds go on until half of crashRounds() kills came inside the
	// publish, up to three times as many rounds: on a loaded machine more
	// kills come too late, and the test still checks as much.
	want, rounds := crashRounds()/2, 0
	for i := 0; inside < want || i < crashRounds(); i++ {
		if i == 3*crashRounds() {
			t.Fatalf("only %d of %d kills came before the publish ended: the test checks too little", inside, i)
		}
		rounds++
		// New files: the record gets an index segment and a new snapshot.
		makeFiles(t, filepath.Join(src, fmt.Sprintf("round%02d", i)), uint64(500+i), 600)
		start, end := c.d["a"].when("publishing the head record"), c.d["a"].when("head record published")
		cmd, _, out := runInBackground(t, "backup", "--data", c.dir("a"), "--json", src)
		select {
		case <-start:
		case <-time.After(2 * time.Minute):
			t.Fatalf("round %d: no publish within 2 minutes of the backup's start:\n%s", i, out)
		}
		// A random moment inside the publish; kill returns once the
		// daemon's output is all read.
		time.Sleep(time.Duration(rng.Int64N(int64(within) + 1)))
		c.kill("a")
		select {
		case <-end:
			within /= 2
		default:
			inside++
			within = min(window, within*3/2+time.Millisecond)
		}
		_ = cmd.Wait() // it fails when the kill came first, which is the point
		c.start("a")
		if v, code := c.verify(true); code != 0 || !v.OK || len(v.LostPacks) > 0 || v.HeadPacksUnknown > 0 {
			t.Fatalf("round %d: after a kill during the publish, verify --read-data exit %d: %+v", i, code, v)
		}
		c.backup(src)
		round := filepath.Join(src, fmt.Sprintf("round%02d", i))
		o := filepath.Join(c.base, fmt.Sprintf("out%02d", i))
		mustPlug(t, "restore", "--data", c.dir("a"), "latest", "--path", round, "--to", o)
		sameFiles(t, round, filepath.Join(o, round))
	}
	t.Logf("%d kills, %d of them before the publish ended", rounds, inside)
	// Every snapshot restores: each file as it was (files are only added).
	var snaps []struct {
		ID string `json:"id"`
	}
	fromJSON(t, mustPlug(t, "snapshots", "--data", c.dir("a"), "--json").stdout, &snaps)
	for _, s := range snaps {
		o := filepath.Join(c.base, "snap-"+s.ID)
		mustPlug(t, "restore", "--data", c.dir("a"), s.ID, "--to", o)
		if n := noPartialFiles(t, o); n < 600 {
			t.Fatalf("snapshot %s restored %d files, want at least 600", s.ID, n)
		}
	}
	// The plug is lost: the friends' records bring the newest snapshot back.
	c.kill("a")
	a2 := filepath.Join(c.base, "a2")
	if r := plug(t, words+"\n", "init", "--recover", "--data", a2, "--json"); r.code != 0 {
		t.Fatalf("init --recover: %s", r.stderr)
	}
	startPlug(t, a2, "--bootstrap", c.boot, "--name", "a")
	var got []struct {
		ID string `json:"id"`
	}
	eventually(t, 3*time.Minute, "the recovered plug found no snapshot", func() bool {
		fromJSON(t, mustPlug(t, "snapshots", "--data", a2, "--json").stdout, &got)
		return len(got) > 0
	})
	if len(got) != len(snaps) || got[0].ID != snaps[0].ID {
		t.Fatalf("the recovered plug has %d snapshots, newest %s; want %d, newest %s", len(got), got[0].ID, len(snaps), snaps[0].ID)
	}
	o := filepath.Join(c.base, "out-recovered")
	mustPlug(t, "restore", "--data", a2, "latest", "--to", o)
	sameFiles(t, src, filepath.Join(o, src))
}

// TestFriendTreesAfterAPowerCut: a friend does not sync the outboard tree
// it keeps beside each shard, so a power cut can leave trees empty, gone or
// garbled. After its restart the friend makes the empty and missing ones
// again from the shards (and says so in its log), mends the garbled one at
// the first proof, and the owner's verify finds every shard proved.
func TestFriendTreesAfterAPowerCut(t *testing.T) {
	t.Parallel() // beside the other crash tests and the soak: see TestChaos
	c := newCluster(t, nil, "a", "b", "c", "d")
	owner := status(t, c.dir("a"))["peer_id"].(string)
	src := filepath.Join(c.base, "src")
	makeFiles(t, src, 41, 30, 40<<20)
	c.backup(src)

	c.kill("b")
	// The three largest shards: a shard of one 16 KiB group has a tree of
	// its size alone.
	shards := shardFiles(t, c.dir("b"), owner)
	size := func(name string) int64 {
		fi, err := os.Stat(name)
		mustOK(t, err)
		return fi.Size()
	}
	slices.SortFunc(shards, func(x, y string) int { return cmp.Compare(size(y), size(x)) })
	if len(shards) < 3 || size(shards[2]) < 64<<10 {
		t.Fatalf("b holds %d shards, want at least 3 of 64 KiB or more", len(shards))
	}
	garbled := shards[2] + ".obao"
	tree, err := os.ReadFile(garbled)
	mustOK(t, err)
	mustOK(t, os.Truncate(shards[0]+".obao", 0)) // what ext4 leaves of an unsynced file
	mustOK(t, os.Remove(shards[1]+".obao"))
	bad := slices.Clone(tree)
	bad[8] ^= 0x40 // the root's left child: on the path of every proof
	mustOK(t, os.WriteFile(garbled, bad, 0o600))

	c.start("b")
	if log := mustPlug(t, "log", "--data", c.dir("b")).stdout; !strings.Contains(log, "made 2 outboard trees again from their shards") {
		t.Fatalf("b's log does not say it made the two trees again:\n%s", log)
	}
	eventually(t, time.Minute, "b did not come back online", func() bool { return onlineFriends(t, c.dir("a")) == 3 })
	v, code := c.verify(false)
	if code != 0 || !v.OK {
		t.Fatalf("verify exit %d: %+v", code, v)
	}
	for _, f := range v.Friends {
		if f.Shards == 0 || f.Proved != f.Shards || f.Missing+f.Corrupt > 0 || f.Offline {
			t.Errorf("verify of %s: %+v, want every shard proved", f.Name, f)
		}
	}
	if got, err := os.ReadFile(garbled); err != nil || !bytes.Equal(got, tree) {
		t.Errorf("b did not mend the garbled tree at the first proof (err %v)", err)
	}
}
