// Package durable writes files so that they survive a crash or a power cut
// whole: the bytes go to a temporary file beside their place, are synced,
// then the file takes its name and the directory is synced, so that a
// reader (or a restart) sees the old content or the new, never a part, and
// never loses the name. It is a leaf: it imports nothing of the plug's.
package durable

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// WriteFile writes data to path, replacing what was there.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	tmp, err := Temp(path, perm)
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		Discard(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return Commit(tmp, path)
}

// CreateFile writes data to path, which must not exist: if it does (or
// appears meanwhile), the error wraps fs.ErrExist and nothing is changed.
func CreateFile(path string, data []byte, perm fs.FileMode) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("create %s: %w", path, fs.ErrExist)
	}
	tmp, err := Temp(path, perm)
	if err != nil {
		return err
	}
	// The temporary name goes in every case: after the link below the file
	// lives on under path. Best-effort: a leftover is only a hidden ".tmp-"
	// file beside path.
	defer func() { _ = os.Remove(tmp.Name()) }()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil { // fails if path exists
		return fmt.Errorf("create %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// Temp opens a temporary file beside path, with mode perm, for a caller
// that streams its content and then calls Commit.
func Temp(path string, perm fs.FileMode) (*os.File, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		Discard(tmp)
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return tmp, nil
}

// Discard closes and removes a temporary file from Temp that is not to be
// committed, after a failure or because its content is not needed. Both are
// best-effort: a failure is what the caller reports, and a file left behind
// is only a hidden ".tmp-" file, never the real one.
func Discard(tmp *os.File) {
	_ = tmp.Close()
	_ = os.Remove(tmp.Name())
}

// Commit syncs and closes tmp (from Temp), gives it the name path, and
// syncs the directory. On error tmp is removed.
func Commit(tmp *os.File, path string) error {
	err := tmp.Sync()
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name()) // best-effort, as in Discard
		return fmt.Errorf("write %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir syncs a directory, so that the names created in it survive a
// power cut. Windows cannot, and needs not.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
