package durable

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for _, content := range []string{"first", "second, longer"} {
		if err := WriteFile(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != content {
			t.Fatalf("read back %q (%v), want %q", b, err, content)
		}
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v (%v), want 0640", fi.Mode(), err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) > 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}

func TestCreateFileRefusesToReplace(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "keys")
	if err := CreateFile(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CreateFile(p, []byte("two"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second CreateFile: %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one" {
		t.Fatalf("the file became %q", b)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) > 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}

func TestCommitRemovesTempOnFailure(t *testing.T) {
	dir := t.TempDir()
	tmp, err := Temp(filepath.Join(dir, "f"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	// The destination is a directory that is not empty: the rename fails.
	dst := filepath.Join(dir, "d")
	if err := os.MkdirAll(filepath.Join(dst, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Commit(tmp, dst); err == nil {
		t.Fatal("Commit over a non-empty directory succeeded")
	}
	if _, err := os.Stat(tmp.Name()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the temporary file is still there: %v", err)
	}
}
