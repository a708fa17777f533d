package restorer

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
	"syscall"
	"time"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"

	"github.com/plug-net/plug/chunker"
	"github.com/plug-net/plug/store/catalog"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/fetch"
	"github.com/plug-net/plug/store/pack"
	"github.com/plug-net/plug/store/seal"
)

// Options tune a restore.
type Options struct {
	// Path restores only this original absolute path of the snapshot (a
	// file or a directory); "" restores everything.
	Path string
	// Overwrite replaces files that exist at the destination. Without it a
	// restore that would replace a file writes nothing and says which.
	Overwrite bool
	// Progress, if set, is called about twice a second and at the end.
	Progress func(Progress)
}

// Progress is what a running restore has done.
type Progress struct {
	Files      int64 `json:"files"`
	FilesTotal int64 `json:"files_total"`
	Bytes      int64 `json:"bytes"`
	BytesTotal int64 `json:"bytes_total"`
}

// Stats is what a restore did.
type Stats struct {
	Files    int64 `json:"files"`
	Dirs     int64 `json:"dirs"`
	Symlinks int64 `json:"symlinks"`
	Bytes    int64 `json:"bytes"`
	// Skipped counts the files and links already there, whole, from an
	// earlier run of the same restore (cut short).
	Skipped   int64            `json:"skipped,omitempty"`
	BadShards []fetch.BadShard `json:"bad_shards,omitempty"`
}

// ErrExists is wrapped when a restore would replace files.
var ErrExists = errors.New("files exist at the destination")

// ErrNoPath is wrapped when the path asked for is not in the snapshot.
var ErrNoPath = errors.New("not in the snapshot")

// Trees reads a snapshot's trees.
type Trees interface {
	LoadTree(ctx context.Context, ids []data.ID) (*data.Tree, error)
}

// Index says where chunks and packs are: the catalog.
type Index interface {
	Chunk(id data.ID) (catalog.ChunkRef, bool, error)
	Pack(id data.ID) (catalog.PackRecord, bool, error)
}

// Packs fetches packs from the friends: a fetch.Fetcher.
type Packs interface {
	Fetch(ctx context.Context, rec catalog.PackRecord) ([]byte, []pack.Entry, error)
}

// Config is what a restore reads from.
type Config struct {
	Trees Trees
	Index Index
	Packs Packs
	Keyer *chunker.IDKeyer
}

// packsAtOnce is how many packs are fetched at once.
const packsAtOnce = 3

// item is one entry to restore.
type item struct {
	orig    string // its path in the snapshot
	dest    string // where it goes
	node    data.Node
	tmp     string
	left    atomic.Int64 // chunks still to write
	mu      sync.Mutex   // serializes creation, writes and finalization
	created bool
	done    bool
	ino     fileID // of the temporary file made, checked at every open
}

// fileID tells one file from any other on the machine.
type fileID struct{ dev, ino uint64 }

// use is one place a chunk goes: a file and an offset in it.
type use struct {
	item   *item
	offset int64
	id     data.ID
}

// plan is what a restore will do.
type plan struct {
	cfg         Config
	opt         Options
	dir, base   string
	dirs, files []*item
	links       []*item
	uses        map[data.ID][]use // by pack
	packs       []data.ID         // in the order files need them
	total       Progress
	skipped     int64        // already there from an earlier run
	doneFiles   atomic.Int64 // files done
	doneBytes   atomic.Int64 // bytes written
}

// Restore writes snapshot snap (or its opt.Path) under dir, each path at
// its absolute original place (DIR/home/ann/photos for /home/ann/photos).
// Files are written whole to temporary names and renamed when complete, so
// a failed restore leaves no partial or garbage file; packs that cannot be
// rebuilt (fewer than k intact shards) are named in the error with the
// files they cost.
func Restore(ctx context.Context, cfg Config, snap data.Snapshot, dir string, opt Options) (Stats, error) {
	p, err := makePlan(ctx, cfg, snap, dir, opt)
	if err != nil {
		return Stats{}, err
	}
	if err := p.checkClashes(); err != nil {
		return Stats{}, err
	}
	stop := p.reportLoop()
	defer stop()
	st, err := p.write(ctx)
	if err != nil {
		return st, err
	}
	return st, p.finish(&st)
}

