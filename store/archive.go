package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/plug-net/plug/chunker"
	"github.com/plug-net/plug/store/kv"
	"github.com/plug-net/plug/store/target"
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

// BackupOptions tune a backup.
type BackupOptions struct {
	// Progress, if set, is called about twice a second and at the end.
	Progress func(Progress)
	// Warn, if set, is told of every file that could not be read (it is
	// skipped; the backup goes on).
	Warn func(path string, err error)
	// State, if set, is the plug's own state folder, backed up beside the
	// paths into Snapshot.State (not counted in the snapshot's files and
	// bytes). With State set, paths may be empty: a state-only snapshot.
	State string
}

// ErrTooFewFriends is wrapped when there are not enough reachable friends
// to keep everything with the wanted redundancy.
var ErrTooFewFriends = target.ErrTooFewFriends

// Backup backs up paths (files or directories, made absolute) into a new
// snapshot and publishes a new head record. Unchanged files (size, mtime,
// ctime, inode) are not read again; chunks already stored are not sent again.
func (r *Repo) Backup(ctx context.Context, paths []string, opt BackupOptions) (Snapshot, error) {
	unlock, err := r.lock("backup")
	if err != nil {
		return Snapshot{}, err
	}
	defer unlock()
	return r.backup(ctx, paths, opt)
}

func (r *Repo) backup(ctx context.Context, paths []string, opt BackupOptions) (Snapshot, error) {
	start := time.Now()
	var abs []string
	var err error
	if len(paths) > 0 || opt.State == "" {
		if abs, err = cleanPaths(paths); err != nil {
			return Snapshot{}, err
		}
	}
	var stateAbs []string
	if opt.State != "" {
		if stateAbs, err = cleanPaths([]string{opt.State}); err != nil {
			return Snapshot{}, err
		}
	}
	holders := r.net.Reachable(ctx)
	if need := r.cfg.M + 1; len(holders) < need {
		return Snapshot{}, fmt.Errorf("%w: %d friend(s) reachable, and keeping everything when %d may be lost takes at least %d: pair with %d more (plug invite), or bring the others online",
			ErrTooFewFriends, len(holders), r.cfg.M, need, need-len(holders))
	}
	targets := make([]ShardTarget, len(holders))
	for i, h := range holders {
		targets[i] = h
	}
	w, err := NewWriter(ctx, WriterConfig{
		Targets: targets, M: r.cfg.M, Recipient: r.keys.AgeRecipient(), Catalog: r.cat, Parallel: r.cfg.Parallel,
		TargetLost: func(name string, err error, left int) {
			r.log.Warn("a friend went away during the backup; going on with the others", "friend", name, "friends_left", left, "err", err)
		},
	})
	if err != nil {
		return Snapshot{}, err
	}
	defer w.Close()

	var parent ID
	var parentTree *Tree
	if len(abs) > 0 {
		parent, parentTree = r.parentFor(ctx, abs)
	}
	a := r.newArchiver(w, opt, start)
	r.log.Info("backup started", "paths", strings.Join(abs, " "), "friends", len(holders), "data_shards", w.K(), "parity_shards", r.cfg.M)

	scanCtx, stopScan := context.WithCancel(ctx)
	defer stopScan()
	go a.scan(scanCtx, abs)
	progCtx, stopProg := context.WithCancel(ctx)
	progDone := make(chan struct{})
	go func() { defer close(progDone); a.reportLoop(progCtx) }()

	var root, stateRoot Node
	if len(abs) > 0 {
		root, err = a.run(ctx, abs, parentTree)
	}
	var stateRaw int64 // what the state added: not the owner's new data
	if err == nil && len(stateAbs) > 0 {
		before := w.Stats().RawBytes
		stateRoot, err = r.backupState(ctx, w, stateAbs, opt.Warn)
		stateRaw = w.Stats().RawBytes - before
	}
	if err == nil {
		err = w.Flush(ctx)
	}
	stopProg()
	<-progDone
	if err != nil {
		r.log.Error("backup failed", "err", err)
		return Snapshot{}, fmt.Errorf("backup: %w", err)
	}
	snap := Snapshot{
		ID:       newSnapshotID(),
		Time:     start.UTC(),
		Host:     r.cfg.Host,
		Paths:    abs,
		Tree:     root.Subtree,
		Parent:   parent,
		Files:    a.files.Load(),
		Dirs:     a.dirsDone.Load(),
		Bytes:    a.bytes.Load(),
		NewBytes: w.Stats().RawBytes - a.metaBytes.Load() - stateRaw,
		Errors:   a.errors.Load(),
		Duration: time.Since(start).Seconds(),
	}
	if len(stateAbs) > 0 {
		snap.State, snap.StatePath = stateRoot.Subtree, stateAbs[0]
	}
	if err := r.saveSnapshot(snap); err != nil {
		return Snapshot{}, err
	}
	if err := r.publish(ctx); err != nil {
		// The snapshot is safe on the friends and in the catalog; the head
		// record follows with the next backup or at the next start.
		r.log.Warn("snapshot stored, but the head record could not be given to the friends yet", "err", err)
	}
	a.report("done")
	r.log.Info("backup done", "snapshot", snap.ID.Short(), "files", snap.Files, "bytes", snap.Bytes, "new_bytes", snap.NewBytes,
		"errors", snap.Errors, "duration", time.Since(start).Round(time.Millisecond).String())
	return snap, nil
}

