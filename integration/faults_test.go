package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runInBackground starts "plug ARGS" (run with --json) and returns the
// command, a channel closed at its first progress line on stderr, and its
// stdout and stderr lines (the latter marked "stderr: ").
func runInBackground(t *testing.T, args ...string) (*exec.Cmd, <-chan struct{}, *safeBuffer) {
	t.Helper()
	cmd := exec.Command(plugBin, args...)
	cmd.Env = append(os.Environ(), "PLUG_DATA=", "XDG_DATA_HOME=")
	var out safeBuffer
	cmd.Stdout = &out
	stderr, err := cmd.StderrPipe()
	mustOK(t, err)
	mustOK(t, cmd.Start())
	progressed := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			var p struct{ Bytes int64 }
			if json.Unmarshal(sc.Bytes(), &p) == nil && p.Bytes > 0 && !once {
				close(progressed)
				once = true
			}
			_, _ = out.Write(append([]byte("stderr: "), append(sc.Bytes(), '\n')...)) // a bytes.Buffer underneath: never fails
		}
	}()
	return cmd, progressed, &out
}

// backupInBackground starts "plug backup --json PATHS" (runInBackground).
func backupInBackground(t *testing.T, dir string, paths ...string) (*exec.Cmd, <-chan struct{}, *safeBuffer) {
	t.Helper()
	return runInBackground(t, append([]string{"backup", "--data", dir, "--json"}, paths...)...)
}

// TestKillDuringBackup: the backing-up plug is killed with SIGKILL at random
// moments, ten times. After every restart no head record names a shard that
// is not stored, and verify --read-data finds nothing missing or corrupt;
// the next backup completes and restores byte-identical.
func TestKillDuringBackup(t *testing.T) {
	t.Parallel() // beside the other crash tests and the soak: see TestChaos
	c := newCluster(t, nil, "a", "b", "c", "d")
	src := filepath.Join(c.base, "src")
	makeFiles(t, src, 3, 400, 48<<20, 24<<20, 16<<20)
	rng := rand.New(rand.NewPCG(7, 7))
	kills, interrupted := 0, 0
	for i := 0; kills < 10; i++ {
		// Something new each round, so that each backup has work to do.
		makeFiles(t, filepath.Join(src, fmt.Sprintf("round%02d", i)), uint64(100+i), 50, 64<<20)
		cmd, progressed, _ := backupInBackground(t, c.dir("a"), src)
		select {
		case <-progressed:
		case <-time.After(30 * time.Second):
		}
		// A random moment soon after the first progress: a 64 MiB backup
		// may take only a few hundred milliseconds on a fast machine.
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		c.kill("a")
		if cmd.Wait() != nil {
			interrupted++
		}
		kills++
		c.start("a")
		v, code := c.verify(true)
		if code != 0 || !v.OK || len(v.LostPacks) > 0 || v.HeadPacksUnknown > 0 {
			t.Fatalf("after kill %d: verify --read-data exit %d: %+v", kills, code, v)
		}
		for _, f := range v.Friends {
			if f.Missing+f.Corrupt > 0 {
				t.Fatalf("after kill %d: %s misses %d and has %d corrupt shards", kills, f.Name, f.Missing, f.Corrupt)
			}
		}
	}
	if interrupted < 6 {
		t.Fatalf("only %d of %d kills interrupted a backup", interrupted, kills)
	}
	t.Logf("%d kills, %d in the middle of a backup", kills, interrupted)
	id := c.backup(src)
	v, code := c.verify(true)
	if code != 0 || !v.OK || v.HeadVersion == 0 {
		t.Fatalf("after the last backup: exit %d %+v", code, v)
	}
	out := filepath.Join(c.base, "out")
	mustPlug(t, "restore", "--data", c.dir("a"), id, "--to", out)
	sameFiles(t, src, filepath.Join(out, src))
}

// TestFriendGoesAwayDuringBackup: with three friends (k=2, m=1), one
// killed mid-backup leaves two, enough for k+m: the backup finishes on them.
// With two friends (k=1, m=1), one killed leaves too few: the backup fails
// cleanly, and the next one, with the friend back, completes.
func TestFriendGoesAwayDuringBackup(t *testing.T) {
	t.Run("enough left", func(t *testing.T) {
		c := newCluster(t, nil, "a", "b", "c", "d")
		src := filepath.Join(c.base, "src")
		makeFiles(t, src, 4, 100, 160<<20)
		cmd, progressed, out := backupInBackground(t, c.dir("a"), src)
		<-progressed
		c.kill("d")
		if err := cmd.Wait(); err != nil {
			t.Fatalf("backup with a friend gone mid-way failed: %v\n%s", err, out.String())
		}
		o := filepath.Join(c.base, "out")
		mustPlug(t, "restore", "--data", c.dir("a"), "latest", "--to", o)
		sameFiles(t, src, filepath.Join(o, src))
		if r := mustPlug(t, "log", "--data", c.dir("a"), "-n", "200"); !strings.Contains(r.stdout, "a friend went away during the backup") {
			t.Fatalf("the log does not say a friend went away:\n%s", r.stdout)
		}
		c.start("d")
		c.backup(src)
	})
	t.Run("too few left", func(t *testing.T) {
		c := newCluster(t, nil, "a", "b", "c")
		src := filepath.Join(c.base, "src")
		makeFiles(t, src, 5, 100, 160<<20)
		cmd, progressed, out := backupInBackground(t, c.dir("a"), src)
		<-progressed
		c.kill("c")
		err := cmd.Wait()
		if err == nil || !strings.Contains(out.String(), "too few friends") {
			t.Fatalf("backup with too few friends left: %v\n%s", err, out.String())
		}
		if r := mustPlug(t, "snapshots", "--data", c.dir("a"), "--json"); strings.TrimSpace(r.stdout) != "[]" {
			t.Fatalf("a failed backup left a snapshot: %s", r.stdout)
		}
		c.start("c")
		id := c.backup(src)
		o := filepath.Join(c.base, "out")
		mustPlug(t, "restore", "--data", c.dir("a"), id, "--to", o)
		sameFiles(t, src, filepath.Join(o, src))
		if v, code := c.verify(true); code != 0 || !v.OK {
			t.Fatalf("verify after the next backup: exit %d %+v", code, v)
		}
	})
}

