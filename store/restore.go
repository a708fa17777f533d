package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"
)

// RestoreOptions tune a restore.
type RestoreOptions struct {
	// Path restores only this original absolute path of the snapshot (a
	// file or a directory); "" restores everything.
	Path string
	// Overwrite replaces files that exist at the destination. Without it a
	// restore that would replace a file writes nothing and says which.
	Overwrite bool
	// Progress, if set, is called about twice a second and at the end.
	Progress func(RestoreProgress)
}

// RestoreProgress is what a running restore has done.
type RestoreProgress struct {
	Files      int64 `json:"files"`
	FilesTotal int64 `json:"files_total"`
	Bytes      int64 `json:"bytes"`
	BytesTotal int64 `json:"bytes_total"`
}

// RestoreStats is what a restore did.
type RestoreStats struct {
	Files     int64      `json:"files"`
	Dirs      int64      `json:"dirs"`
	Symlinks  int64      `json:"symlinks"`
	Bytes     int64      `json:"bytes"`
	BadShards []BadShard `json:"bad_shards,omitempty"`
}

// ErrExists is wrapped when a restore would replace files.
var ErrExists = errors.New("files exist at the destination")

// restoreItem is one entry to restore.
type restoreItem struct {
	orig    string // its path in the snapshot
	dest    string // where it goes
	node    Node
	tmp     string
	left    atomic.Int64 // chunks still to write
	mu      sync.Mutex   // serializes creation, writes and finalization
	created bool
	done    bool
}

// create makes the item's temporary file at its full size (it.mu held).
func (it *restoreItem) create() error {
	if it.created {
		return nil
	}
	f, err := os.OpenFile(it.tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("restore %s: %w", it.dest, err)
	}
	it.created = true
	err = f.Truncate(it.node.Size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("restore %s: %w", it.dest, err)
	}
	return nil
}

// chunkUse is one place a chunk goes: a file and an offset in it.
type chunkUse struct {
	item   *restoreItem
	offset int64
	id     ID
}