// backupState archives the plug's state folder with the backup's writer,
// incrementally against the newest snapshot that carries it.
func (r *Repo) backupState(ctx context.Context, w *Writer, paths []string, warn func(string, error)) (Node, error) {
	var parent *Tree
	if all, err := r.Snapshots(); err == nil {
		for i := len(all) - 1; i >= 0; i-- {
			if all[i].StatePath == paths[0] && len(all[i].State) > 0 {
				if t, err := r.LoadTree(ctx, all[i].State); err == nil {
					parent = t
				}
				break
			}
		}
	}
	a := r.newArchiver(w, BackupOptions{Warn: warn}, time.Now())
	a.scanDone.Store(true)
	n, err := a.run(ctx, paths, parent)
	if err != nil {
		return n, fmt.Errorf("back up the plug's own state: %w", err)
	}
	return n, nil
}

// newArchiver makes one archiving run over w.
func (r *Repo) newArchiver(w *Writer, opt BackupOptions, start time.Time) *archiver {
	a := &archiver{r: r, w: w, opt: opt, start: start, parallel: r.parallel()}
	a.jobs = make(chan fileJob, 4*a.parallel)
	a.dirs = make(chan dirJob, 256)
	return a
}

func (r *Repo) parallel() int {
	if r.cfg.Parallel > 0 {
		return r.cfg.Parallel
	}
	return max(runtime.GOMAXPROCS(0), 2)
}

