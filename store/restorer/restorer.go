package restorer

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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
	// FetchInto returns a pack's plaintext, in buf's memory when it is
	// large enough, and the entries of its trailer.
	FetchInto(ctx context.Context, rec catalog.PackRecord, buf []byte) ([]byte, []pack.Entry, error)
}

// Config is what a restore reads from.
type Config struct {
	Trees Trees
	Index Index
	Packs Packs
	Keyer *chunker.IDKeyer
}

// packsAtOnce is how many packs are fetched at once. Each worker waits on
// its friends for part of every pack, and keeps a buffer of about 8 MiB.
// benchrestic, plug alone, three friends on this 2-core machine, builds
// alternated: the mixed 10 GiB restored in 45.9 and 46.5 s with four,
// 59.3 and 59.7 s with three; a million tiny files in 105.0 and 86.5 s
// with four, 90.4 and 101.7 s with three; the owner's peak RSS 112-116 MiB
// with four, 111-116 with three.
const packsAtOnce = 4

// batchUses bounds the chunk placements planned ahead of the writes: the
// files are planned a part at a time, while the packs of the part before
// are fetched and written, so a restore's memory does not grow with the
// number of files in the snapshot.
const batchUses = 4096

// carryPacks is how many of the packs used last by a part of the plan may
// stay planned for the next part (while they hold less than two parts): the
// next files most likely continue in them, and a pack fetched once for
// both parts is not fetched twice.
const carryPacks = 4

// item is one file being restored. It is kept small: a part of the plan
// holds thousands.
type item struct {
	dir     string // where it goes: the folder's path, shared by its files,
	name    string // and its name
	mode    fs.FileMode
	mtime   int64      // unix nanoseconds
	size    int64      // the sum of its chunks' lengths
	mu      sync.Mutex // serializes creation, writes and finalization
	left    int        // chunks still to write (mu)
	created bool
	done    bool
	lost    bool   // a chunk of it could not be fetched: it is not restored
	ino     fileID // of the temporary file made, checked at every open
}

// tmp is where the file is written until it is whole.
func (it *item) tmp() string { return tempName(it.path()) }

// path is where the file goes.
func (it *item) path() string { return filepath.Join(it.dir, it.name) }

// entry is a directory or symlink, made or given its mode and time once
// the files are written.
type entry struct {
	dest string
	node data.Node // without its Content and Subtree
}

// fileID tells one file from any other on the machine.
type fileID struct{ dev, ino uint64 }

// use is one place a chunk goes: a file and an offset in it.
type use struct {
	item   *item
	offset int64
	id     data.ID
}

// job is one pack to fetch and the places its chunks go.
type job struct {
	pack data.ID
	uses []use
}

// plan is what a restore will do. Directories and symlinks are listed
// whole; files are listed by a first walk of the trees only as counts and
// clashes, and planned again, a part at a time, as they are written.
type plan struct {
	cfg       Config
	opt       Options
	dir, base string
	sel       data.Node
	dirs      []entry  // parents first
	links     []entry  // to make at the end
	skip      []uint64 // by the order of files and links in the walk: whole at their place from an earlier run
	clash     struct {
		files, dirs     int
		fileEgs, dirEgs []string
	}
	total     Progress
	skipped   int64        // already there from an earlier run
	doneFiles atomic.Int64 // files done
	doneBytes atomic.Int64 // bytes written

	mu       sync.Mutex
	open     map[*item]struct{} // created and not finished: removed if the restore fails
	lost     []error            // why files could not be restored
	missing  []string           // the first few files that could not be restored
	nMissing int
	writeErr error // the first error writing at the destination
}