// makePlan lists every directory, file and symlink to restore, and where
// each chunk goes.
func makePlan(ctx context.Context, cfg Config, snap data.Snapshot, dir string, opt Options) (*plan, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	p := &plan{cfg: cfg, opt: opt, dir: dir, uses: map[data.ID][]use{}}
	sel, base, err := p.selection(ctx, snap)
	if err != nil {
		return nil, err
	}
	p.base = base
	if err := p.walk(ctx, base, sel); err != nil {
		return nil, err
	}
	if len(p.dirs) > 0 && base == "/" {
		p.dirs = p.dirs[1:] // the destination itself is not restored over
	}
	// A restore run again after it was cut short keeps what it finished:
	// a file is renamed to its name only whole, with its time set last.
	if !opt.Overwrite {
		p.files = slices.DeleteFunc(p.files, func(it *item) bool { return p.restoredAlready(it) })
		p.links = slices.DeleteFunc(p.links, func(it *item) bool { return p.restoredAlready(it) })
	}
	for _, it := range p.files {
		if err := p.placeChunks(it); err != nil {
			return nil, err
		}
		it.tmp = tempName(it.dest)
	}
	return p, nil
}

// selection finds the node at opt.Path (the whole snapshot when empty).
func (p *plan) selection(ctx context.Context, snap data.Snapshot) (data.Node, string, error) {
	sel := data.Node{Type: data.TypeDir, Subtree: snap.Tree, Mode: 0o755}
	if p.opt.Path == "" || p.opt.Path == "/" {
		return sel, "/", nil
	}
	t, err := p.cfg.Trees.LoadTree(ctx, snap.Tree)
	if err != nil {
		return sel, "", fmt.Errorf("read snapshot %s: %w", snap.ID.Short(), err)
	}
	path := filepath.Clean("/" + p.opt.Path)
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i, name := range parts {
		n := t.Find(name)
		if n == nil {
			return sel, "", fmt.Errorf("%s: %w %s (it has %s)", path, ErrNoPath, snap.ID.Short(), strings.Join(snap.Paths, ", "))
		}
		if i < len(parts)-1 {
			if n.Type != data.TypeDir {
				return sel, "", fmt.Errorf("%s: %w %s", path, ErrNoPath, snap.ID.Short())
			}
			if t, err = p.cfg.Trees.LoadTree(ctx, n.Subtree); err != nil {
				return sel, "", err
			}
		}
		sel = *n
	}
	return sel, path, nil
}

// walk adds n at path, and under it everything its trees hold.
func (p *plan) walk(ctx context.Context, path string, n data.Node) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	it := &item{orig: path, dest: filepath.Join(p.dir, path), node: n}
	switch n.Type {
	case data.TypeDir:
		p.dirs = append(p.dirs, it)
		t, err := p.cfg.Trees.LoadTree(ctx, n.Subtree)
		if err != nil {
			return fmt.Errorf("read directory %s: %w", path, err)
		}
		for _, c := range t.Nodes {
			if err := p.walk(ctx, filepath.Join(path, c.Name), c); err != nil {
				return err
			}
		}
	case data.TypeFile:
		p.files = append(p.files, it)
	case data.TypeSymlink:
		p.links = append(p.links, it)
	}
	return nil
}

// restoredAlready reports whether it is at its place as a restore leaves
// it: a file of its size, mode and time to the nanosecond (set only once it
// was whole), or a link to its target.
func (p *plan) restoredAlready(it *item) bool {
	fi, err := os.Lstat(it.dest)
	if err != nil {
		return false
	}
	ok := false
	switch it.node.Type {
	case data.TypeFile:
		ok = fi.Mode().IsRegular() && fi.Size() == it.node.Size && fi.ModTime().UnixNano() == it.node.ModTime &&
			fi.Mode().Perm() == it.node.FileMode().Perm()
	case data.TypeSymlink:
		target, err := os.Readlink(it.dest)
		ok = err == nil && fi.Mode()&fs.ModeSymlink != 0 && target == it.node.Target
	}
	if ok {
		p.skipped++
	}
	return ok
}

// placeChunks records where each chunk of a file goes.
func (p *plan) placeChunks(it *item) error {
	var off int64
	for _, id := range it.node.Content {
		ref, ok, err := p.cfg.Index.Chunk(id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: %s of %s", catalog.ErrUnknownChunk, id.Short(), it.dest)
		}
		if _, seen := p.uses[ref.Pack]; !seen {
			p.packs = append(p.packs, ref.Pack)
		}
		p.uses[ref.Pack] = append(p.uses[ref.Pack], use{item: it, offset: off, id: id})
		off += int64(ref.RawLength)
	}
	it.node.Size = off
	it.left.Store(int64(len(it.node.Content)))
	p.total.FilesTotal++
	p.total.BytesTotal += off
	return nil
}

