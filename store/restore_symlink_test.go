package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
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