// Restore writes snapshot snap (or its opt.Path) under dir, each path at
// its absolute original place (DIR/home/ann/photos for /home/ann/photos).
// Files are written whole to temporary names and renamed when complete, so
// a failed restore leaves no partial or garbage file; packs that cannot be
// rebuilt (fewer than k intact shards) are named in the error with the
// files they cost.
func Restore(ctx context.Context, cfg Config, snap data.Snapshot, dir string, opt Options) (Stats, error) {
	p, err := survey(ctx, cfg, snap, dir, opt)
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

// survey walks what is to be restored once: it lists the directories and
// symlinks, counts the files and their bytes, and finds what is at the
// destination already (a clash, or a file restored whole by an earlier run
// of the same restore, cut short).
func survey(ctx context.Context, cfg Config, snap data.Snapshot, dir string, opt Options) (*plan, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	p := &plan{cfg: cfg, opt: opt, dir: dir, open: map[*item]struct{}{}}
	if p.sel, p.base, err = p.selection(ctx, snap); err != nil {
		return nil, err
	}
	ord := 0
	absent := "" // a folder not at the destination: nothing under it is either
	lstat := func(path, dest string) (fs.FileInfo, error) {
		if absent != "" && strings.HasPrefix(path, absent) {
			return nil, fs.ErrNotExist
		}
		return os.Lstat(dest)
	}
	err = p.walk(ctx, p.base, p.sel, func(path string, n data.Node) error {
		dest := filepath.Join(p.dir, path)
		n.Content, n.Subtree = nil, nil
		if n.Type == data.TypeDir {
			if path == "/" {
				return nil // the destination itself is not restored over
			}
			p.dirs = append(p.dirs, entry{dest: dest, node: n})
			fi, err := lstat(path, dest)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				if absent == "" || !strings.HasPrefix(path, absent) {
					absent = path + "/"
				}
			case err == nil && !fi.IsDir():
				p.clash.dirs++
				if len(p.clash.dirEgs) < 5 {
					p.clash.dirEgs = append(p.clash.dirEgs, dest)
				}
			}
			return nil
		}
		if n.Type != data.TypeFile && n.Type != data.TypeSymlink {
			return nil
		}
		i := ord
		ord++
		if fi, err := lstat(path, dest); err == nil && !opt.Overwrite {
			// A restore run again after it was cut short keeps what it
			// finished: a file is renamed to its name only whole, with its
			// time set last.
			if restoredAlready(fi, dest, n) {
				if len(p.skip) <= i/64 {
					p.skip = append(p.skip, make([]uint64, i/64+1-len(p.skip))...)
				}
				p.skip[i/64] |= 1 << (i % 64)
				p.skipped++
				return nil
			}
			p.clash.files++
			if len(p.clash.fileEgs) < 5 {
				p.clash.fileEgs = append(p.clash.fileEgs, dest)
			}
		}
		if n.Type == data.TypeSymlink {
			p.links = append(p.links, entry{dest: dest, node: n})
			return nil
		}
		p.total.FilesTotal++
		p.total.BytesTotal += n.Size
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// isSkipped reports whether the i-th file or link of the walk is whole at
// its place already.
func (p *plan) isSkipped(i int) bool {
	return i/64 < len(p.skip) && p.skip[i/64]&(1<<(i%64)) != 0
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

// walk calls visit for n at path and for everything its trees hold, parents
// first, in the trees' order: the same order every time.
func (p *plan) walk(ctx context.Context, path string, n data.Node, visit func(string, data.Node) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := visit(path, n); err != nil {
		return err
	}
	if n.Type != data.TypeDir {
		return nil
	}
	t, err := p.cfg.Trees.LoadTree(ctx, n.Subtree)
	if err != nil {
		return fmt.Errorf("read directory %s: %w", path, err)
	}
	for _, c := range t.Nodes {
		if err := p.walk(ctx, filepath.Join(path, c.Name), c, visit); err != nil {
			return err
		}
	}
	return nil
}

// restoredAlready reports whether fi, at dest, is n as a restore leaves
// it: a file of its size, mode and time to the nanosecond (set only once it
// was whole), or a link to its target.
func restoredAlready(fi fs.FileInfo, dest string, n data.Node) bool {
	switch n.Type {
	case data.TypeFile:
		return fi.Mode().IsRegular() && fi.Size() == n.Size && fi.ModTime().UnixNano() == n.ModTime &&
			fi.Mode().Perm() == n.FileMode().Perm()
	case data.TypeSymlink:
		target, err := os.Readlink(dest)
		return err == nil && fi.Mode()&fs.ModeSymlink != 0 && target == n.Target
	}
	return false
}

// checkClashes refuses to replace a file silently.
func (p *plan) checkClashes() error {
	if p.clash.dirs > 0 {
		// Never replaced, --overwrite or not: a link there would take the
		// restore elsewhere.
		return fmt.Errorf("%w: %d folders of the snapshot are files or links at the destination, for example %s; move them away, or restore into an empty directory",
			ErrExists, p.clash.dirs, strings.Join(p.clash.dirEgs, ", "))
	}
	if p.clash.files == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d files already exist, for example %s; restore into an empty directory, or add --overwrite to replace them",
		ErrExists, p.clash.files, strings.Join(p.clash.fileEgs, ", "))
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
// files: a second walk plans them a part at a time and hands each pack
// with the places of its chunks to a few workers, which fetch and write.
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
	var badMu sync.Mutex
	var bads []fetch.BadShard
	fctx := fetch.WithBadShards(ctx, func(b fetch.BadShard) {
		badMu.Lock()
		defer badMu.Unlock()
		bads = append(bads, b)
	})
	planErr := p.fetchAndWrite(fctx)
	badMu.Lock()
	st.BadShards = slices.Clone(bads)
	badMu.Unlock()
	if err := ctx.Err(); err != nil {
		p.cleanup()
		return st, err
	}
	var de destError
	if errors.As(planErr, &de) && p.writeErr == nil {
		p.writeErr = de.err
	}
	if p.writeErr != nil {
		// The destination, not the friends: said once, what to do with it.
		p.cleanup()
		what := "could not write the restored files"
		if errors.Is(p.writeErr, syscall.ENOSPC) || errors.Is(p.writeErr, syscall.EDQUOT) {
			what = "the disk of the destination is full"
		}
		return st, fmt.Errorf("restore to %s: %s: %w; free space there or restore elsewhere (nothing partial was left under a file's name)", p.dir, what, p.writeErr)
	}
	if planErr != nil {
		p.cleanup()
		return st, planErr
	}
	if p.nMissing > 0 {
		return st, p.failed()
	}
	return st, nil
}

// destError is an error writing at the destination, not of the data.
type destError struct{ err error }

func (e destError) Error() string { return e.err.Error() }
func (e destError) Unwrap() error { return e.err }

// fetchAndWrite plans the files and fetches every pack they need, and
// writes its chunks where they go. What cannot be fetched is recorded
// (p.lost) and the rest goes on; an error writing at the destination stops
// it (a full disk stays full), and so does an error of the plan itself,
// which it returns.
func (p *plan) fetchAndWrite(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range packsAtOnce {
		wg.Go(func() {
			// Each worker keeps the buffer of its last pack for the next
			// (the pack's data shards are read into it and decrypted
			// there): a restore holds packsAtOnce of them, whatever the
			// collector does.
			var buf []byte
			for j := range jobs {
				var err error
				buf, err = p.fetchPack(ctx, j.pack, j.uses, 0, buf)
				var de destError
				switch {
				case err == nil:
				case errors.As(err, &de):
					p.mu.Lock()
					if p.writeErr == nil {
						p.writeErr = de.err
					}
					p.mu.Unlock()
					cancel()
				case ctx.Err() == nil:
					p.lose(j.uses, err)
				}
			}
		})
	}
	err := p.planFiles(ctx, func(j job) bool {
		select {
		case jobs <- j:
			return true
		case <-ctx.Done():
			return false
		}
	})
	close(jobs)
	wg.Wait()
	if ctx.Err() != nil {
		return nil // said by the caller: cancelled, or the destination's error
	}
	return err
}

// planFiles walks the files to restore again and sends, a part at a time,
// each pack they need with the places of its chunks. Empty files are made
// here; a file whose chunk the catalog does not know is lost, not fatal.
func (p *plan) planFiles(ctx context.Context, send func(job) bool) error {
	var (
		uses  = map[data.ID][]use{}
		order []data.ID           // the packs in the order the files need them
		last  = map[data.ID]int{} // when each pack was needed last
		n     int                 // uses planned
		seq   int
	)
	// flush sends the packs planned but, unless all, the few used last
	// while they hold less than two parts of the plan: the next files most
	// likely continue in them (a pack of small files is seldom split).
	flush := func(all bool) bool {
		keep := map[data.ID]bool{}
		if !all {
			recent := slices.Clone(order)
			slices.SortFunc(recent, func(a, b data.ID) int { return last[b] - last[a] })
			kept := 0
			for _, id := range recent[:min(carryPacks, len(recent))] {
				if kept+len(uses[id]) >= 2*batchUses {
					break
				}
				keep[id] = true
				kept += len(uses[id])
			}
		}
		var kept []data.ID
		n = 0
		for _, id := range order {
			if keep[id] {
				kept = append(kept, id)
				n += len(uses[id])
				continue
			}
			j := job{pack: id, uses: uses[id]}
			delete(uses, id)
			delete(last, id)
			if !send(j) {
				return false
			}
		}
		order = kept
		return true
	}
	ord := 0
	var parentPath, parentDest string // the files of a folder share its path
	err := p.walk(ctx, p.base, p.sel, func(path string, node data.Node) error {
		if node.Type != data.TypeFile && node.Type != data.TypeSymlink {
			return nil
		}
		i := ord
		ord++
		if node.Type != data.TypeFile || p.isSkipped(i) {
			return nil
		}
		if parent := filepath.Dir(path); parent != parentPath {
			parentPath, parentDest = parent, filepath.Join(p.dir, parent)
		}
		it := &item{dir: parentDest, name: filepath.Base(path), mode: node.FileMode(), mtime: node.ModTime, left: len(node.Content)}
		if it.left == 0 {
			return p.writeEmpty(it)
		}
		var off int64
		for _, id := range node.Content {
			ref, ok, err := p.cfg.Index.Chunk(id)
			if err != nil {
				return err
			}
			if !ok {
				// The catalog is damaged: this file is lost; the rest
				// is restored, and the error says which.
				p.lose([]use{{item: it}}, fmt.Errorf("%w: %s of %s", catalog.ErrUnknownChunk, id.Short(), it.path()))
				return nil
			}
			if _, seen := uses[ref.Pack]; !seen {
				order = append(order, ref.Pack)
			}
			uses[ref.Pack] = append(uses[ref.Pack], use{item: it, offset: off, id: id})
			seq++
			last[ref.Pack] = seq
			off += int64(ref.RawLength)
		}
		// The uses now hold the item: its chunks are planned.
		it.size = off
		if n += len(node.Content); n >= batchUses && !flush(false) {
			return ctx.Err()
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	flush(true)
	return nil
}

// writeEmpty makes a file without content.
func (p *plan) writeEmpty(it *item) error {
	it.mu.Lock()
	defer it.mu.Unlock()
	f, err := p.create(it)
	if err == nil {
		err = p.finishFile(it, f)
	}
	if err != nil {
		return destError{err}
	}
	p.doneFiles.Add(1)
	return nil
}

// lose records that the files of uses cannot be restored, and why; their
// temporary files are removed.
func (p *plan) lose(uses []use, why error) {
	var names []string
	for _, u := range uses {
		it := u.item
		it.mu.Lock()
		if !it.lost && !it.done {
			it.lost = true
			if it.created {
				_ = os.Remove(it.tmp()) // best-effort: a hidden ".plug-restore-" file
				p.track(it, false)
			}
			names = append(names, p.orig(it))
		}
		it.mu.Unlock()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lost = append(p.lost, why)
	p.nMissing += len(names)
	p.missing = append(p.missing, names[:min(len(names), max(0, 10-len(p.missing)))]...)
}

// orig is the path in the snapshot of a file restored to it.path().
func (p *plan) orig(it *item) string {
	rel, err := filepath.Rel(p.dir, it.path())
	if err != nil {
		return it.path()
	}
	return "/" + rel
}

// track adds or removes a file made and not finished, which a failed
// restore removes (it.mu held: the order is it.mu, then p.mu).
func (p *plan) track(it *item, open bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if open {
		p.open[it] = struct{}{}
	} else {
		delete(p.open, it)
	}
}

// maxMoves bounds how many times the chunks of a pack are followed to the
// pack that replaced it during one restore.
const maxMoves = 3

// fetchPack fetches pack pid and writes its chunks where uses say. The
// plug may replace a pack while a restore runs (re-coding, repair: a new
// pack with the same chunks, the old one dropped and later released): when
// pid is gone from the catalog, the chunks are looked up again and fetched
// from the packs that hold them now.
func (p *plan) fetchPack(ctx context.Context, pid data.ID, uses []use, moves int, buf []byte) ([]byte, error) {
	rec, ok, err := p.cfg.Index.Pack(pid)
	if err != nil {
		return buf, err
	}
	if !ok {
		return buf, p.followChunks(ctx, pid, uses, moves, nil)
	}
	plain, entries, err := p.cfg.Packs.FetchInto(ctx, rec, buf)
	if err != nil {
		if ctx.Err() == nil {
			if _, still, lerr := p.cfg.Index.Pack(pid); lerr == nil && !still {
				return buf, p.followChunks(ctx, pid, uses, moves, err) // replaced while it was fetched
			}
		}
		return buf, err
	}
	err = p.writeUses(plain, entries, uses)
	if cap(plain) > maxKeptBuffer {
		plain = nil // a pack made of one huge blob: not kept
	}
	return plain[:0], err // a destError, or the pack's content
}

// maxKeptBuffer bounds the buffer a worker keeps for its next pack: the
// one fetch.FetchInto makes fits, as does any pack closed at its target
// size.
const maxKeptBuffer = fetch.JoinedBufferSize + 1<<20

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
		if _, err := p.fetchPack(ctx, np, byPack[np], moves+1, nil); err != nil {
			return err
		}
	}
	return nil
}

// failed says which files were lost; what was written of them is removed.
func (p *plan) failed() error {
	p.cleanup()
	more := ""
	if p.nMissing > len(p.missing) {
		more = fmt.Sprintf(" and %d more", p.nMissing-len(p.missing))
	}
	return fmt.Errorf("%w: %d files of the snapshot could not be restored (%s%s); no partial file was written: %w",
		seal.ErrNotEnoughShards, p.nMissing, strings.Join(p.missing, ", "), more, errors.Join(p.lost...))
}

// cleanup removes the temporary files of files not finished. It runs once
// the restore has failed, which is what the caller reports: removing is
// best-effort, and a leftover is only a hidden ".plug-restore-" file.
func (p *plan) cleanup() {
	p.mu.Lock()
	open := slices.Collect(maps.Keys(p.open))
	p.mu.Unlock()
	for _, it := range open {
		it.mu.Lock()
		if it.created && !it.done {
			_ = os.Remove(it.tmp())
			p.track(it, false)
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
	st.Files = p.total.FilesTotal
	st.Bytes = p.total.BytesTotal
	st.Skipped = p.skipped
	if len(errs) > 0 {
		return fmt.Errorf("restored every file, but could not give some their modes or times: %w", errors.Join(errs...))
	}
	return nil
}

// writeUses writes the chunks of one pack where they go. A chunk used
// more than once is extracted once, and kept only until its last use.
func (p *plan) writeUses(plain []byte, entries []pack.Entry, uses []use) error {
	type want struct {
		at   int32  // its entry, +1 (0: not in the pack)
		left int32  // uses still to write
		b    []byte // extracted, while uses are left
	}
	wants := make(map[data.ID]want, len(uses))
	for _, u := range uses {
		w := wants[u.id]
		w.left++
		wants[u.id] = w
	}
	for i, e := range entries {
		if w, ok := wants[e.ID]; ok {
			w.at = int32(i + 1)
			wants[e.ID] = w
		}
	}
	for _, u := range uses {
		w := wants[u.id]
		b := w.b
		if b == nil {
			if w.at == 0 {
				return fmt.Errorf("chunk %s is not in its pack", u.id.Short())
			}
			var err error
			if b, err = pack.Extract(plain, entries[w.at-1], p.cfg.Keyer); err != nil {
				return err
			}
		}
		if w.left--; w.left > 0 {
			w.b = b
		} else {
			w.b = nil
		}
		wants[u.id] = w
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
	defer it.mu.Unlock()
	if it.lost || it.done {
		return nil // another of its chunks was lost: the file is not restored
	}
	var f *outFile
	var err error
	if it.created {
		f, err = it.open()
	} else {
		f, err = p.create(it)
	}
	if err == nil {
		_, err = f.WriteAt(b, u.offset)
	}
	if it.left--; err == nil && it.left == 0 {
		err = p.finishFile(it, f) // closes f
		if err == nil {
			p.doneFiles.Add(1)
		}
	} else if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return destError{fmt.Errorf("restore %s: %w", it.path(), err)}
	}
	p.doneBytes.Add(int64(len(b)))
	return nil
}

// create makes the item's temporary file and returns it open for writing;
// a file of more than one chunk gets its blocks allocated at its full size
// (it.mu held).
// The file is new and its own: a leftover of an earlier restore, or
// anything planted at its name (a symlink to a file outside the target),
// is removed first — never followed — and the file is made exclusively.
func (p *plan) create(it *item) (*outFile, error) {
	tmp := it.tmp()
	perm, _ := createPerm(it)
	flags := unix.O_CREAT | unix.O_EXCL | unix.O_WRONLY | unix.O_NOFOLLOW
	f, err := openOut(tmp, flags, perm)
	if errors.Is(err, fs.ErrExist) {
		// A leftover, or something planted: removed, never followed.
		if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("restore %s: clear the temporary name: %w", it.path(), err)
		}
		f, err = openOut(tmp, flags, perm)
	}
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", it.path(), err)
	}
	it.created = true
	p.track(it, true)
	if it.left > 1 {
		// Opened again for each later chunk: its identity is checked.
		it.ino, err = idOf(f)
		if err == nil && it.size > 0 {
			// The blocks are reserved at once, as restic does: the
			// writes then fill allocated space (cheaper than a sparse
			// file's), and a destination without room says so before
			// anything is written. A file written in one piece needs no
			// reservation.
			err = f.Allocate(it.size)
			if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
				err = f.Truncate(it.size) // a file system without fallocate
			}
		}
	}
	if err != nil {
		_ = f.Close() // the error is what counts
		return nil, fmt.Errorf("restore %s: %w", it.path(), err)
	}
	return f, nil
}

// createPerm is the permission a file's temporary file is made with, and
// whether it needs a chmod once whole: its own permission when the umask
// leaves it whole and the file can be opened again for writing (or is
// written in one piece), with no setuid, setgid or sticky bit; else 0600.
func createPerm(it *item) (fs.FileMode, bool) {
	perm := it.mode.Perm()
	if m, ok := umask(); ok && it.mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) == 0 &&
		perm&m == 0 && (perm&0o200 != 0 || it.left == 1) {
		return perm, false
	}
	return 0o600, true
}

// umask returns the process's umask, read once from /proc (setting it to
// read it would race with files made meanwhile).
var umask = sync.OnceValues(func() (fs.FileMode, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			return fs.FileMode(m) & fs.ModePerm, err == nil
		}
	}
	return 0, false
})

// open opens the item's temporary file again for writing, refusing
// anything but the very file create made (it.mu held).
func (it *item) open() (*outFile, error) {
	f, err := openOut(it.tmp(), unix.O_WRONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	id, err := idOf(f)
	if err == nil && id != it.ino {
		err = fmt.Errorf("%s was replaced during the restore: refusing to write through it", it.tmp())
	}
	if err != nil {
		_ = f.Close() // not written to
		return nil, err
	}
	return f, nil
}

func idOf(f *outFile) (fileID, error) {
	var st unix.Stat_t
	if err := f.Stat(&st); err != nil {
		return fileID{}, err
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino}, nil
}

// finishFile gives a complete file its mode and times, through f, its
// open temporary file, which it closes, and its real name (it.mu held).
func (p *plan) finishFile(it *item, f *outFile) error {
	var err error
	if _, chmod := createPerm(it); chmod {
		err = f.Chmod(it.mode.Perm() | it.mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
	}
	if err == nil {
		// Through the open file: times to the nanosecond (futimens).
		ts := unix.NsecToTimespec(it.mtime)
		err = f.SetTimes([2]unix.Timespec{ts, ts})
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// rename(2) itself: os.Rename looks at the new name first, a
		// system call per file that a restore of many small files feels.
		err = syscall.Rename(it.tmp(), it.path())
	}
	if err != nil {
		return fmt.Errorf("restore %s: %w", it.path(), err)
	}
	it.done = true
	p.track(it, false)
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
