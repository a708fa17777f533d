package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/plug-net/plug/crypto/cryptotest"
	"github.com/plug-net/plug/store/restorer"
)

// A symlink planted at a restore's temporary name, pointing outside the
// target, is never written through: the file outside keeps its bytes and
// mode, and the restored file is right.
func TestRestoreDoesNotFollowPlantedSymlink(t *testing.T) {
	net := newMemNet(3)
	r := newTestRepo(t, cryptotest.FixedKeys(t), net)
	src := t.TempDir()
	want := randBytes(5, 300_000)
	mustOK(t, os.WriteFile(filepath.Join(src, "secret.txt"), want, 0o644))
	snap, err := r.Backup(t.Context(), []string{src}, BackupOptions{})
	mustOK(t, err)

	outside := filepath.Join(t.TempDir(), "victim")
	mustOK(t, os.WriteFile(outside, []byte("keep me"), 0o600))
	target := t.TempDir()
	dir := filepath.Join(target, src)
	mustOK(t, os.MkdirAll(dir, 0o755))
	mustOK(t, os.Symlink(outside, filepath.Join(dir, ".plug-restore-secret.txt")))

	if _, err := r.Restore(t.Context(), snap, target, restorer.Options{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "keep me" {
		t.Fatalf("the file outside the target now holds %d bytes (%v): the restore wrote through the planted link", len(b), err)
	}
	if fi, err := os.Stat(outside); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the file outside the target changed mode: %v %v", fi.Mode(), err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "secret.txt"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("restored file: %d bytes, %v", len(got), err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "secret.txt")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("restored file is not a regular file: %v %v", fi.Mode(), err)
	}
}

// A folder of the snapshot that is a link at the destination is refused
// even with --overwrite, and the message does not suggest --overwrite; a
// path not in the snapshot is ErrNoPath.
func TestRestoreRefusals(t *testing.T) {
	r := newTestRepo(t, cryptotest.FixedKeys(t), newMemNet(3))
	src := t.TempDir()
	mustOK(t, os.MkdirAll(filepath.Join(src, "sub"), 0o755))
	mustOK(t, os.WriteFile(filepath.Join(src, "sub", "f"), []byte("x"), 0o644))
	snap, err := r.Backup(t.Context(), []string{src}, BackupOptions{})
	mustOK(t, err)
	target := t.TempDir()
	mustOK(t, os.MkdirAll(filepath.Join(target, src), 0o755))
	mustOK(t, os.Symlink(t.TempDir(), filepath.Join(target, src, "sub")))
	_, err = r.Restore(t.Context(), snap, target, restorer.Options{Overwrite: true})
	if !errors.Is(err, restorer.ErrExists) || strings.Contains(err.Error(), "--overwrite") || !strings.Contains(err.Error(), "move them away") {
		t.Fatalf("restore over a linked folder with --overwrite: %v", err)
	}
	_, err = r.Restore(t.Context(), snap, t.TempDir(), restorer.Options{Path: filepath.Join(src, "nope")})
	if !errors.Is(err, restorer.ErrNoPath) {
		t.Fatalf("restore of a path not in the snapshot: %v, want ErrNoPath", err)
	}
}

// A restore run again after it was cut short keeps the files it finished
// and restores the rest, without --overwrite; a file that differs is still
// a clash.
func TestRestoreRerunKeepsWhatWasDone(t *testing.T) {
	r := newTestRepo(t, cryptotest.FixedKeys(t), newMemNet(3))
	src := t.TempDir()
	makeTree(t, src)
	snap, err := r.Backup(t.Context(), []string{src}, BackupOptions{})
	mustOK(t, err)
	dst := t.TempDir()
	first, err := r.Restore(t.Context(), snap, dst, restorer.Options{})
	mustOK(t, err)
	// As if cut short: one file never renamed into place, a temporary left.
	gone := filepath.Join(dst, src, "a", "dup1")
	mustOK(t, os.Remove(gone))
	mustOK(t, os.WriteFile(filepath.Join(dst, src, "a", ".plug-restore-dup1"), []byte("half"), 0o600))
	again, err := r.Restore(t.Context(), snap, dst, restorer.Options{})
	if err != nil {
		t.Fatalf("re-run: %v", err)
	}
	if again.Files != 1 || again.Skipped != first.Files+first.Symlinks-1 {
		t.Fatalf("re-run restored %d files and skipped %d; want 1 and %d", again.Files, again.Skipped, first.Files+first.Symlinks-1)
	}
	sameTree(t, src, filepath.Join(dst, src))
	// A file changed since is not taken for restored.
	mustOK(t, os.WriteFile(filepath.Join(dst, src, "a", "dup2"), []byte("changed"), 0o644))
	if _, err := r.Restore(t.Context(), snap, dst, restorer.Options{}); !errors.Is(err, restorer.ErrExists) {
		t.Fatalf("re-run over a changed file: %v, want ErrExists", err)
	}
}

// A named pipe in a backed-up folder is skipped with a warning that says
// so, and is not counted as an error.
func TestBackupWarnsOfSpecialFiles(t *testing.T) {
	r := newTestRepo(t, cryptotest.FixedKeys(t), newMemNet(3))
	src := t.TempDir()
	mustOK(t, os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644))
	mustOK(t, syscall.Mkfifo(filepath.Join(src, "pipe"), 0o600))
	var warned []string
	snap, err := r.Backup(t.Context(), []string{src}, BackupOptions{Warn: func(p string, err error) { warned = append(warned, p+": "+err.Error()) }})
	mustOK(t, err)
	if len(warned) != 1 || !strings.Contains(warned[0], "named pipe") || snap.Errors != 0 {
		t.Fatalf("warnings %q, errors %d; want one about the named pipe and no error", warned, snap.Errors)
	}
}