// Restore writes snapshot snap (or its opt.Path) under dir, each path at
// its absolute original place (DIR/home/ann/photos for /home/ann/photos).
// Files are written whole to temporary names and renamed when complete, so
// a failed restore leaves no partial or garbage file; packs that cannot be
// rebuilt (fewer than k intact shards) are named in the error with the
// files they cost.
func (r *Repo) Restore(ctx context.Context, snap Snapshot, dir string, opt RestoreOptions) (RestoreStats, error) {
	var st RestoreStats
	dir, err := filepath.Abs(dir)
	if err != nil {
		return st, err
	}
	root, err := r.LoadTree(ctx, snap.Tree)
	if err != nil {
		return st, fmt.Errorf("read snapshot %s: %w", snap.ID.Short(), err)
	}
	sel := Node{Type: TypeDir, Subtree: snap.Tree, Mode: 0o755}
	base := "/"
	if opt.Path != "" && opt.Path != "/" {
		p := filepath.Clean("/" + opt.Path)
		t := root
		parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
		for i, name := range parts {
			n := t.Find(name)
			if n == nil {
				return st, fmt.Errorf("%s is not in snapshot %s (it has %s)", p, snap.ID.Short(), strings.Join(snap.Paths, ", "))
			}
			if i < len(parts)-1 {
				if n.Type != TypeDir {
					return st, fmt.Errorf("%s is not in snapshot %s", p, snap.ID.Short())
				}
				if t, err = r.LoadTree(ctx, n.Subtree); err != nil {
					return st, err
				}
			}
			sel = *n
		}
		base = p
	}

	// Plan: every directory, file and symlink, and where each chunk goes.
	var dirs, files, links []*restoreItem
	var walk func(path string, n Node) error
	walk = func(path string, n Node) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		it := &restoreItem{orig: path, dest: filepath.Join(dir, path), node: n}
		switch n.Type {
		case TypeDir:
			dirs = append(dirs, it)
			t, err := r.LoadTree(ctx, n.Subtree)
			if err != nil {
				return fmt.Errorf("read directory %s: %w", path, err)
			}
			for _, c := range t.Nodes {
				if err := walk(filepath.Join(path, c.Name), c); err != nil {
					return err
				}
			}
		case TypeFile:
			files = append(files, it)
		case TypeSymlink:
			links = append(links, it)
		}
		return nil
	}
	if err := walk(base, sel); err != nil {
		return st, err
	}
	if len(dirs) > 0 && base == "/" {
		dirs = dirs[1:] // the destination itself is not restored over
	}

	// Never replace a file silently.
	var clash []string
	for _, it := range slices.Concat(files, links) {
		if _, err := os.Lstat(it.dest); err == nil {
			if opt.Overwrite {
				continue
			}
			clash = append(clash, it.dest)
		}
	}
	for _, it := range dirs {
		if fi, err := os.Lstat(it.dest); err == nil && !fi.IsDir() {
			clash = append(clash, it.dest)
		}
	}
	if len(clash) > 0 {
		show := clash[:min(len(clash), 5)]
		return st, fmt.Errorf("%w: %d files already exist, for example %s; restore into an empty directory, or add --overwrite to replace them",
			ErrExists, len(clash), strings.Join(show, ", "))
	}

	uses := map[ID][]chunkUse{} // by pack
	var packOrder []ID
	var total RestoreProgress
	for _, it := range files {
		var off int64
		for _, id := range it.node.Content {
			ref, ok, err := r.cat.Chunk(id)
			if err != nil {
				return st, err
			}
			if !ok {
				return st, fmt.Errorf("%w: %s of %s", ErrUnknownChunk, id.Short(), it.dest)
			}
			if _, seen := uses[ref.Pack]; !seen {
				packOrder = append(packOrder, ref.Pack)
			}
			uses[ref.Pack] = append(uses[ref.Pack], chunkUse{item: it, offset: off, id: id})
			off += int64(ref.RawLength)
		}
		it.node.Size = off
		it.left.Store(int64(len(it.node.Content)))
		total.FilesTotal++
		total.BytesTotal += off
	}

	// Write: directories first (owner-writable until the end), then files
	// pack by pack, then symlinks, then directory modes and times.
	for _, it := range dirs {
		if err := os.MkdirAll(it.dest, 0o700); err != nil {
			return st, fmt.Errorf("create %s: %w", it.dest, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(base)), 0o755); err != nil {
		return st, err
	}
	var prog struct{ files, bytes atomic.Int64 }
	report := func() {
		if opt.Progress != nil {
			opt.Progress(RestoreProgress{Files: prog.files.Load(), FilesTotal: total.FilesTotal, Bytes: prog.bytes.Load(), BytesTotal: total.BytesTotal})
		}
	}
	stopProg := make(chan struct{})
	progDone := make(chan struct{})
	go func() {
		defer close(progDone)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			report()
			select {
			case <-stopProg:
				return
			case <-t.C:
			}
		}
	}()
	defer func() { close(stopProg); <-progDone; report() }()

	cleanup := func() {
		for _, it := range files {
			it.mu.Lock()
			if it.created && !it.done {
				os.Remove(it.tmp)
			}
			it.mu.Unlock()
		}
	}
	for _, it := range files {
		it.tmp = tempName(it.dest)
	}
	// Files without content are made beside the downloads; the others are
	// created when their first chunk arrives.
	emptyErr := make(chan error, 1)
	go func() {
		for _, it := range files {
			if len(it.node.Content) > 0 {
				continue
			}
			it.mu.Lock()
			err := it.create()
			if err == nil {
				err = finishFile(it)
			}
			it.mu.Unlock()
			if err != nil {
				emptyErr <- err
				return
			}
			prog.files.Add(1)
		}
		emptyErr <- nil
	}()

	var (
		lostMu sync.Mutex
		lost   []error
		wg     sync.WaitGroup
		sem    = make(chan struct{}, 3)
	)
	for _, pid := range packOrder {
		if ctx.Err() != nil {
			break
		}
		rec, ok, err := r.cat.Pack(pid)
		if err != nil || !ok {
			lostMu.Lock()
			lost = append(lost, fmt.Errorf("pack %s is not in the catalog", pid.Short()))
			lostMu.Unlock()
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			plain, entries, err := r.fetcher.Fetch(ctx, rec)
			if err == nil {
				err = writeUses(plain, entries, uses[pid], r, &prog.files, &prog.bytes)
			}
			if err != nil {
				lostMu.Lock()
				lost = append(lost, err)
				lostMu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := <-emptyErr; err != nil {
		lost = append(lost, err)
	}
	st.BadShards = r.fetcher.BadShards()
	if err := ctx.Err(); err != nil {
		cleanup()
		return st, err
	}
	if len(lost) > 0 {
		var missing []string
		for _, it := range files {
			if !it.done {
				missing = append(missing, it.orig)
			}
		}
		cleanup()
		show := missing[:min(len(missing), 10)]
		more := ""
		if len(missing) > len(show) {
			more = fmt.Sprintf(" and %d more", len(missing)-len(show))
		}
		return st, fmt.Errorf("%w: %d files of the snapshot could not be restored (%s%s); no partial file was written: %w",
			ErrNotEnoughShards, len(missing), strings.Join(show, ", "), more, errors.Join(lost...))
	}
	for _, it := range links {
		if opt.Overwrite {
			os.Remove(it.dest)
		}
		if err := os.Symlink(it.node.Target, it.dest); err != nil {
			return st, fmt.Errorf("restore symlink %s: %w", it.dest, err)
		}
		ts := []unix.Timespec{unix.NsecToTimespec(it.node.ModTime), unix.NsecToTimespec(it.node.ModTime)}
		unix.UtimesNanoAt(unix.AT_FDCWD, it.dest, ts, unix.AT_SYMLINK_NOFOLLOW)
		st.Symlinks++
	}
	for i := len(dirs) - 1; i >= 0; i-- { // deepest first
		it := dirs[i]
		os.Chmod(it.dest, it.node.FileMode().Perm()|fs.FileMode(it.node.Mode)&(fs.ModeSetgid|fs.ModeSticky))
		t := time.Unix(0, it.node.ModTime)
		os.Chtimes(it.dest, t, t)
		st.Dirs++
	}
	st.Files = int64(len(files))
	st.Bytes = total.BytesTotal
	return st, nil
}

// writeUses writes the chunks of one pack where they go.
func writeUses(plain []byte, entries []BlobEntry, uses []chunkUse, r *Repo, files, bytes *atomic.Int64) error {
	byID := make(map[ID]BlobEntry, len(entries))
	for _, e := range entries {
		byID[e.ID] = e
	}
	cache := map[ID][]byte{}
	for _, u := range uses {
		b, ok := cache[u.id]
		if !ok {
			e, found := byID[u.id]
			if !found {
				return fmt.Errorf("chunk %s is not in its pack", u.id.Short())
			}
			var err error
			if b, err = ExtractBlob(plain, e, r.keyer); err != nil {
				return err
			}
			cache[u.id] = b
		}
		it := u.item
		it.mu.Lock()
		err := it.create()
		if err == nil {
			err = writeAt(it.tmp, b, u.offset)
		}
		it.mu.Unlock()
		if err != nil {
			return fmt.Errorf("restore %s: %w", it.dest, err)
		}
		bytes.Add(int64(len(b)))
		if it.left.Add(-1) == 0 {
			it.mu.Lock()
			err := finishFile(it)
			it.mu.Unlock()
			if err != nil {
				return err
			}
			files.Add(1)
		}
	}
	return nil
}

func writeAt(path string, b []byte, off int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, off)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// finishFile gives a complete file its mode and times and its real name.
func finishFile(it *restoreItem) error {
	mode := it.node.FileMode()
	if err := os.Chmod(it.tmp, mode.Perm()|mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return err
	}
	t := time.Unix(0, it.node.ModTime)
	if err := os.Chtimes(it.tmp, t, t); err != nil {
		return err
	}
	if err := os.Rename(it.tmp, it.dest); err != nil {
		return fmt.Errorf("restore %s: %w", it.dest, err)
	}
	it.done = true
	return nil
}

// tempName is where a file is written before it is complete: beside its
// place, with a name that cannot pass the file system's limit.
func tempName(dest string) string {
	base := filepath.Base(dest)
	if len(base) > 200 {
		h := blake3.Sum256([]byte(base))
		base = base[:180] + "-" + hex.EncodeToString(h[:8])
	}
	return filepath.Join(filepath.Dir(dest), ".plug-restore-"+base)
}

// LatestState returns the newest snapshot that carries the plug's own
// state folder; ok is false when none does.
func (r *Repo) LatestState() (Snapshot, bool, error) {
	all, err := r.Snapshots()
	if err != nil {
		return Snapshot{}, false, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if len(all[i].State) > 0 {
			return all[i], true, nil
		}
	}
	return Snapshot{}, false, nil
}

// RestoreState restores the state folder that snap carries to dest (the
// state folder of this plug, wherever the old plug kept it). What dest held
// is moved aside to dest.before-recovery; nothing is merged.
func (r *Repo) RestoreState(ctx context.Context, snap Snapshot, dest string) (RestoreStats, error) {
	if len(snap.State) == 0 {
		return RestoreStats{}, fmt.Errorf("snapshot %s carries no state", snap.ID.Short())
	}
	tmp := dest + ".restoring"
	if err := os.RemoveAll(tmp); err != nil {
		return RestoreStats{}, err
	}
	defer os.RemoveAll(tmp)
	st, err := r.Restore(ctx, Snapshot{ID: snap.ID, Tree: snap.State, Paths: []string{snap.StatePath}}, tmp, RestoreOptions{Path: snap.StatePath})
	if err != nil {
		return st, fmt.Errorf("restore the plug's own state: %w", err)
	}
	aside := dest + ".before-recovery"
	if err := os.RemoveAll(aside); err != nil {
		return st, err
	}
	if err := os.Rename(dest, aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return st, err
	}
	if err := os.Rename(filepath.Join(tmp, snap.StatePath), dest); err != nil {
		return st, fmt.Errorf("restore the plug's own state: %w", err)
	}
	return st, nil
}
