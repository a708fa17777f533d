package archiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plug-net/plug/chunker"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/packer"
)

// Progress is what a running backup has done so far.
type Progress struct {
	Phase      string        `json:"phase"` // "scan", "backup", "finish", "done"
	Files      int64         `json:"files"`
	FilesTotal int64         `json:"files_total"`
	Bytes      int64         `json:"bytes"`
	BytesTotal int64         `json:"bytes_total"`
	NewBytes   int64         `json:"new_bytes"`
	Errors     int64         `json:"errors"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	ScanDone   bool          `json:"scan_done"`
}

// Saver is where an Archiver puts blobs: the backup's packer.Writer.
type Saver interface {
	// Add stores a blob unless it is stored already; added says which.
	Add(ctx context.Context, t data.BlobType, id data.ID, blob []byte) (added bool, err error)
	Stats() packer.Stats
}

// Trees reads the trees of an earlier snapshot, to skip unchanged files,
// and keeps the trees the Archiver writes in the local tree cache.
type Trees interface {
	LoadTree(ctx context.Context, ids []data.ID) (*data.Tree, error)
	CacheTree(id data.ID, b []byte) error
}

// Index tells whether a chunk is still stored (a prune may have dropped
// what an unchanged file refers to).
type Index interface {
	HasChunk(id data.ID) (bool, error)
}

// Config configures an Archiver. Saver, Trees, Index, Keyer and Gear are
// required.
type Config struct {
	Saver Saver
	Trees Trees
	Index Index
	Keyer *chunker.IDKeyer
	Gear  *[256]uint64
	// Open opens a file to read it. Nil means OpenForBackup.
	Open func(path string) (*File, error)
	// Parallel is the number of files read at once. 0 means GOMAXPROCS, at
	// least 2.
	Parallel int
	// Progress, if set, is called about twice a second (ReportLoop) and
	// when Report is called.
	Progress func(Progress)
	// Warn, if set, is told of every file that could not be read (it is
	// skipped; the backup goes on).
	Warn func(path string, err error)
	// Logger receives what the run skips. Nil discards.
	Logger *slog.Logger
}

// New returns an Archiver for one run; start is when the backup began.
func New(cfg Config, start time.Time) *Archiver {
	if cfg.Open == nil {
		cfg.Open = OpenForBackup
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = max(runtime.GOMAXPROCS(0), 2)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Archiver{cfg: cfg, start: start}
	a.jobs = make(chan fileJob, 4*cfg.Parallel)
	a.dirs = make(chan dirJob, 256)
	return a
}

// Stats is what a run did.
type Stats struct {
	Files, Dirs, Bytes, Errors int64
	// MetaBytes is the raw size of the new tree blobs (not file data).
	MetaBytes int64
}

// Stats returns what the run has done so far.
func (a *Archiver) Stats() Stats {
	return Stats{Files: a.files.Load(), Dirs: a.dirsDone.Load(), Bytes: a.bytes.Load(), Errors: a.errors.Load(), MetaBytes: a.metaBytes.Load()}
}

// ScanDone marks the file count as final (a run that was not scanned).
func (a *Archiver) ScanDone() { a.scanDone.Store(true) }

// CleanPaths makes paths absolute and clean, drops duplicates and paths
// inside others, and checks that each exists.
func CleanPaths(paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, errors.New("nothing to back up: give at least one path")
	}
	var abs []string
	for _, p := range paths {
		a, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("path %s: %w", p, err)
		}
		if _, err := os.Lstat(a); err != nil {
			return nil, fmt.Errorf("cannot back up %s: %w", p, err)
		}
		abs = append(abs, a)
	}
	slices.Sort(abs)
	abs = slices.Compact(abs)
	out := abs[:0]
	for _, a := range abs {
		if len(out) > 0 {
			last := out[len(out)-1]
			if last == "/" || strings.HasPrefix(a, last+"/") {
				continue
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// Archiver is one backup run. A single walker lists directories and hands
// files to a pool of workers (which chunk, hash and store them); a
// finisher completes the directories in post-order, so that each directory's
// tree is written once its entries are done. Futures connect them.
type Archiver struct {
	cfg   Config
	start time.Time
	jobs  chan fileJob
	dirs  chan dirJob

	files, dirsDone, bytes, errors, metaBytes atomic.Int64
	filesTotal, bytesTotal                    atomic.Int64
	scanDone                                  atomic.Bool
	parentStored                              bool
}

// ParentStored tells the Archiver, before Run, that every chunk the parent
// tree names is known to be stored (no chunk left the index since it was
// made): an unchanged file's chunks are then not looked up one by one. Of an
// unchanged million small files, those lookups were most of the time.
func (a *Archiver) ParentStored() { a.parentStored = true }

// future is a node that will be known later; ok is false for an entry that
// was skipped.
type future struct {
	done chan struct{}
	node data.Node
	ok   bool
	err  error // fatal: fails the backup
}

func newFuture() *future { return &future{done: make(chan struct{})} }

func (f *future) resolve(n data.Node, ok bool, err error) {
	f.node, f.ok, f.err = n, ok, err
	close(f.done)
}

func resolved(n data.Node) *future {
	f := newFuture()
	f.resolve(n, true, nil)
	return f
}

type fileJob struct {
	path string
	node data.Node // metadata from lstat
	fut  *future
}

type dirJob struct {
	node     data.Node // metadata of the directory itself
	children []*future
	fut      *future
}

// trie holds the backup paths: a node with include set is backed up whole;
// other nodes are directories on the way to one.
type trie struct {
	include  bool
	children map[string]*trie
}

func buildTrie(paths []string) *trie {
	root := &trie{children: map[string]*trie{}}
	for _, p := range paths {
		t := root
		if p == "/" {
			t.include = true
			continue
		}
		for _, c := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
			n, ok := t.children[c]
			if !ok {
				n = &trie{children: map[string]*trie{}}
				t.children[c] = n
			}
			t = n
		}
		t.include = true
	}
	return root
}

// Run walks the paths and returns the root directory node.
func (a *Archiver) Run(ctx context.Context, paths []string, parent *data.Tree) (data.Node, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range a.cfg.Parallel {
		wg.Add(1)
		go func() { defer wg.Done(); a.worker(ctx) }()
	}
	finished := make(chan struct{})
	go func() { defer close(finished); a.finisher(ctx, cancel) }()

	var rootFut *future
	walkErr := func() error {
		defer close(a.dirs)
		defer close(a.jobs)
		var st unix.Stat_t
		if err := unix.Lstat("/", &st); err != nil {
			return &fs.PathError{Op: "lstat", Path: "/", Err: err}
		}
		rootFut = a.walkDir(ctx, "/", &st, parent, buildTrie(paths))
		return ctx.Err()
	}()
	wg.Wait()
	<-finished
	if err := context.Cause(ctx); err != nil {
		return data.Node{}, err
	}
	if walkErr != nil {
		return data.Node{}, walkErr
	}
	<-rootFut.done
	if rootFut.err != nil {
		return data.Node{}, rootFut.err
	}
	return rootFut.node, nil
}

func (a *Archiver) warn(path string, err error) {
	a.errors.Add(1)
	if a.cfg.Warn != nil {
		a.cfg.Warn(path, err)
	}
	a.cfg.Logger.Warn("skipped a file that could not be read", "path", path, "err", err)
}

// walkDir lists a directory (only the entries of sel unless sel includes
// the whole directory), hands its files to the workers and its subdirectories
// to itself, and queues the directory for the finisher.
func (a *Archiver) walkDir(ctx context.Context, path string, st *unix.Stat_t, parent *data.Tree, sel *trie) *future {
	dn := nodeFromStat(filepath.Base(path), st)
	fut := newFuture()
	var names []string
	whole := sel == nil || sel.include
	dir, err := openFolder(path, whole)
	defer dir.close()
	if whole {
		if err == nil {
			names, err = dir.f.Readdirnames(-1)
		}
		if err != nil {
			a.warn(path, err)
		}
		sort.Strings(names)
	} else {
		for n := range sel.children {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	var children []*future
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		p := filepath.Join(path, name)
		var childSel *trie
		if !whole {
			childSel = sel.children[name]
		}
		var cst unix.Stat_t
		if err := dir.lstat(name, p, &cst); err != nil {
			a.warn(p, err)
			continue
		}
		var prev *data.Node
		if parent != nil {
			prev = parent.Find(name)
		}
		n := nodeFromStat(name, &cst)
		switch n.Type {
		case data.TypeDir:
			var sub *data.Tree
			if prev != nil && prev.Type == data.TypeDir {
				if t, err := a.cfg.Trees.LoadTree(ctx, prev.Subtree); err == nil {
					sub = t
				}
			}
			if whole {
				childSel = nil
			}
			children = append(children, a.walkDir(ctx, p, &cst, sub, childSel))
		case data.TypeSymlink:
			target, err := os.Readlink(p)
			if err != nil {
				a.warn(p, err)
				continue
			}
			n.Target = target
			children = append(children, resolved(n))
		case data.TypeFile:
			if prev != nil && unchanged(prev, &n) && (a.parentStored || a.stored(prev.Content)) {
				n.Content = prev.Content
				a.files.Add(1)
				a.bytes.Add(n.Size)
				children = append(children, resolved(n))
				continue
			}
			job := fileJob{path: p, node: n, fut: newFuture()}
			select {
			case a.jobs <- job:
			case <-ctx.Done():
			}
			children = append(children, job.fut)
		default:
			// Devices, sockets and pipes hold no data to back up: said, not
			// counted as an error.
			what := specialKind(modeOf(&cst))
			if a.cfg.Warn != nil {
				a.cfg.Warn(p, fmt.Errorf("skipped: %s holds no data to back up", what))
			}
			a.cfg.Logger.Info("skipped a special file", "path", p, "kind", what)
		}
	}
	select {
	case a.dirs <- dirJob{node: dn, children: children, fut: fut}:
	case <-ctx.Done():
	}
	return fut
}

// unchanged reports whether a file is as it was in the parent snapshot.
func unchanged(prev, cur *data.Node) bool {
	return prev.Type == data.TypeFile && prev.Size == cur.Size && prev.ModTime == cur.ModTime &&
		prev.CTime == cur.CTime && prev.Inode == cur.Inode && prev.Mode == cur.Mode
}

// stored reports whether every chunk is still in the catalog (a prune may
// have dropped some).
func (a *Archiver) stored(ids []data.ID) bool {
	for _, id := range ids {
		if ok, err := a.cfg.Index.HasChunk(id); err != nil || !ok {
			return false
		}
	}
	return true
}

// worker reads, chunks and stores files.
func (a *Archiver) worker(ctx context.Context) {
	c, err := chunker.New(nil, chunker.Config{Gear: a.cfg.Gear})
	if err != nil {
		panic(err) // the default sizes are valid
	}
	for job := range a.jobs {
		if ctx.Err() != nil {
			job.fut.resolve(data.Node{}, false, ctx.Err())
			continue
		}
		n, err := a.storeFile(ctx, c, job)
		switch {
		case err == nil:
			a.files.Add(1)
			job.fut.resolve(n, true, nil)
		case errors.As(err, new(fatalError)):
			job.fut.resolve(data.Node{}, false, err)
		default:
			a.warn(job.path, err)
			job.fut.resolve(data.Node{}, false, nil)
		}
	}
}

// fatalError marks an error that fails the whole backup (the friends or
// the store failed), unlike an unreadable file.
type fatalError struct{ err error }

func (e fatalError) Error() string { return e.err.Error() }
func (e fatalError) Unwrap() error { return e.err }

func (a *Archiver) storeFile(ctx context.Context, c *chunker.Chunker, job fileJob) (data.Node, error) {
	f, err := a.cfg.Open(job.path)
	if err != nil {
		return data.Node{}, err
	}
	defer func() { _ = f.Close() }() // opened to read only: closing it loses nothing
	var st unix.Stat_t
	if err := f.Stat(&st); err != nil {
		return data.Node{}, err
	}
	if m := modeOf(&st); !m.IsRegular() {
		return data.Node{}, fmt.Errorf("changed into a %s while being read", m.Type())
	}
	n := nodeFromStat(job.node.Name, &st)
	if st.Size > 0 {
		// What fstat saw, and no read(2) to find the end: a file that grows
		// meanwhile is backed up as it was (the pseudo-files of /proc and
		// /sys that say 0 are read to the end).
		c.Reset(io.LimitReader(f, st.Size))
	} else {
		c.Reset(f)
	}
	var size int64
	for {
		ch, err := c.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return data.Node{}, err
		}
		id := data.ID(a.cfg.Keyer.ID(ch.Data))
		if _, err := a.cfg.Saver.Add(ctx, data.DataBlob, id, ch.Data); err != nil {
			return data.Node{}, fatalError{err}
		}
		n.Content = append(n.Content, id)
		size += int64(len(ch.Data))
		a.bytes.Add(int64(len(ch.Data)))
	}
	n.Size = size // what was read, should the file have changed meanwhile
	return n, nil
}

// finisher completes directories in the order the walker queued them:
// children before parents.
func (a *Archiver) finisher(ctx context.Context, fail context.CancelCauseFunc) {
	for job := range a.dirs {
		t := data.Tree{Nodes: make([]data.Node, 0, len(job.children))}
		var fatal error
		for _, c := range job.children {
			select {
			case <-c.done:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
			if c.err != nil {
				fatal = c.err
				break
			}
			if c.ok {
				t.Nodes = append(t.Nodes, c.node)
			}
		}
		if fatal == nil && ctx.Err() == nil {
			ids, err := a.storeTree(ctx, &t)
			if err != nil {
				fatal = err
			} else {
				job.node.Subtree = ids
			}
		}
		if fatal != nil {
			fail(fatal)
		}
		a.dirsDone.Add(1)
		job.fut.resolve(job.node, fatal == nil, fatal)
	}
}

// storeTree serializes a tree, cuts it into chunks and stores them (and in
// the local tree cache).
func (a *Archiver) storeTree(ctx context.Context, t *data.Tree) ([]data.ID, error) {
	b, err := t.Encode()
	if err != nil {
		return nil, err
	}
	return a.storeMeta(ctx, b)
}

// storeMeta stores a serialized tree as chunks of tree blobs, also kept in
// the local tree cache.
func (a *Archiver) storeMeta(ctx context.Context, b []byte) ([]data.ID, error) {
	c, err := chunker.New(&sliceReader{b: b}, chunker.Config{Gear: a.cfg.Gear})
	if err != nil {
		return nil, err
	}
	var ids []data.ID
	for {
		ch, err := c.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		id := data.ID(a.cfg.Keyer.ID(ch.Data))
		added, err := a.cfg.Saver.Add(ctx, data.TreeBlob, id, ch.Data)
		if err != nil {
			return nil, fatalError{err}
		}
		if added {
			a.metaBytes.Add(int64(len(ch.Data)))
		}
		if err := a.cfg.Trees.CacheTree(id, ch.Data); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 { // an empty serialization still needs a name
		return nil, errors.New("empty metadata")
	}
	return ids, nil
}

// sliceReader reads a byte slice.
type sliceReader struct {
	b   []byte
	off int
}

func (s *sliceReader) Read(p []byte) (int, error) {
	if s.off >= len(s.b) {
		return 0, io.EOF
	}
	n := copy(p, s.b[s.off:])
	s.off += n
	return n, nil
}

// Scan counts the files and bytes to back up, for the progress estimate.
func (a *Archiver) Scan(ctx context.Context, paths []string) {
	defer a.scanDone.Store(true)
	// Unreadable entries are skipped (the backup itself reports them), so
	// the walk stops only when ctx ends: then the estimate is moot.
	for _, p := range paths {
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil {
			continue
		}
		switch m := modeOf(&st); {
		case m.IsRegular():
			a.filesTotal.Add(1)
			a.bytesTotal.Add(st.Size)
		case m.IsDir():
			if a.scanDir(ctx, p) != nil {
				return
			}
		}
	}
}

// scanDir counts the files and bytes under dir, statting its files
// relative to its descriptor.
func (a *Archiver) scanDir(ctx context.Context, dir string) error {
	d, err := openFolder(dir, true)
	defer d.close()
	if err != nil {
		return nil
	}
	ents, _ := d.f.ReadDir(-1) // what it read before an error still counts
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case e.IsDir():
			if err := a.scanDir(ctx, filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		case e.Type().IsRegular():
			var st unix.Stat_t
			if d.lstat(e.Name(), filepath.Join(dir, e.Name()), &st) == nil {
				a.filesTotal.Add(1)
				a.bytesTotal.Add(st.Size)
			}
		}
	}
	return nil
}

func (a *Archiver) Report(phase string) {
	if a.cfg.Progress == nil {
		return
	}
	ft, bt := a.filesTotal.Load(), a.bytesTotal.Load()
	f, b := a.files.Load(), a.bytes.Load()
	a.cfg.Progress(Progress{
		Phase: phase, Files: f, FilesTotal: max(ft, f), Bytes: b, BytesTotal: max(bt, b),
		NewBytes: a.cfg.Saver.Stats().RawBytes - a.metaBytes.Load(), Errors: a.errors.Load(),
		Elapsed: time.Since(a.start), ScanDone: a.scanDone.Load(),
	})
}

func (a *Archiver) ReportLoop(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		a.Report("backup")
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// specialKind names a file that is neither a folder, a file nor a link.
func specialKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}
