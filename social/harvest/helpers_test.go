package harvest

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/json"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// fixtures returns the folder of the real exports (README.md there says
// where they come from): $PLUG_FIXTURES, else the copy in the repository's
// testdata/fixtures.
func fixtures(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("PLUG_FIXTURES")
	if dir == "" {
		dir = filepath.Join("..", "..", "testdata", "fixtures")
	}
	if _, err := os.Stat(filepath.Join(dir, "mastodon-archive", "outbox.json")); err != nil {
		t.Fatalf("fixtures not found in %s (%v): set PLUG_FIXTURES to the folder holding mastodon-archive/ and twitter-archive/", dir, err)
	}
	return dir
}

func mastodonFixture(t testing.TB) string { return filepath.Join(fixtures(t), "mastodon-archive") }
func twitterFixture(t testing.TB) string  { return filepath.Join(fixtures(t), "twitter-archive") }

// memSink is a Sink that keeps items by key, as the social package does.
type memSink struct {
	mu    sync.Mutex
	items map[string]Item
	order []string
}

func newMemSink() *memSink { return &memSink{items: map[string]Item{}} }

func (s *memSink) sink(_ context.Context, it Item) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := it.Key()
	if _, ok := s.items[k]; ok {
		return false, nil
	}
	s.items[k] = it
	s.order = append(s.order, k)
	return true, nil
}

// find returns the item whose original ID is id.
func (s *memSink) find(t *testing.T, src Source, id string) Item {
	t.Helper()
	it, ok := s.items[string(src)+":"+id]
	if !ok {
		t.Fatalf("no item %s:%s among %d", src, id, len(s.items))
	}
	return it
}

// entry is a file to pack into a test archive.
type entry struct {
	name string
	data []byte
	link string // a symbolic link's target (tar only)
}

// dirEntries reads the files of a folder as archive entries under prefix.
func dirEntries(t testing.TB, dir, prefix string) []entry {
	t.Helper()
	var out []entry
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, entry{name: prefix + filepath.ToSlash(rel), data: b})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// writeZip packs entries into a zip file.
func writeZip(t testing.TB, path string, entries []entry) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		w, err := zw.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeTarGz packs entries into a tar.gz file (a plain tar when path does
// not end in gz).
func writeTarGz(t testing.TB, path string, entries []entry) string {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if strings.HasSuffix(path, "gz") {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}
		if e.link != "" {
			hdr = &tar.Header{Name: e.name, Mode: 0o777, Typeflag: tar.TypeSymlink, Linkname: e.link}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.link == "" {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeDir writes entries into a folder.
func writeDir(t testing.TB, dir string, entries []entry) string {
	t.Helper()
	for _, e := range entries {
		p := filepath.Join(dir, filepath.FromSlash(e.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if e.link != "" {
			if err := os.Symlink(e.link, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, e.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// checkAccounted fails unless every entry seen is accounted for.
func checkAccounted(t *testing.T, rep Report) {
	t.Helper()
	if got := rep.Imported + rep.Duplicates + rep.Skipped; got != rep.Seen {
		t.Fatalf("Imported+Duplicates+Skipped = %d+%d+%d = %d, want Seen = %d", rep.Imported, rep.Duplicates, rep.Skipped, got, rep.Seen)
	}
	n := 0
	for _, c := range rep.SkipReasons {
		n += c
	}
	if n != rep.Skipped {
		t.Fatalf("skip reasons add up to %d, want Skipped = %d (%v)", n, rep.Skipped, rep.SkipReasons)
	}
}

// checkSafeText fails unless s is valid UTF-8 with no '<' starting a tag
// and no control characters but newlines.
func checkSafeText(t *testing.T, what, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("%s: invalid UTF-8: %q", what, s)
	}
	if i := tagStart(s); i >= 0 {
		t.Fatalf("%s: a tag survives at %d: %q", what, i, s)
	}
	for _, r := range s {
		if r != '\n' && unicode.IsControl(r) {
			t.Fatalf("%s: control character %U in %q", what, r, s)
		}
	}
}

// tagStart returns where '<' is directly followed by a letter, '/', '!' or
// '?', or -1.
func tagStart(s string) int {
	for i := 0; i+1 < len(s); i++ {
		if s[i] != '<' {
			continue
		}
		r, _ := utf8.DecodeRuneInString(s[i+1:])
		if unicode.IsLetter(r) || r == '/' || r == '!' || r == '?' {
			return i
		}
	}
	return -1
}

// countOrderedItems counts an outbox's activities independently of the
// code under test.
func countOrderedItems(t testing.TB, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OrderedItems []json.RawMessage `json:"orderedItems"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return len(doc.OrderedItems)
}

// writeZipClaims packs entries into a zip file whose headers claim the
// uncompressed sizes in claims, whatever the data.
func writeZipClaims(t testing.TB, path string, entries []entry, claims map[string]uint64) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		var comp bytes.Buffer
		fw, err := flate.NewWriter(&comp, flate.BestSpeed)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(e.data); err != nil {
			t.Fatal(err)
		}
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
		size := uint64(len(e.data))
		if c, ok := claims[e.name]; ok {
			size = c
		}
		w, err := zw.CreateRaw(&zip.FileHeader{
			Name: e.name, Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(e.data),
			CompressedSize64: uint64(comp.Len()), UncompressedSize64: size,
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(comp.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// cutFile keeps the first num/den of the file at path, as a download cut
// short would.
func cutFile(t testing.TB, path string, num, den int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b[:len(b)*num/den], 0o644); err != nil {
		t.Fatal(err)
	}
}

// sparse makes a file of size bytes that takes no room on disk.
func sparse(t testing.TB, path string, size int64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// heapGrowth returns how many bytes f allocated.
func heapGrowth(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// peakHeap runs f and returns the heap in use before it and the highest
// seen while it ran (sampled every millisecond).
func peakHeap(f func()) (base, peak uint64) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base = ms.HeapInuse
	done := make(chan struct{})
	sampled := make(chan uint64)
	go func() {
		var ms runtime.MemStats
		var peak uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-done:
				sampled <- peak
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(done)
	return base, <-sampled
}