// checkClashes refuses to replace a file silently.
func (p *plan) checkClashes() error {
	var clash []string
	for _, it := range slices.Concat(p.files, p.links) {
		if _, err := os.Lstat(it.dest); err == nil && !p.opt.Overwrite {
			clash = append(clash, it.dest)
		}
	}
	var dirClash []string
	for _, it := range p.dirs {
		if fi, err := os.Lstat(it.dest); err == nil && !fi.IsDir() {
			dirClash = append(dirClash, it.dest)
		}
	}
	if len(dirClash) > 0 {
		// Never replaced, --overwrite or not: a link there would take the
		// restore elsewhere.
		show := dirClash[:min(len(dirClash), 5)]
		return fmt.Errorf("%w: %d folders of the snapshot are files or links at the destination, for example %s; move them away, or restore into an empty directory",
			ErrExists, len(dirClash), strings.Join(show, ", "))
	}
	if len(clash) == 0 {
		return nil
	}
	show := clash[:min(len(clash), 5)]
	return fmt.Errorf("%w: %d files already exist, for example %s; restore into an empty directory, or add --overwrite to replace them",
		ErrExists, len(clash), strings.Join(show, ", "))
}

// reportLoop calls the progress function twice a second until the
// returned stop, which reports once more.
func (p *plan) reportLoop() (stop func()) {
	report := func() {
		if p.opt.Progress != nil {
			p.opt.Progress(Progress{Files: p.doneFiles.Load(), FilesTotal: p.total.FilesTotal, Bytes: p.doneBytes.Load(), BytesTotal: p.total.BytesTotal})
		}
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			report()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-stopped; report() }
}

// write makes the directories (owner-writable until the end), then the
// files, pack by pack, a few packs at once.
func (p *plan) write(ctx context.Context) (Stats, error) {
	var st Stats
	for _, it := range p.dirs {
		if err := os.MkdirAll(it.dest, 0o700); err != nil {
			return st, fmt.Errorf("create %s: %w", it.dest, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(p.dir, filepath.Dir(p.base)), 0o755); err != nil {
		return st, err
	}
	emptyErr := make(chan error, 1)
	go func() { emptyErr <- p.writeEmpty() }()
	var badMu sync.Mutex
	var bads []fetch.BadShard
	fctx := fetch.WithBadShards(ctx, func(b fetch.BadShard) {
		badMu.Lock()
		defer badMu.Unlock()
		bads = append(bads, b)
	})
	lost, writeErr := p.fetchAndWrite(fctx)
	if err := <-emptyErr; err != nil && writeErr == nil {
		writeErr = err
	}
	badMu.Lock()
	st.BadShards = slices.Clone(bads)
	badMu.Unlock()
	if err := ctx.Err(); err != nil {
		p.cleanup()
		return st, err
	}
	if writeErr != nil {
		// The destination, not the friends: said once, what to do with it.
		p.cleanup()
		what := "could not write the restored files"
		if errors.Is(writeErr, syscall.ENOSPC) || errors.Is(writeErr, syscall.EDQUOT) {
			what = "the disk of the destination is full"
		}
		return st, fmt.Errorf("restore to %s: %s: %w; free space there or restore elsewhere (nothing partial was left under a file's name)", p.dir, what, writeErr)
	}
	if len(lost) > 0 {
		return st, p.failed(lost)
	}
	return st, nil
}

// writeEmpty makes the files without content; the others are created when
// their first chunk arrives.
func (p *plan) writeEmpty() error {
	for _, it := range p.files {
		if len(it.node.Content) > 0 {
			continue
		}
		it.mu.Lock()
		err := it.create()
		if err == nil {
			err = it.finish()
		}
		it.mu.Unlock()
		if err != nil {
			return err
		}
		p.doneFiles.Add(1)
	}
	return nil
}

// destError is an error writing at the destination, not of the data.
type destError struct{ err error }

func (e destError) Error() string { return e.err.Error() }
func (e destError) Unwrap() error { return e.err }

// fetchAndWrite fetches every pack the files need and writes its chunks
// where they go; it returns what could not be fetched, and the first error
// writing at the destination (which stops it: a full disk stays full).
func (p *plan) fetchAndWrite(ctx context.Context) (lost []error, writeErr error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, packsAtOnce)
	)
	fail := func(err error) {
		mu.Lock()
		lost = append(lost, err)
		mu.Unlock()
	}
	for _, pid := range p.packs {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := p.fetchPack(ctx, pid, p.uses[pid], 0)
			var de destError
			switch {
			case err == nil:
			case errors.As(err, &de):
				mu.Lock()
				if writeErr == nil {
					writeErr = de.err
				}
				mu.Unlock()
				cancel()
			case ctx.Err() == nil:
				fail(err)
			}
		}()
	}
	wg.Wait()
	return lost, writeErr
}

