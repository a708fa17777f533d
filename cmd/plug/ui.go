package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plug-net/plug/httpui"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/restorer"
)

// ---- the daemon's side of the web UI's pages (httpui.UIBackend) ----

// passwordFile keeps the bcrypt hash of the web UI's password.
func (d dataDir) passwordFile() string { return filepath.Join(string(d), "ui.password") }

// downloads holds files of snapshots on their way to a browser.
func (d dataDir) downloads() string { return filepath.Join(string(d), "downloads") }

// Health implements httpui.UIBackend.
func (a *app) Health(ctx context.Context) (httpui.Health, error) {
	h, err := a.repo.Health()
	return httpui.Health{CanLose: h.CanLose, Target: h.Target, Packs: h.Packs, LostPacks: h.LostPacks}, err
}

// snapshotInfo finds a snapshot for the pages.
func (a *app) snapshotInfo(ref string) (data.Snapshot, httpui.SnapshotInfo, error) {
	snap, err := a.repo.FindSnapshot(ref)
	if err != nil {
		return snap, httpui.SnapshotInfo{}, httpui.StatusError(http.StatusNotFound, err)
	}
	if snap.StateOnly() {
		return snap, httpui.SnapshotInfo{}, httpui.StatusError(http.StatusNotFound, fmt.Errorf("snapshot %s holds only the plug's own state", snap.ID.Short()))
	}
	return snap, httpui.SnapshotInfo{ID: snap.ID.String(), Time: snap.Time, Paths: snap.Paths, Files: snap.Files, Bytes: snap.Bytes, NewBytes: snap.NewBytes, Host: snap.Host}, nil
}

// lookup walks from the snapshot's root to the node at p ("/" is the root).
func (a *app) lookup(ctx context.Context, snap data.Snapshot, p string) (data.Node, error) {
	n := data.Node{Type: data.TypeDir, Subtree: snap.Tree}
	if p == "/" {
		return n, nil
	}
	for name := range strings.SplitSeq(strings.TrimPrefix(p, "/"), "/") {
		if n.Type != data.TypeDir {
			return n, httpui.StatusError(http.StatusNotFound, fmt.Errorf("%s is not in snapshot %s", p, snap.ID.Short()))
		}
		t, err := a.repo.LoadTree(ctx, n.Subtree)
		if err != nil {
			return n, fmt.Errorf("read snapshot %s: %w", snap.ID.Short(), err)
		}
		c := t.Find(name)
		if c == nil {
			return n, httpui.StatusError(http.StatusNotFound, fmt.Errorf("%s is not in snapshot %s", p, snap.ID.Short()))
		}
		n = *c
	}
	return n, nil
}

// SnapshotTree implements httpui.UIBackend.
func (a *app) SnapshotTree(ctx context.Context, ref, p string) (httpui.SnapshotDir, error) {
	p = path.Clean("/" + p)
	snap, info, err := a.snapshotInfo(ref)
	if err != nil {
		return httpui.SnapshotDir{}, err
	}
	n, err := a.lookup(ctx, snap, p)
	if err != nil {
		return httpui.SnapshotDir{}, err
	}
	if n.Type != data.TypeDir {
		return httpui.SnapshotDir{}, httpui.StatusError(http.StatusBadRequest, fmt.Errorf("%s is a file, not a folder", p))
	}
	t, err := a.repo.LoadTree(ctx, n.Subtree)
	if err != nil {
		return httpui.SnapshotDir{}, fmt.Errorf("read snapshot %s: %w", snap.ID.Short(), err)
	}
	d := httpui.SnapshotDir{Snapshot: info, Path: p, Entries: make([]httpui.TreeEntry, 0, len(t.Nodes))}
	for _, c := range t.Nodes {
		name := c.Name
		if name == "" && len(c.RawName) > 0 {
			name = strings.ToValidUTF8(string(c.RawName), "\uFFFD")
		}
		target := c.Target
		if target == "" && len(c.RawTarget) > 0 {
			target = strings.ToValidUTF8(string(c.RawTarget), "\uFFFD")
		}
		d.Entries = append(d.Entries, httpui.TreeEntry{
			Name: name, Path: path.Join(p, name), Type: c.Type, Size: c.Size,
			ModTime: time.Unix(0, c.ModTime), Target: target,
		})
	}
	// Folders first, then by name.
	slices.SortStableFunc(d.Entries, func(x, y httpui.TreeEntry) int {
		return cmp.Compare(boolRank(x.Type != data.TypeDir), boolRank(y.Type != data.TypeDir))
	})
	return d, nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// OpenSnapshotFile implements httpui.UIBackend: the file is restored into
// a fresh folder under the data directory, opened, and the folder removed
// at once; the open file lives on until it is closed.
func (a *app) OpenSnapshotFile(ctx context.Context, ref, p string) (*httpui.SnapshotFile, error) {
	p = path.Clean("/" + p)
	snap, _, err := a.snapshotInfo(ref)
	if err != nil {
		return nil, err
	}
	n, err := a.lookup(ctx, snap, p)
	if err != nil {
		return nil, err
	}
	if n.Type != data.TypeFile {
		return nil, httpui.StatusError(http.StatusBadRequest, fmt.Errorf("%s is not a file: restore a folder to a path instead", p))
	}
	if err := os.MkdirAll(a.cfg.dir.downloads(), 0o700); err != nil {
		return nil, err
	}
	// At most two downloads at once, each only when the disk has room for
	// it beside what the plug needs.
	select {
	case downloadSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	release := sync.OnceFunc(func() { <-downloadSlots })
	ok := false
	defer func() {
		if !ok {
			release()
		}
	}()
	var fsst unix.Statfs_t
	if unix.Statfs(a.cfg.dir.downloads(), &fsst) == nil {
		if free := int64(fsst.Bavail) * int64(fsst.Bsize); free < n.Size+downloadHeadroom {
			return nil, httpui.StatusError(http.StatusInsufficientStorage,
				fmt.Errorf("%s is %s and the plug's disk has %s free: restore it to a path on another disk instead", p, humanSize(n.Size), humanSize(free)))
		}
	}
	tmp, err := os.MkdirTemp(a.cfg.dir.downloads(), "dl-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if _, err := a.repo.Restore(ctx, snap, tmp, restorer.Options{Path: p}); err != nil {
		return nil, fmt.Errorf("fetch %s from snapshot %s: %w", p, snap.ID.Short(), err)
	}
	f, err := os.Open(filepath.Join(tmp, filepath.FromSlash(p)))
	if err != nil {
		return nil, fmt.Errorf("fetch %s from snapshot %s: %w", p, snap.ID.Short(), err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, errors.New("the restored file is not a regular file")
	}
	ok = true
	return &httpui.SnapshotFile{ReadCloser: releaseOnClose{f, release}, Name: path.Base(p), Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// downloadSlots bounds the downloads restored at once; downloadHeadroom is
// the free space a download leaves to the plug.
var downloadSlots = make(chan struct{}, 2)

const downloadHeadroom = 256 << 20

// releaseOnClose frees a download slot when the file is closed.
type releaseOnClose struct {
	*os.File
	release func()
}

func (r releaseOnClose) Close() error {
	err := r.File.Close()
	r.release()
	return err
}
