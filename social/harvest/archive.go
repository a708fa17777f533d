package harvest

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"maps"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// archive is a read-only view of an export: an unpacked folder, a zip
// file, or a tar file (gzipped or not). Names are clean slash paths
// relative to the archive's root (see cleanName); nothing is ever extracted.
type archive interface {
	// stat returns the size of the regular file name, or errNoEntry.
	stat(name string) (int64, error)
	// open reads the regular file name on a stream of its own; a file
	// larger than max is refused, and a read past max fails, both with
	// ErrTooLarge.
	open(name string, max int64) (io.ReadCloser, error)
	// openMedia is open for media files. The readers of a tar archive
	// share one stream that moves forward: opening one ends the previous.
	openMedia(name string, max int64) (io.ReadCloser, error)
	// find returns the shallowest regular file whose path is want, or
	// ends in "/"+want one folder deeper (an export packed inside a
	// folder).
	find(want string) (string, bool)
	Close() error
}

// errNoEntry is returned by archive.stat and archive.open for a name the
// archive does not hold.
var errNoEntry = errors.New("not in the archive")

// cleanName turns an entry name into a clean relative slash path. Names
// that are absolute, climb out with "..", hold NUL or are not UTF-8 are
// refused: such entries are ignored, never used.
func cleanName(name string) (string, bool) {
	if name == "" || strings.IndexByte(name, 0) >= 0 || !utf8.ValidString(name) || len(name) > 4096 {
		return "", false
	}
	name = strings.ReplaceAll(name, "\\", "/")
	if strings.HasPrefix(name, "/") || (len(name) >= 2 && name[1] == ':') {
		return "", false
	}
	for _, elem := range strings.Split(name, "/") {
		if elem == ".." {
			return "", false
		}
	}
	name = path.Clean(name)
	if name == "." {
		return "", false
	}
	return name, true
}

// findIn picks, among names, the shallowest that is want or ends in
// "/"+want with at most one more folder.
func findIn(names iter.Seq[string], want string) (string, bool) {
	best, bestDepth := "", 2
	for name := range names {
		if name != want && !strings.HasSuffix(name, "/"+want) {
			continue
		}
		depth := strings.Count(strings.TrimSuffix(name, want), "/")
		if depth < bestDepth || (depth == bestDepth && name < best) {
			best, bestDepth = name, depth
		}
	}
	return best, best != ""
}

// capReader reads at most max bytes from r; reading past them is an error
// wrapping ErrTooLarge, never a silent truncation.
type capReader struct {
	r    io.Reader
	left int64
	max  int64
	what string
}

func newCapReader(r io.Reader, max int64, what string) *capReader {
	return &capReader{r: r, left: max, max: max, what: what}
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, tooLarge(c.what, c.max)
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// tooLarge is the error for an input past its size limit.
func tooLarge(what string, max int64) error {
	return fmt.Errorf("%s is larger than %s, the limit for it: refusing it: %w", what, humanSize(max), ErrTooLarge)
}

// humanSize writes a byte count for people.
func humanSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// closeReader closes an export, or one of its files, or a download: things
// this package opens to read only. What they gave was read, and any error
// of the reading was returned: closing them loses nothing, so the error of
// Close is not looked at.
func closeReader(c io.Closer) { _ = c.Close() }

// readCloser joins a reader to the closer of what it reads.
type readCloser struct {
	io.Reader
	io.Closer
}

// openArchive opens path as an export: a folder, a .zip, a .tar or a
// .tar.gz (recognised by their contents, not their names). A plain file
// that is none of these (outbox.json or tweets.js itself) opens its folder
// and is returned as single. Problems that leave the archive usable (a tar
// cut short) are returned in problems.
func openArchive(ctx context.Context, p string) (a archive, single string, problems []string, err error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, "", nil, fmt.Errorf("open export %s: %w", p, err)
	}
	if fi.IsDir() {
		d, err := openDir(p)
		return d, "", nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, "", nil, fmt.Errorf("open export %s: not a regular file or folder", p)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, "", nil, fmt.Errorf("open export %s: %w", p, err)
	}
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	closeReader(f)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, "", nil, fmt.Errorf("open export %s: %w", p, err)
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")):
		z, err := openZip(p)
		return z, "", nil, err
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		t, problems, err := openTar(ctx, p, true)
		return t, "", problems, err
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		t, problems, err := openTar(ctx, p, false)
		return t, "", problems, err
	}
	d, err := openDir(filepath.Dir(p))
	return d, filepath.Base(p), nil, err
}

// dirArchive is an unpacked export. It reads through an os.Root, so no
// name or symbolic link reaches outside the folder.
type dirArchive struct {
	root *os.Root
	dir  string
}

func openDir(dir string) (*dirArchive, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open export folder %s: %w", dir, err)
	}
	return &dirArchive{root: root, dir: dir}, nil
}