// maxMoves bounds how many times the chunks of a pack are followed to the
// pack that replaced it during one restore.
const maxMoves = 3

// fetchPack fetches pack pid and writes its chunks where uses say. The
// plug may replace a pack while a restore runs (re-coding, repair: a new
// pack with the same chunks, the old one dropped and later released): when
// pid is gone from the catalog, the chunks are looked up again and fetched
// from the packs that hold them now.
func (p *plan) fetchPack(ctx context.Context, pid data.ID, uses []use, moves int) error {
	rec, ok, err := p.cfg.Index.Pack(pid)
	if err != nil {
		return err
	}
	if !ok {
		return p.followChunks(ctx, pid, uses, moves, nil)
	}
	plain, entries, err := p.cfg.Packs.Fetch(ctx, rec)
	if err != nil {
		if ctx.Err() == nil {
			if _, still, lerr := p.cfg.Index.Pack(pid); lerr == nil && !still {
				return p.followChunks(ctx, pid, uses, moves, err) // replaced while it was fetched
			}
		}
		return err
	}
	err = p.writeUses(plain, entries, uses)
	fetch.Release(plain) // written: the next pack may use its memory
	return err           // a destError, or the pack's content
}

// followChunks fetches the chunks of uses from the packs the catalog names
// for them now (pid, which held them, is gone); why is the error that
// sent it there, if any.
func (p *plan) followChunks(ctx context.Context, pid data.ID, uses []use, moves int, why error) error {
	if moves >= maxMoves {
		return fmt.Errorf("pack %s is not in the catalog (replaced %d times during the restore)", pid.Short(), moves)
	}
	byPack := map[data.ID][]use{}
	var order []data.ID
	for _, u := range uses {
		ref, ok, err := p.cfg.Index.Chunk(u.id)
		if err != nil {
			return err
		}
		if !ok || ref.Pack == pid {
			if why != nil {
				return why
			}
			return fmt.Errorf("pack %s is not in the catalog, nor chunk %s anywhere else", pid.Short(), u.id.Short())
		}
		if _, seen := byPack[ref.Pack]; !seen {
			order = append(order, ref.Pack)
		}
		byPack[ref.Pack] = append(byPack[ref.Pack], u)
	}
	for _, np := range order {
		if err := p.fetchPack(ctx, np, byPack[np], moves+1); err != nil {
			return err
		}
	}
	return nil
}

// failed removes what was written and says which files were lost.
func (p *plan) failed(lost []error) error {
	var missing []string
	for _, it := range p.files {
		if !it.done {
			missing = append(missing, it.orig)
		}
	}
	p.cleanup()
	show := missing[:min(len(missing), 10)]
	more := ""
	if len(missing) > len(show) {
		more = fmt.Sprintf(" and %d more", len(missing)-len(show))
	}
	return fmt.Errorf("%w: %d files of the snapshot could not be restored (%s%s); no partial file was written: %w",
		seal.ErrNotEnoughShards, len(missing), strings.Join(show, ", "), more, errors.Join(lost...))
}

// cleanup removes the temporary files of files not finished. It runs once
// the restore has failed, which is what the caller reports: removing is
// best-effort, and a leftover is only a hidden ".plug-restore-" file.
func (p *plan) cleanup() {
	for _, it := range p.files {
		it.mu.Lock()
		if it.created && !it.done {
			_ = os.Remove(it.tmp)
		}
		it.mu.Unlock()
	}
}

// finish makes the symlinks, then gives directories their modes and times,
// deepest first.
func (p *plan) finish(st *Stats) error {
	var errs []error
	for _, it := range p.links {
		if p.opt.Overwrite {
			if err := os.Remove(it.dest); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("restore symlink %s: cannot replace what is there: %w", it.dest, err)
			}
		}
		if err := os.Symlink(it.node.Target, it.dest); err != nil {
			return fmt.Errorf("restore symlink %s: %w", it.dest, err)
		}
		ts := []unix.Timespec{unix.NsecToTimespec(it.node.ModTime), unix.NsecToTimespec(it.node.ModTime)}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, it.dest, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			errs = append(errs, fmt.Errorf("set the time of %s: %w", it.dest, err))
		}
		st.Symlinks++
	}
	for i := len(p.dirs) - 1; i >= 0; i-- {
		it := p.dirs[i]
		if err := os.Chmod(it.dest, it.node.FileMode().Perm()|fs.FileMode(it.node.Mode)&(fs.ModeSetgid|fs.ModeSticky)); err != nil {
			errs = append(errs, fmt.Errorf("set the mode of %s: %w", it.dest, err))
		}
		t := time.Unix(0, it.node.ModTime)
		if err := os.Chtimes(it.dest, t, t); err != nil {
			errs = append(errs, fmt.Errorf("set the time of %s: %w", it.dest, err))
		}
		st.Dirs++
	}
	st.Files = int64(len(p.files))
	st.Bytes = p.total.BytesTotal
	st.Skipped = p.skipped
	if len(errs) > 0 {
		return fmt.Errorf("restored every file, but could not give some their modes or times: %w", errors.Join(errs...))
	}
	return nil
}