// cleanPaths makes paths absolute and clean, drops duplicates and paths
// inside others, and checks that each exists.
func cleanPaths(paths []string) ([]string, error) {
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

// parentFor returns the newest snapshot of the same paths and its root tree
// (nil when there is none or it cannot be read).
func (r *Repo) parentFor(ctx context.Context, paths []string) (ID, *Tree) {
	all, err := r.Snapshots()
	if err != nil {
		return ID{}, nil
	}
	for i := len(all) - 1; i >= 0; i-- {
		if slices.Equal(all[i].Paths, paths) {
			t, err := r.LoadTree(ctx, all[i].Tree)
			if err != nil {
				r.log.Warn("cannot read the previous snapshot: every file is read again", "snapshot", all[i].ID.Short(), "err", err)
				return ID{}, nil
			}
			return all[i].ID, t
		}
	}
	return ID{}, nil
}

// archiver is one backup run. A single walker lists directories and hands
// files to a pool of workers (which chunk, hash and store them); a
// finisher completes the directories in post-order, so that each directory's
// tree is written once its entries are done. Futures connect them.
type archiver struct {
	r        *Repo
	w        *Writer
	opt      BackupOptions
	start    time.Time
	parallel int
	jobs     chan fileJob
	dirs     chan dirJob

	files, dirsDone, bytes, errors, metaBytes atomic.Int64
	filesTotal, bytesTotal                    atomic.Int64
	scanDone                                  atomic.Bool
}

// future is a node that will be known later; ok is false for an entry that
// was skipped.
type future struct {
	done chan struct{}
	node Node
	ok   bool
	err  error // fatal: fails the backup
}

func newFuture() *future { return &future{done: make(chan struct{})} }

func (f *future) resolve(n Node, ok bool, err error) {
	f.node, f.ok, f.err = n, ok, err
	close(f.done)
}

func resolved(n Node) *future {
	f := newFuture()
	f.resolve(n, true, nil)
	return f
}

type fileJob struct {
	path string
	node Node // metadata from lstat
	fut  *future
}

type dirJob struct {
	node     Node // metadata of the directory itself
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

// run walks the paths and returns the root directory node.
func (a *archiver) run(ctx context.Context, paths []string, parent *Tree) (Node, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range a.parallel {
		wg.Add(1)
		go func() { defer wg.Done(); a.worker(ctx) }()
	}
	finished := make(chan struct{})
	go func() { defer close(finished); a.finisher(ctx, cancel) }()

	var rootFut *future
	walkErr := func() error {
		defer close(a.dirs)
		defer close(a.jobs)
		fi, err := os.Lstat("/")
		if err != nil {
			return err
		}
		rootFut = a.walkDir(ctx, "/", fi, parent, buildTrie(paths))
		return ctx.Err()
	}()
	wg.Wait()
	<-finished
	if err := context.Cause(ctx); err != nil {
		return Node{}, err
	}
	if walkErr != nil {
		return Node{}, walkErr
	}
	<-rootFut.done
	if rootFut.err != nil {
		return Node{}, rootFut.err
	}
	return rootFut.node, nil
}

func (a *archiver) warn(path string, err error) {
	a.errors.Add(1)
	if a.opt.Warn != nil {
		a.opt.Warn(path, err)
	}
	a.r.log.Warn("skipped a file that could not be read", "path", path, "err", err)
}

// nodeFromInfo fills a node's metadata from lstat.
func nodeFromInfo(name string, fi fs.FileInfo) Node {
	n := Node{Name: name, Mode: uint32(fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)), ModTime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		n.CTime = int64(st.Ctim.Sec)*1e9 + int64(st.Ctim.Nsec) //nolint:unconvert // int32 on 32-bit ARM
		n.Inode = uint64(st.Ino)                               //nolint:unconvert
		n.Dev = uint64(st.Dev)
	}
	switch {
	case fi.Mode().IsDir():
		n.Type = TypeDir
	case fi.Mode()&fs.ModeSymlink != 0:
		n.Type = TypeSymlink
	case fi.Mode().IsRegular():
		n.Type = TypeFile
		n.Size = fi.Size()
	}
	return n
}

// walkDir lists a directory (only the entries of sel unless sel includes
// the whole directory), hands its files to the workers and its subdirectories
// to itself, and queues the directory for the finisher.
func (a *archiver) walkDir(ctx context.Context, path string, fi fs.FileInfo, parent *Tree, sel *trie) *future {
	dn := nodeFromInfo(filepath.Base(path), fi)
	fut := newFuture()
	var names []string
	whole := sel == nil || sel.include
	if whole {
		f, err := os.Open(path)
		if err == nil {
			names, err = f.Readdirnames(-1)
			f.Close()
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
		cfi, err := os.Lstat(p)
		if err != nil {
			a.warn(p, err)
			continue
		}
		var prev *Node
		if parent != nil {
			prev = parent.Find(name)
		}
		n := nodeFromInfo(name, cfi)
		switch n.Type {
		case TypeDir:
			var sub *Tree
			if prev != nil && prev.Type == TypeDir {
				if t, err := a.r.LoadTree(ctx, prev.Subtree); err == nil {
					sub = t
				}
			}
			if whole {
				childSel = nil
			}
			children = append(children, a.walkDir(ctx, p, cfi, sub, childSel))
		case TypeSymlink:
			target, err := os.Readlink(p)
			if err != nil {
				a.warn(p, err)
				continue
			}
			n.Target = target
			children = append(children, resolved(n))
		case TypeFile:
			if prev != nil && unchanged(prev, &n) && a.stored(prev.Content) {
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
			// Devices, sockets and pipes hold no data to back up.
			a.r.log.Debug("skipped a special file", "path", p, "mode", cfi.Mode().String())
		}
	}
	select {
	case a.dirs <- dirJob{node: dn, children: children, fut: fut}:
	case <-ctx.Done():
	}
	return fut
}

// unchanged reports whether a file is as it was in the parent snapshot.
func unchanged(prev, cur *Node) bool {
	return prev.Type == TypeFile && prev.Size == cur.Size && prev.ModTime == cur.ModTime &&
		prev.CTime == cur.CTime && prev.Inode == cur.Inode && prev.Mode == cur.Mode
}

// stored reports whether every chunk is still in the catalog (a prune may
// have dropped some).
func (a *archiver) stored(ids []ID) bool {
	for _, id := range ids {
		if ok, err := a.r.cat.HasChunk(id); err != nil || !ok {
			return false
		}
	}
	return true
}

// worker reads, chunks and stores files.
func (a *archiver) worker(ctx context.Context) {
	c, err := chunker.New(nil, chunker.Config{Gear: a.r.gear})
	if err != nil {
		panic(err) // the default sizes are valid
	}
	for job := range a.jobs {
		if ctx.Err() != nil {
			job.fut.resolve(Node{}, false, ctx.Err())
			continue
		}
		n, err := a.storeFile(ctx, c, job)
		switch {
		case err == nil:
			a.files.Add(1)
			job.fut.resolve(n, true, nil)
		case errors.Is(err, errFatal):
			job.fut.resolve(Node{}, false, err)
		default:
			a.warn(job.path, err)
			job.fut.resolve(Node{}, false, nil)
		}
	}
}

// errFatal marks an error that fails the whole backup (the friends or the
// store failed), unlike an unreadable file.
var errFatal = errors.New("backup failed")

func (a *archiver) storeFile(ctx context.Context, c *chunker.Chunker, job fileJob) (Node, error) {
	f, err := a.r.openFile(job.path)
	if err != nil {
		return Node{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Node{}, err
	}
	if !fi.Mode().IsRegular() {
		return Node{}, fmt.Errorf("changed into a %s while being read", fi.Mode().Type())
	}
	n := nodeFromInfo(job.node.Name, fi)
	c.Reset(f)
	var size int64
	for {
		ch, err := c.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Node{}, err
		}
		id := ID(a.r.keyer.ID(ch.Data))
		if _, err := a.w.Add(ctx, DataBlob, id, ch.Data); err != nil {
			return Node{}, fmt.Errorf("%w: %w", errFatal, err)
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
func (a *archiver) finisher(ctx context.Context, fail context.CancelCauseFunc) {
	for job := range a.dirs {
		t := Tree{Nodes: make([]Node, 0, len(job.children))}
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
func (a *archiver) storeTree(ctx context.Context, t *Tree) ([]ID, error) {
	b, err := t.Encode()
	if err != nil {
		return nil, err
	}
	return a.r.storeMeta(ctx, a.w, TreeBlob, b, &a.metaBytes)
}

// storeMeta stores metadata bytes (a tree, an index segment, state) as
// chunks of the given type; trees are also kept in the local tree cache.
func (r *Repo) storeMeta(ctx context.Context, w *Writer, t BlobType, b []byte, counter *atomic.Int64) ([]ID, error) {
	c, err := chunker.New(&sliceReader{b: b}, chunker.Config{Gear: r.gear})
	if err != nil {
		return nil, err
	}
	var ids []ID
	for {
		ch, err := c.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		id := ID(r.keyer.ID(ch.Data))
		added, err := w.Add(ctx, t, id, ch.Data)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errFatal, err)
		}
		if added && counter != nil {
			counter.Add(int64(len(ch.Data)))
		}
		if t == TreeBlob {
			if err := r.db.Put(kv.Trees, id[:], ch.Data); err != nil {
				return nil, err
			}
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

// scan counts the files and bytes to back up, for the progress estimate.
func (a *archiver) scan(ctx context.Context, paths []string) {
	defer a.scanDone.Store(true)
	for _, p := range paths {
		filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil || d.IsDir() || !d.Type().IsRegular() {
				return nil
			}
			if fi, err := d.Info(); err == nil {
				a.filesTotal.Add(1)
				a.bytesTotal.Add(fi.Size())
			}
			return nil
		})
	}
}

func (a *archiver) report(phase string) {
	if a.opt.Progress == nil {
		return
	}
	ft, bt := a.filesTotal.Load(), a.bytesTotal.Load()
	f, b := a.files.Load(), a.bytes.Load()
	a.opt.Progress(Progress{
		Phase: phase, Files: f, FilesTotal: max(ft, f), Bytes: b, BytesTotal: max(bt, b),
		NewBytes: a.w.Stats().RawBytes - a.metaBytes.Load(), Errors: a.errors.Load(),
		Elapsed: time.Since(a.start), ScanDone: a.scanDone.Load(),
	})
}

func (a *archiver) reportLoop(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		a.report("backup")
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// openForBackup opens a file to read it without touching its access time
// where the plug may.
func openForBackup(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOATIME, 0)
	if errors.Is(err, syscall.EPERM) {
		f, err = os.Open(path) // O_NOATIME needs ownership
	}
	return f, err
}
