package restorer

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// An outFile made exclusively writes where it is told, takes the mode
// bits os.Chmod would give (setuid, setgid and sticky included) and times
// to the nanosecond, and refuses use after Close.
func TestOutFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), "f")
	flags := unix.O_CREAT | unix.O_EXCL | unix.O_WRONLY | unix.O_NOFOLLOW
	f, err := openOut(name, flags, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openOut(name, flags, 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("a second exclusive create: %v, want fs.ErrExist", err)
	}
	if err := f.Allocate(10); err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
		t.Fatal(err)
	}
	if n, err := f.WriteAt([]byte("world"), 5); n != 5 || err != nil {
		t.Fatalf("write at 5: %d, %v", n, err)
	}
	if n, err := f.WriteAt([]byte("hello"), 0); n != 5 || err != nil {
		t.Fatalf("write at 0: %d, %v", n, err)
	}
	mode := fs.FileMode(0o751) | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky
	if err := f.Chmod(mode); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)
	ts := unix.NsecToTimespec(mtime.UnixNano())
	if err := f.SetTimes([2]unix.Timespec{ts, ts}); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := f.Stat(&st); err != nil || st.Size != 10 {
		t.Fatalf("stat: size %d, %v", st.Size, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(name)
	if err != nil || string(b) != "helloworld" {
		t.Fatalf("read back %q, %v", b, err)
	}
	fi, err := os.Lstat(name)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != mode {
		t.Errorf("mode %v, want %v", fi.Mode(), mode)
	}
	if !fi.ModTime().Equal(mtime) {
		t.Errorf("mtime %v, want %v", fi.ModTime(), mtime)
	}
	for op, err := range map[string]error{
		"write": func() error { _, err := f.WriteAt([]byte("x"), 0); return err }(),
		"chmod": f.Chmod(0o600),
		"close": f.Close(),
	} {
		if !errors.Is(err, fs.ErrClosed) {
			t.Errorf("%s after close: %v, want fs.ErrClosed", op, err)
		}
	}
	if _, err := openOut(filepath.Join(name, "under-a-file"), flags, 0o600); err == nil {
		t.Error("made a file under a file")
	}
}