// writeUses writes the chunks of one pack where they go.
func (p *plan) writeUses(plain []byte, entries []pack.Entry, uses []use) error {
	byID := make(map[data.ID]pack.Entry, len(entries))
	for _, e := range entries {
		byID[e.ID] = e
	}
	cache := map[data.ID][]byte{}
	for _, u := range uses {
		b, ok := cache[u.id]
		if !ok {
			e, found := byID[u.id]
			if !found {
				return fmt.Errorf("chunk %s is not in its pack", u.id.Short())
			}
			var err error
			if b, err = pack.Extract(plain, e, p.cfg.Keyer); err != nil {
				return err
			}
			cache[u.id] = b
		}
		if err := p.writeUse(u, b); err != nil {
			return err
		}
	}
	return nil
}

// writeUse writes one chunk into its file, and finishes the file when it
// was the last.
func (p *plan) writeUse(u use, b []byte) error {
	it := u.item
	it.mu.Lock()
	err := it.create()
	if err == nil {
		err = it.writeAt(b, u.offset)
	}
	it.mu.Unlock()
	if err != nil {
		return destError{fmt.Errorf("restore %s: %w", it.dest, err)}
	}
	p.doneBytes.Add(int64(len(b)))
	if it.left.Add(-1) == 0 {
		it.mu.Lock()
		err := it.finish()
		it.mu.Unlock()
		if err != nil {
			return destError{err}
		}
		p.doneFiles.Add(1)
	}
	return nil
}

// create makes the item's temporary file at its full size, its blocks
// allocated (it.mu held).
// The file is new and its own: a leftover of an earlier restore, or
// anything planted at its name (a symlink to a file outside the target),
// is removed first — never followed — and the file is made exclusively.
func (it *item) create() error {
	if it.created {
		return nil
	}
	if err := os.Remove(it.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("restore %s: clear the temporary name: %w", it.dest, err)
	}
	f, err := os.OpenFile(it.tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("restore %s: %w", it.dest, err)
	}
	it.created = true
	it.ino, err = idOf(f)
	if err == nil && it.node.Size > 0 {
		// The blocks are reserved at once, as restic does: the writes
		// then fill allocated space (cheaper than a sparse file's), and a
		// destination without room says so before anything is written.
		err = unix.Fallocate(int(f.Fd()), 0, 0, it.node.Size)
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
			err = f.Truncate(it.node.Size) // a file system without fallocate
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("restore %s: %w", it.dest, err)
	}
	return nil
}

// open opens the item's temporary file again for writing, refusing
// anything but the very file create made (it.mu held).
func (it *item) open() (*os.File, error) {
	f, err := os.OpenFile(it.tmp, os.O_WRONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	id, err := idOf(f)
	if err == nil && id != it.ino {
		err = fmt.Errorf("%s was replaced during the restore: refusing to write through it", it.tmp)
	}
	if err != nil {
		_ = f.Close() // not written to
		return nil, err
	}
	return f, nil
}

func idOf(f *os.File) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fileID{}, err
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino}, nil
}

// finish gives a complete file its mode and times, through its open file,
// and its real name (it.mu held).
func (it *item) finish() error {
	f, err := it.open()
	if err != nil {
		return fmt.Errorf("restore %s: %w", it.dest, err)
	}
	mode := it.node.FileMode()
	err = f.Chmod(mode.Perm() | mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
	if err == nil {
		// By name but never through a link, while the file is open and
		// known to be ours: times to the nanosecond, which futimes lacks.
		ts := unix.NsecToTimespec(it.node.ModTime)
		err = unix.UtimesNanoAt(unix.AT_FDCWD, it.tmp, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("restore %s: %w", it.dest, err)
	}
	if err := os.Rename(it.tmp, it.dest); err != nil {
		return fmt.Errorf("restore %s: %w", it.dest, err)
	}
	it.done = true
	return nil
}

// writeAt writes b at off of the item's temporary file (it.mu held).
func (it *item) writeAt(b []byte, off int64) error {
	f, err := it.open()
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, off)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
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
