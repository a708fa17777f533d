package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// mountTmpfs mounts a tmpfs of size MiB at dir (made if missing), unmounted
// when the test ends. It needs root: the test skips without it, unless
// PLUG_REQUIRE_ROOT is set (CI), where it fails.
func mountTmpfs(t *testing.T, dir string, size int) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("PLUG_REQUIRE_ROOT") != "" {
			t.Fatal("this test mounts a small tmpfs and needs root (PLUG_REQUIRE_ROOT is set)")
		}
		t.Skip("this test mounts a small tmpfs and needs root")
	}
	mustOK(t, os.MkdirAll(dir, 0o755))
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%dm", size)); err != nil {
		t.Fatalf("mount a tmpfs at %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// fill writes a file that leaves about left MiB free on dir's disk.
func fill(t *testing.T, dir string, left int64) string {
	t.Helper()
	var st syscall.Statfs_t
	mustOK(t, syscall.Statfs(dir, &st))
	free := int64(st.Bavail) * st.Bsize
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	mustOK(t, err)
	buf := make([]byte, 1<<20)
	for n := free - left<<20; n > 0; n -= int64(len(buf)) {
		if _, err := f.Write(buf[:min(int64(len(buf)), n)]); err != nil {
			break
		}
	}
	mustOK(t, f.Close())
	return p
}

// TestFullDisks: the owner's data directory and a restore's destination
// fill up. Each gets a clear error naming what is full and what to do, the
// daemon keeps running, nothing backed up is lost, and the operation
// succeeds once there is room again.
func TestFullDisks(t *testing.T) {
	base := t.TempDir()
	mountTmpfs(t, filepath.Join(base, "a"), 400)
	mountTmpfs(t, filepath.Join(base, "b"), 400)
	c := newClusterIn(t, base, nil, "a", "b", "c", "d")
	src := filepath.Join(base, "src")
	makeFiles(t, src, 41, 30, 20<<20)
	id := c.backup(src)

	t.Run("owner's disk", func(t *testing.T) {
		filler := fill(t, c.dir("a"), 40) // under the store's reserve
		more := filepath.Join(base, "more")
		makeFiles(t, more, 42, 10, 4<<20)
		r := plug(t, "", "backup", "--data", c.dir("a"), more)
		if r.code != 1 || !strings.Contains(r.stderr, "the plug's disk is full") || !strings.Contains(r.stderr, "free some space") {
			t.Fatalf("backup with the owner's disk full: exit %d\n%s", r.code, r.stderr)
		}
		if st := status(t, c.dir("a")); st["peer_id"] == "" {
			t.Fatal("the daemon stopped answering with its disk full")
		}
		mustOK(t, os.Remove(filler))
		c.backup(more)
	})

	t.Run("a friend's disk", func(t *testing.T) {
		filler := fill(t, c.dir("b"), 8)
		more := filepath.Join(base, "more2")
		makeFiles(t, more, 43, 10, 30<<20)
		c.backup(more) // c and d take it
		if log := c.d["a"].logText(); !strings.Contains(log, "a friend's disk is full") {
			t.Fatalf("the owner's log does not say b's disk is full:\n%s", log)
		}
		if st := status(t, c.dir("b")); st["peer_id"] == "" {
			t.Fatal("b stopped answering with its disk full")
		}
		mustOK(t, os.Remove(filler))
	})

	t.Run("restore destination", func(t *testing.T) {
		dst := filepath.Join(base, "dst")
		mountTmpfs(t, dst, 8)
		r := plug(t, "", "restore", "--data", c.dir("a"), id, "--to", dst)
		if r.code != 1 || !strings.Contains(r.stderr, "the disk of the destination is full") || strings.Count(r.stderr, "no space left") > 2 {
			t.Fatalf("restore to a full disk: exit %d\n%s", r.code, r.stderr)
		}
		// Nothing half-written under a file's name.
		err := filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".plug-restore-") {
				return err
			}
			rel, _ := filepath.Rel(dst, p)
			want, rerr := os.ReadFile(filepath.Join("/", rel))
			got, gerr := os.ReadFile(p)
			if rerr != nil || gerr != nil || string(want) != string(got) {
				return fmt.Errorf("%s is under its final name but not whole", p)
			}
			return nil
		})
		mustOK(t, err)
		mustOK(t, syscall.Mount("tmpfs", dst, "tmpfs", syscall.MS_REMOUNT, "size=256m"))
		mustPlug(t, "restore", "--data", c.dir("a"), id, "--to", dst, "--overwrite")
		sameFiles(t, src, filepath.Join(dst, src))
	})
}