func (d *dirArchive) stat(name string) (int64, error) {
	fi, err := d.root.Stat(filepath.FromSlash(name))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, errNoEntry
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return 0, fmt.Errorf("%s: %w: links out of the export folder are not followed", name, err)
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", name)
	}
	return fi.Size(), nil
}

func (d *dirArchive) open(name string, max int64) (io.ReadCloser, error) {
	size, err := d.stat(name)
	if err != nil {
		return nil, err
	}
	if size > max {
		return nil, tooLarge(fmt.Sprintf("%s (%s)", name, humanSize(size)), max)
	}
	f, err := d.root.Open(filepath.FromSlash(name))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		closeReader(f)
		return nil, fmt.Errorf("open %s: not a regular file", name)
	}
	return readCloser{newCapReader(f, max, name), f}, nil
}

func (d *dirArchive) openMedia(name string, max int64) (io.ReadCloser, error) {
	return d.open(name, max)
}

func (d *dirArchive) find(want string) (string, bool) {
	if _, err := d.stat(want); err == nil {
		return want, true
	}
	dir, err := d.root.Open(".")
	if err != nil {
		return "", false
	}
	defer closeReader(dir)
	entries, err := dir.ReadDir(10000)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", false
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name() + "/" + want
		if _, err := d.stat(name); err == nil {
			return name, true
		}
	}
	return "", false
}

func (d *dirArchive) Close() error { return d.root.Close() }

// zipArchive is a zip file, read through its central directory.
type zipArchive struct {
	zr    *zip.ReadCloser
	files map[string]*zip.File
}

func openZip(p string) (*zipArchive, error) {
	zr, err := zip.OpenReader(p)
	if errors.Is(err, zip.ErrInsecurePath) {
		err = nil // such names are refused one by one below
	}
	if err != nil {
		return nil, fmt.Errorf("open zip archive %s: %w: it is damaged or incomplete (a download cut short?); download the export again", p, err)
	}
	if len(zr.File) > maxArchiveEntries {
		closeReader(zr)
		return nil, fmt.Errorf("open zip archive %s: it has %d entries, more than the %d an export can have", p, len(zr.File), maxArchiveEntries)
	}
	z := &zipArchive{zr: zr, files: make(map[string]*zip.File, len(zr.File))}
	for _, f := range zr.File {
		if !f.Mode().IsRegular() {
			continue // folders, symbolic links, devices
		}
		name, ok := cleanName(f.Name)
		if !ok {
			continue
		}
		if _, dup := z.files[name]; !dup {
			z.files[name] = f
		}
	}
	return z, nil
}

func (z *zipArchive) stat(name string) (int64, error) {
	f, ok := z.files[name]
	if !ok {
		return 0, errNoEntry
	}
	if f.UncompressedSize64 > 1<<62 {
		return 1 << 62, nil
	}
	return int64(f.UncompressedSize64), nil
}

func (z *zipArchive) open(name string, max int64) (io.ReadCloser, error) {
	f, ok := z.files[name]
	if !ok {
		return nil, errNoEntry
	}
	if f.UncompressedSize64 > uint64(max) {
		return nil, tooLarge(fmt.Sprintf("%s (%s by its zip header)", name, humanSize(int64(min(f.UncompressedSize64, 1<<62)))), max)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("open %s in the zip archive: %w", name, err)
	}
	return readCloser{newCapReader(rc, max, name), rc}, nil
}

func (z *zipArchive) openMedia(name string, max int64) (io.ReadCloser, error) {
	return z.open(name, max)
}

func (z *zipArchive) find(want string) (string, bool) {
	return findIn(maps.Keys(z.files), want)
}

func (z *zipArchive) Close() error { return z.zr.Close() }

// tarArchive is a tar file, gzipped or not. It is indexed once when
// opened; each open then reads the stream again up to its entry, and media
// share one stream that moves forward (restarting only when asked for an
// entry behind it), which suits exports whose media come in the order of
// their posts.
type tarArchive struct {
	ctx     context.Context // the import's: it ends every stream
	path    string
	gzipped bool
	entries map[string]tarEntry
	small   map[string][]byte // side files kept from the indexing pass

	mu     sync.Mutex
	media  *tarStream
	gen    uint64
	closed bool
}

// tarEntry locates a regular file: its index among the tar headers.
type tarEntry struct {
	index int
	size  int64
}

// keepSmall names the side files kept in memory while indexing, so that
// reading them does not cost another pass over a big archive.
func keepSmall(name string) bool {
	switch path.Base(name) {
	case "actor.json", "account.js":
		return true
	}
	return false
}