// TestRepair: a friend offline longer than the grace period is replaced:
// its shards are rebuilt from the others, and verify reports full
// redundancy again.
func TestRepair(t *testing.T) {
	c := newCluster(t, []string{"--grace", "1s"}, "a", "b", "c", "d")
	src := filepath.Join(c.base, "src")
	makeFiles(t, src, 6, 200, 30<<20)
	c.backup(src)
	c.kill("d")
	// d is past the grace period once A has seen it offline, and its last
	// sighting (what repair judges by) is more than the grace period old.
	eventually(t, 30*time.Second, "A did not see d offline for longer than the grace period", func() bool {
		for _, f := range friendsOf(t, c.dir("a")) {
			if f.Name == "d" {
				seen, err := time.Parse(time.RFC3339Nano, f.LastSeen)
				return !f.Online && err == nil && time.Since(seen) > time.Second
			}
		}
		return false
	})
	if v, code := c.verify(false); code != 1 || v.CanLose != 0 {
		t.Fatalf("verify with d gone: exit %d, %+v", code, v)
	}
	r := mustPlug(t, "repair", "--data", c.dir("a"), "--json")
	var rep struct {
		Replaced []string `json:"replaced"`
		Repacked int      `json:"repacked"`
	}
	fromJSON(t, r.stdout, &rep)
	if len(rep.Replaced) != 1 || rep.Repacked == 0 {
		t.Fatalf("repair: %s", r.stdout)
	}
	v, code := c.verify(true)
	if code != 0 || !v.OK || v.CanLose != 1 {
		t.Fatalf("verify after repair: exit %d, %+v", code, v)
	}
	o := filepath.Join(c.base, "out")
	mustPlug(t, "restore", "--data", c.dir("a"), "latest", "--to", o)
	sameFiles(t, src, filepath.Join(o, src))
}

// TestSourcesScheduleAndBusy: sources are backed up soon after they change;
// status tells the age of the last good backup; two backups never run at
// once; forget keeps the last N and prune frees the friends' disks.
func TestSourcesScheduleAndBusy(t *testing.T) {
	c := newCluster(t, []string{"--backup-settle", "1s"}, "a", "b", "c")
	src := filepath.Join(c.base, "src")
	mustOK(t, os.MkdirAll(src, 0o755))
	if st := status(t, c.dir("a")); st["last_backup_age_s"].(float64) != -1 {
		t.Fatalf("last_backup_age_s before any backup: %v", st["last_backup_age_s"])
	}
	mustPlug(t, "sources", "--data", c.dir("a"), "add", src)
	if r := mustPlug(t, "sources", "--data", c.dir("a"), "ls"); strings.TrimSpace(r.stdout) != src {
		t.Fatalf("sources ls: %q", r.stdout)
	}
	mustOK(t, os.WriteFile(filepath.Join(src, "note.txt"), []byte("changed"), 0o644))
	deadline := time.Now().Add(60 * time.Second)
	for {
		var snaps []json.RawMessage
		fromJSON(t, mustPlug(t, "snapshots", "--data", c.dir("a"), "--json").stdout, &snaps)
		if len(snaps) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no backup within 60s of a change in a source:\n%s", c.d["a"].logText())
		}
		time.Sleep(300 * time.Millisecond)
	}
	if age := status(t, c.dir("a"))["last_backup_age_s"].(float64); age < 0 || age > 60 {
		t.Fatalf("last_backup_age_s = %v after a backup", age)
	}

	// Never two at once.
	big := filepath.Join(c.base, "big")
	makeFiles(t, big, 8, 10, 200<<20)
	cmd, progressed, out := backupInBackground(t, c.dir("a"), big)
	<-progressed
	r := plug(t, "", "backup", "--data", c.dir("a"), src)
	if r.code != 1 || !strings.Contains(r.stderr, "busy: a backup is running") {
		t.Fatalf("a second backup while one runs: exit %d %q", r.code, r.stderr)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the first backup: %v\n%s", err, out.String())
	}

	// forget --keep-last 1 --prune frees the big file's packs: the newest
	// snapshot is of the source only.
	c.backup(src)
	before := heldBytes(t, c.dir("b"))
	r = mustPlug(t, "forget", "--data", c.dir("a"), "--keep-last", "1", "--prune", "--json")
	var rep struct {
		Removed      int `json:"removed"`
		PacksDeleted int `json:"packs_deleted"`
	}
	fromJSON(t, r.stdout, &rep)
	if rep.Removed == 0 {
		t.Fatalf("forget removed nothing: %s", r.stdout)
	}
	if after := heldBytes(t, c.dir("b")); rep.PacksDeleted == 0 || after > before-150<<20 {
		t.Fatalf("prune deleted %d packs; b holds %d bytes, was %d", rep.PacksDeleted, after, before)
	}
	if v, code := c.verify(true); code != 0 || !v.OK {
		t.Fatalf("verify after forget: exit %d %+v", code, v)
	}
}

// heldBytes sums the shard files a plug holds for its friends.
func heldBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(filepath.Join(dir, "shards"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	mustOK(t, err)
	return n
}
