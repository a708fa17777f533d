package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"golang.org/x/sys/unix"

	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/restorer"
)

// Errors of browsing a snapshot, wrapped with the path.
var (
	// ErrNotInSnapshot means no file or folder has that path in the
	// snapshot.
	ErrNotInSnapshot = errors.New("not in the snapshot")
	// ErrNotFolder means a folder was asked for and the path is a file.
	ErrNotFolder = errors.New("a file, not a folder")
	// ErrNotFile means a file was asked for and the path is something else.
	ErrNotFile = errors.New("not a file")
	// ErrNoRoom means the plug's disk has no room for a file on its way
	// to a browser.
	ErrNoRoom = errors.New("not enough free space on the plug's disk")
)

// Downloads bound the files restored for a browser at once, and the free
// space each leaves to the plug.
const (
	maxDownloads     = 2
	downloadHeadroom = 256 << 20
)

// Lookup walks from the snapshot's root to the node at p, a slash path
// ("/" is the root).
func (r *Repo) Lookup(ctx context.Context, snap data.Snapshot, p string) (data.Node, error) {
	p = path.Clean("/" + p)
	n := data.Node{Type: data.TypeDir, Subtree: snap.Tree}
	if p == "/" {
		return n, nil
	}
	for name := range strings.SplitSeq(strings.TrimPrefix(p, "/"), "/") {
		if n.Type != data.TypeDir {
			return n, fmt.Errorf("%s: %w %s", p, ErrNotInSnapshot, snap.ID.Short())
		}
		t, err := r.LoadTree(ctx, n.Subtree)
		if err != nil {
			return n, fmt.Errorf("read snapshot %s: %w", snap.ID.Short(), err)
		}
		c := t.Find(name)
		if c == nil {
			return n, fmt.Errorf("%s: %w %s", p, ErrNotInSnapshot, snap.ID.Short())
		}
		n = *c
	}
	return n, nil
}

// ListFolder returns the entries of the folder at p in the snapshot.
func (r *Repo) ListFolder(ctx context.Context, snap data.Snapshot, p string) ([]data.Node, error) {
	n, err := r.Lookup(ctx, snap, p)
	if err != nil {
		return nil, err
	}
	if n.Type != data.TypeDir {
		return nil, fmt.Errorf("%s: %w", path.Clean("/"+p), ErrNotFolder)
	}
	t, err := r.LoadTree(ctx, n.Subtree)
	if err != nil {
		return nil, fmt.Errorf("read snapshot %s: %w", snap.ID.Short(), err)
	}
	return t.Nodes, nil
}

// Download is a file of a snapshot on its way to a browser. Close it: it
// holds one of the few download slots.
type Download struct {
	*os.File
	Name    string
	Size    int64
	ModTime time.Time
	release func()
}

// Close closes the file and frees its slot.
func (d *Download) Close() error {
	err := d.File.Close()
	d.release()
	return err
}

// OpenFile restores the file at p of the snapshot into a fresh folder under
// dir, opens it and removes the folder at once: the open file lives on
// until it is closed. At most two run at once, and each only when the disk
// keeps room for the plug beside it.
func (r *Repo) OpenFile(ctx context.Context, snap data.Snapshot, p, dir string) (*Download, error) {
	p = path.Clean("/" + p)
	n, err := r.Lookup(ctx, snap, p)
	if err != nil {
		return nil, err
	}
	if n.Type != data.TypeFile {
		return nil, fmt.Errorf("%s: %w: restore a folder to a path instead", p, ErrNotFile)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	select {
	case r.downloads <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	release := sync.OnceFunc(func() { <-r.downloads })
	d, err := r.download(ctx, snap, p, n.Size, dir)
	if err != nil {
		release()
		return nil, err
	}
	d.release = release
	return d, nil
}

func (r *Repo) download(ctx context.Context, snap data.Snapshot, p string, size int64, dir string) (*Download, error) {
	var fsst unix.Statfs_t
	if unix.Statfs(dir, &fsst) == nil {
		if free := int64(fsst.Bavail) * int64(fsst.Bsize); free < size+downloadHeadroom {
			return nil, fmt.Errorf("%w: %s is %s and the disk has %s free: restore it to a path on another disk instead",
				ErrNoRoom, p, humanize.IBytes(uint64(max(size, 0))), humanize.IBytes(uint64(max(free, 0))))
		}
	}
	tmp, err := os.MkdirTemp(dir, "dl-")
	if err != nil {
		return nil, err
	}
	// The file opened below stays readable once its name is gone. Removing
	// is best-effort: a leftover is only a folder of a download.
	defer func() { _ = os.RemoveAll(tmp) }()
	if _, err := r.Restore(ctx, snap, tmp, restorer.Options{Path: p}); err != nil {
		return nil, fmt.Errorf("fetch %s from snapshot %s: %w", p, snap.ID.Short(), err)
	}
	f, err := os.Open(filepath.Join(tmp, filepath.FromSlash(p)))
	if err != nil {
		return nil, fmt.Errorf("fetch %s from snapshot %s: %w", p, snap.ID.Short(), err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s: %w: it changed into a %s", p, ErrNotFile, fi.Mode().Type())
	}
	if err != nil {
		_ = f.Close() // opened to read only: closing it loses nothing
		return nil, err
	}
	return &Download{File: f, Name: path.Base(p), Size: fi.Size(), ModTime: fi.ModTime()}, nil
}
