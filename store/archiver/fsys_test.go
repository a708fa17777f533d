package archiver

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// entries makes one of each kind of entry the walk meets, and returns
// their names.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "file"), []byte("some bytes"), 0o640))
	must(os.WriteFile(filepath.Join(dir, "setuid"), nil, 0o755))
	must(os.Chmod(filepath.Join(dir, "setuid"), 0o755|fs.ModeSetuid|fs.ModeSetgid))
	must(os.Mkdir(filepath.Join(dir, "sticky"), 0o777))
	must(os.Chmod(filepath.Join(dir, "sticky"), 0o777|fs.ModeSticky))
	must(os.Mkdir(filepath.Join(dir, "folder"), 0o750))
	must(os.Symlink("file", filepath.Join(dir, "link")))
	must(syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600))
	l, err := net.Listen("unix", filepath.Join(dir, "socket"))
	must(err)
	t.Cleanup(func() { _ = l.Close() })
	return []string{"file", "setuid", "sticky", "folder", "link", "fifo", "socket"}
}

// A folder's entries statted relative to its descriptor give the mode and
// the node that os.Lstat gives, and so does the full path when the folder
// could not be opened.
func TestStatAtIsLstat(t *testing.T) {
	dir := t.TempDir()
	names := entries(t, dir)
	names = append(names, "/dev/null") // a character device, by full path
	for _, list := range []bool{true, false} {
		d, err := openFolder(dir, list)
		if err != nil || d.fd < 0 {
			t.Fatalf("openFolder(list=%v): fd %d, %v", list, d.fd, err)
		}
		byPath := &folder{fd: -1}
		for _, name := range names {
			full := filepath.Join(dir, name)
			if filepath.IsAbs(name) {
				full = name
			}
			fi, err := os.Lstat(full)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []*folder{d, byPath} {
				var st unix.Stat_t
				if filepath.IsAbs(name) && f == d {
					continue
				}
				if err := f.lstat(filepath.Base(name), full, &st); err != nil {
					t.Fatal(err)
				}
				if got := modeOf(&st); got != fi.Mode() {
					t.Errorf("%s: mode %v, os.Lstat says %v", name, got, fi.Mode())
				}
				n := nodeFromStat(name, &st)
				sys := fi.Sys().(*syscall.Stat_t)
				if n.ModTime != fi.ModTime().UnixNano() || n.Inode != uint64(sys.Ino) || n.Dev != uint64(sys.Dev) || //nolint:unconvert // narrower on 32-bit ARM
					n.CTime != int64(sys.Ctim.Sec)*1e9+int64(sys.Ctim.Nsec) { //nolint:unconvert
					t.Errorf("%s: node %+v does not match os.Lstat %+v", name, n, sys)
				}
				if fi.Mode().IsRegular() && n.Size != fi.Size() {
					t.Errorf("%s: size %d, want %d", name, n.Size, fi.Size())
				}
			}
		}
		var st unix.Stat_t
		err = d.lstat("missing", filepath.Join(dir, "missing"), &st)
		var pe *fs.PathError
		if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Path != filepath.Join(dir, "missing") {
			t.Errorf("lstat of a missing entry: %v, want a PathError naming its full path", err)
		}
		d.close()
		d.close() // twice is harmless
	}
	if _, err := openFolder(filepath.Join(dir, "missing"), true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("listing a missing folder: %v", err)
	}
}

// A File reads the whole file, says io.EOF at its end, stats it, and
// refuses use after Close.
func TestFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	want := make([]byte, 100_000)
	for i := range want {
		want[i] = byte(i * 7)
	}
	if err := os.WriteFile(p, want, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := OpenForBackup(p)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := f.Stat(&st); err != nil || st.Size != int64(len(want)) || !modeOf(&st).IsRegular() {
		t.Fatalf("stat: size %d mode %v, %v", st.Size, modeOf(&st), err)
	}
	got, err := io.ReadAll(f)
	if err != nil || string(got) != string(want) {
		t.Fatalf("read %d bytes, %v; want the %d written", len(got), err, len(want))
	}
	if n, err := f.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("read at the end: %d, %v", n, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"read":  func() error { _, err := f.Read(make([]byte, 1)); return err }(),
		"stat":  f.Stat(&st),
		"close": f.Close(),
	} {
		if !errors.Is(err, fs.ErrClosed) {
			t.Errorf("%s after close: %v, want fs.ErrClosed", name, err)
		}
	}
	if _, err := OpenForBackup(p + ".missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("opening a missing file: %v", err)
	}
}

// Scan counts the regular files and their bytes under the paths given,
// folders or files, and nothing else.
func TestScan(t *testing.T) {
	root := t.TempDir()
	entries(t, root)
	deep := filepath.Join(root, "folder", "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deep, "deep"), make([]byte, 5000), 0o600); err != nil {
		t.Fatal(err)
	}
	lone := filepath.Join(t.TempDir(), "lone")
	if err := os.WriteFile(lone, make([]byte, 7), 0o600); err != nil {
		t.Fatal(err)
	}
	a := New(Config{}, time.Now())
	a.Scan(t.Context(), []string{root, lone, filepath.Join(root, "missing")})
	// file (10 bytes), setuid (0), deep (5000), lone (7)
	if f, b := a.filesTotal.Load(), a.bytesTotal.Load(); f != 4 || b != 5017 {
		t.Fatalf("scan counted %d files, %d bytes; want 4 and 5017", f, b)
	}
	if !a.scanDone.Load() {
		t.Fatal("scan not marked done")
	}
}