func openTar(ctx context.Context, p string, gzipped bool) (*tarArchive, []string, error) {
	t := &tarArchive{ctx: ctx, path: p, gzipped: gzipped, entries: map[string]tarEntry{}, small: map[string][]byte{}}
	s, err := openTarStream(ctx, p, gzipped)
	if err != nil {
		return nil, nil, err
	}
	defer closeReader(s)
	var problems []string
	for i := 0; ; i++ {
		hdr, err := s.tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			if i == 0 {
				return nil, nil, fmt.Errorf("open tar archive %s: %w: it is not a tar archive, or is damaged", p, err)
			}
			problems = append(problems, fmt.Sprintf("the archive is cut short or damaged after %d entries (%v): anything after that is missing", i, err))
			break
		}
		if i >= maxArchiveEntries {
			return nil, nil, fmt.Errorf("open tar archive %s: more than %d entries, more than an export can have", p, maxArchiveEntries)
		}
		if !hdr.FileInfo().Mode().IsRegular() {
			continue // folders, symbolic and hard links, devices: ignored
		}
		name, ok := cleanName(hdr.Name)
		if !ok {
			continue
		}
		t.entries[name] = tarEntry{index: i, size: hdr.Size}
		delete(t.small, name)
		if keepSmall(name) && hdr.Size <= maxSmallFile {
			b, err := io.ReadAll(io.LimitReader(s.tr, maxSmallFile))
			if err == nil {
				t.small[name] = b
			}
		}
	}
	return t, problems, nil
}

// tarStream is one pass over a tar file.
type tarStream struct {
	f    *os.File
	zr   *gzip.Reader
	tr   *tar.Reader
	next int // index of the header that tr.Next reads next
}

func openTarStream(ctx context.Context, p string, gzipped bool) (*tarStream, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open tar archive %s: %w", p, err)
	}
	s := &tarStream{f: f}
	var r io.Reader = bufio.NewReaderSize(ctxReader{ctx, f}, 64<<10)
	if gzipped {
		s.zr, err = gzip.NewReader(r)
		if err != nil {
			closeReader(f)
			return nil, fmt.Errorf("open tar.gz archive %s: %w: it is damaged or not gzip", p, err)
		}
		r = s.zr
	}
	s.tr = tar.NewReader(r)
	return s, nil
}

// seek moves the stream to the entry with the given header index.
func (s *tarStream) seek(index int) error {
	for s.next <= index {
		if _, err := s.tr.Next(); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read the tar archive: %w", err)
		}
		s.next++
	}
	return nil
}

func (s *tarStream) Close() error {
	if s.zr != nil {
		closeReader(s.zr) // it leaves s.f open: closed below
	}
	return s.f.Close()
}

// ctxReader stops reading when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (t *tarArchive) stat(name string) (int64, error) {
	e, ok := t.entries[name]
	if !ok {
		return 0, errNoEntry
	}
	return e.size, nil
}

func (t *tarArchive) open(name string, max int64) (io.ReadCloser, error) {
	e, ok := t.entries[name]
	if !ok {
		return nil, errNoEntry
	}
	if e.size > max {
		return nil, tooLarge(fmt.Sprintf("%s (%s by its tar header)", name, humanSize(e.size)), max)
	}
	if b, ok := t.small[name]; ok {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	s, err := openTarStream(t.ctx, t.path, t.gzipped)
	if err != nil {
		return nil, err
	}
	if err := s.seek(e.index); err != nil {
		closeReader(s)
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return readCloser{newCapReader(s.tr, max, name), s}, nil
}

func (t *tarArchive) openMedia(name string, max int64) (io.ReadCloser, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, fmt.Errorf("open %s: the import is over, the archive is closed", name)
	}
	e, ok := t.entries[name]
	if !ok {
		return nil, errNoEntry
	}
	if e.size > max {
		return nil, tooLarge(fmt.Sprintf("%s (%s by its tar header)", name, humanSize(e.size)), max)
	}
	if t.media != nil && t.media.next > e.index {
		closeReader(t.media)
		t.media = nil
	}
	if t.media == nil {
		s, err := openTarStream(t.ctx, t.path, t.gzipped)
		if err != nil {
			return nil, err
		}
		t.media = s
	}
	if err := t.media.seek(e.index); err != nil {
		closeReader(t.media)
		t.media = nil
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	t.gen++
	return &tarMediaReader{t: t, gen: t.gen, r: newCapReader(t.media.tr, max, name), name: name}, nil
}

// tarMediaReader reads one entry of the shared media stream, until another
// entry is opened.
type tarMediaReader struct {
	t    *tarArchive
	gen  uint64
	r    io.Reader
	name string
}

func (m *tarMediaReader) Read(p []byte) (int, error) {
	m.t.mu.Lock()
	defer m.t.mu.Unlock()
	if m.t.gen != m.gen || m.t.media == nil {
		return 0, fmt.Errorf("read %s: another media file of the tar archive was opened since; open this one again", m.name)
	}
	return m.r.Read(p)
}

func (m *tarMediaReader) Close() error { return nil }

func (t *tarArchive) find(want string) (string, bool) {
	return findIn(maps.Keys(t.entries), want)
}

func (t *tarArchive) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if t.media != nil {
		closeReader(t.media)
		t.media = nil
	}
	return nil
}
