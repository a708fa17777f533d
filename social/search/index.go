package search

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/plug-net/plug/store/durable"
)

// Limits on what goes into the index.
const (
	// MaxTextBytes is how much of a document's Text is indexed; the rest
	// (long harvested articles) is ignored, so that one item cannot make a
	// batch take unbounded memory.
	MaxTextBytes = 64 << 10

	// putBatchSize is how many documents go into one bleve batch. Each
	// batch becomes one segment that is written and synced before Put
	// goes on, so memory stays bounded however many documents Put gets.
	putBatchSize = 1000
)

// ErrDamaged is wrapped by the error [Open] returns when the index
// directory holds something that cannot be opened as an index of this
// version: garbage files, a half-written index, or an index built by an
// older, incompatible version of this package. Search wraps it too when
// reading the index fails in a way only damage explains. The caller
// removes the directory, opens it again and reindexes from its store.
var ErrDamaged = errors.New("search index damaged")

// ErrClosed is returned by calls on an index after Close.
var ErrClosed = errors.New("search index closed")

// Doc is one item to index. Only ID is stored; the other fields are
// analysed for search and then dropped.
type Doc struct {
	ID      string    // the caller's item key; unique, not empty
	Text    string    // body; English stemming ("running" finds "run")
	Summary string    // content warning or title; searched like Text
	Author  string    // matched by from:, case-insensitively, a leading "@" ignored
	Source  string    // the entry's source ("plug", or an importer's: "mastodon", ...); matched by source:
	Tags    []string  // matched by #tag, case-insensitively, a leading "#" ignored
	Time    time.Time // breaks ties between equal scores, newest first
}

// Field names in the bleve mapping.
const (
	fieldText    = "text"
	fieldSummary = "summary"
	fieldAuthor  = "author"
	fieldSource  = "source"
	fieldTags    = "tags"
	fieldTime    = "time"
)

// formatVersion is kept in the index. Open refuses (with ErrDamaged) an
// index whose version differs, so changing the mapping or the
// normalisation below only needs a bump here: the caller then rebuilds.
const (
	formatKey     = "plug.search.format"
	formatVersion = "1"
)

// Every write (Put, Delete) carries a generation number, stored inside the
// index by the same batch and, once the batch is durable, in genFile next
// to the index. Scorch, when the newest snapshot of an index cannot be
// loaded (a damaged or missing segment), silently falls back to an older
// one; Open notices because the index's generation is then behind
// genFile's, and reports ErrDamaged rather than serving a stale index.
const (
	genKey  = "plug.search.gen"
	genFile = "plug-search-gen"
)

// bdoc is what bleve sees of a Doc; field names come from the json tags.
type bdoc struct {
	Text    string   `json:"text"`
	Summary string   `json:"summary"`
	Author  string   `json:"author"`
	Source  string   `json:"source"`
	Tags    []string `json:"tags"`
	Time    string   `json:"time"` // timeKey(Doc.Time)
}

// Index is a full-text index over documents. It is safe for concurrent
// use. Close it to release the directory.
type Index struct {
	idx    bleve.Index
	an     analysis.Analyzer // the analyser of the text fields, for queries
	dir    string            // "" for an in-memory index
	closed atomic.Bool

	mu  sync.Mutex // serialises writes, so generations stay in order
	gen uint64     // generation of the last write; see genKey
}

// analyzerName is the analyser of Text and Summary.
const analyzerName = en.AnalyzerName

func newIndex(idx bleve.Index, dir string) *Index {
	return &Index{idx: idx, dir: dir, an: idx.Mapping().AnalyzerNamed(analyzerName)}
}

// newMapping builds the index mapping: English analysis for the text
// fields, keywords for author, source and tags, a sortable time, and
// nothing stored (the document ID is kept by bleve itself).
func newMapping() *mapping.IndexMappingImpl {
	text := func() *mapping.FieldMapping {
		f := mapping.NewTextFieldMapping()
		f.Analyzer = analyzerName
		f.Store = false
		f.IncludeInAll = false
		f.DocValues = false         // never sorted or faceted on
		f.IncludeTermVectors = true // positions, for "exact phrase"
		return f
	}
	kw := func() *mapping.FieldMapping {
		f := mapping.NewKeywordFieldMapping()
		f.Analyzer = keyword.Name
		f.Store = false
		f.IncludeInAll = false
		f.DocValues = false
		f.IncludeTermVectors = false
		f.SkipFreqNorm = true // a filter: every match scores the same
		return f
	}
	// Time is a keyword holding timeKey, not a datetime: a datetime is
	// indexed as 16 prefix-coded terms per document, all of them kept in
	// doc values, and sorting by it decompressed ~16 times as much per hit.
	tm := kw()
	tm.DocValues = true // for the newest-first tie break

	dm := mapping.NewDocumentStaticMapping()
	dm.AddFieldMappingsAt(fieldText, text())
	dm.AddFieldMappingsAt(fieldSummary, text())
	dm.AddFieldMappingsAt(fieldAuthor, kw())
	dm.AddFieldMappingsAt(fieldSource, kw())
	dm.AddFieldMappingsAt(fieldTags, kw())
	dm.AddFieldMappingsAt(fieldTime, tm)
	dm.AddSubDocumentMapping("_all", mapping.NewDocumentDisabledMapping())

	im := bleve.NewIndexMapping()
	im.DefaultMapping = dm
	im.DefaultAnalyzer = analyzerName
	im.StoreDynamic = false
	im.IndexDynamic = false
	im.DocValuesDynamic = false
	return im
}

// scorchConfig is the configuration given to scorch when an index is
// created or opened.
func scorchConfig() map[string]any {
	return map[string]any{
		// Another process holding the directory makes Open fail after a
		// second instead of hanging.
		"bolt_timeout": "1s",
	}
}

// Open opens the index in dir, creating it (and dir) when dir does not
// exist or is empty. When dir holds anything that cannot be opened as an
// index of this version, the error wraps [ErrDamaged]: remove dir, open
// again and reindex. Other errors (permissions, the index held open by
// another process) do not wrap ErrDamaged, and removing dir would not help.
func Open(dir string) (*Index, error) {
	if dir == "" {
		return nil, errors.New("open search index: empty directory name")
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) || (err == nil && len(entries) == 0):
		return create(dir)
	case err != nil:
		if fi, serr := os.Stat(dir); serr == nil && !fi.IsDir() {
			return nil, fmt.Errorf("open search index %s: %w: not a directory", dir, ErrDamaged)
		}
		return nil, fmt.Errorf("open search index %s: %w", dir, err)
	}
	idx, err := openExisting(dir)
	if err != nil {
		return nil, err
	}
	x := newIndex(idx, dir)
	if err := x.check(); err != nil {
		_ = idx.Close()
		return nil, fmt.Errorf("open search index %s: %w", dir, err)
	}
	return x, nil
}

// openExisting opens the bleve index in dir, classifying failures as
// damage or not. Opening a damaged segment can panic inside bleve; that is
// damage too.
func openExisting(dir string) (idx bleve.Index, err error) {
	defer func() {
		if r := recover(); r != nil {
			idx, err = nil, fmt.Errorf("open search index %s: %w: %v", dir, ErrDamaged, r)
		}
	}()
	idx, err = bleve.OpenUsing(dir, scorchConfig())
	switch {
	case err == nil:
		return idx, nil
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("open search index %s: in use by another process (or another Open in this one): %w", dir, err)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("open search index %s: %w", dir, err)
	default:
		return nil, fmt.Errorf("open search index %s: %w: %v", dir, ErrDamaged, err)
	}
}

// create makes a new, empty index in dir.
func create(dir string) (*Index, error) {
	idx, err := bleve.NewUsing(dir, newMapping(), scorch.Name, scorch.Name, scorchConfig())
	if err != nil {
		return nil, fmt.Errorf("create search index %s: %w", dir, err)
	}
	x := newIndex(idx, dir)
	b := idx.NewBatch()
	b.SetInternal([]byte(formatKey), []byte(formatVersion))
	if err := x.write(b); err != nil {
		_ = idx.Close()
		return nil, fmt.Errorf("create search index %s: %w", dir, err)
	}
	return x, nil
}

// OpenMem returns an empty index held in memory only, for tests and
// tools. Close releases it.
func OpenMem() (*Index, error) {
	idx, err := bleve.NewUsing("", newMapping(), scorch.Name, scorch.Name, nil)
	if err != nil {
		return nil, fmt.Errorf("create in-memory search index: %w", err)
	}
	return newIndex(idx, ""), nil
}

// check reports ErrDamaged unless the index was written with the current
// formatVersion and holds every write that genFile says was made. It sets
// x.gen.
func (x *Index) check() error {
	v, err := x.idx.GetInternal([]byte(formatKey))
	if err != nil {
		return fmt.Errorf("%w: read format version: %v", ErrDamaged, err)
	}
	if string(v) != formatVersion {
		return fmt.Errorf("%w: format version %q, this plug writes %q", ErrDamaged, v, formatVersion)
	}
	g, err := x.idx.GetInternal([]byte(genKey))
	if err != nil || len(g) != 8 {
		return fmt.Errorf("%w: read generation: %q, %v", ErrDamaged, g, err)
	}
	x.gen = binary.BigEndian.Uint64(g)
	data, err := os.ReadFile(filepath.Join(x.dir, genFile))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	want, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrDamaged, genFile, err)
	}
	if x.gen < want {
		return fmt.Errorf("%w: holds writes up to %d of %d; segments were lost", ErrDamaged, x.gen, want)
	}
	return nil
}

// write applies b as the next generation: the generation goes into the
// index with b, and into genFile once b is durable.
func (x *Index) write(b *bleve.Batch) error {
	if x.closed.Load() {
		return ErrClosed
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	gen := x.gen + 1
	b.SetInternal([]byte(genKey), binary.BigEndian.AppendUint64(nil, gen))
	err := x.idx.Batch(b)
	if errors.Is(err, bleve.ErrorIndexClosed) {
		return ErrClosed
	}
	if err != nil {
		return err
	}
	x.gen = gen
	if x.dir == "" {
		return nil
	}
	return writeGen(x.dir, gen)
}

// writeGen replaces genFile in dir, atomically.
func writeGen(dir string, gen uint64) error {
	if err := durable.WriteFile(filepath.Join(dir, genFile), fmt.Appendf(nil, "%d\n", gen), 0o600); err != nil {
		return fmt.Errorf("write generation: %w", err)
	}
	return nil
}

// Put adds documents, replacing any already indexed under the same ID.
// When one ID appears twice, the later document wins. Documents go in
// batches of a thousand; each batch is durable when Put moves on to the
// next, so a failed write can leave the earlier batches indexed (put them
// again: Put is idempotent). A document without an ID fails the call
// before anything is written.
func (x *Index) Put(docs ...Doc) error {
	for i, d := range docs {
		if d.ID == "" {
			return fmt.Errorf("put search document %d of %d: empty ID", i+1, len(docs))
		}
	}
	for start := 0; start < len(docs); start += putBatchSize {
		end := min(start+putBatchSize, len(docs))
		b := x.idx.NewBatch()
		for _, d := range docs[start:end] {
			if err := b.Index(d.ID, toBleve(d)); err != nil {
				return fmt.Errorf("put search document %q: %w", d.ID, err)
			}
		}
		if err := x.write(b); err != nil {
			return fmt.Errorf("put %d search documents: %w", end-start, err)
		}
	}
	return nil
}

// Delete removes documents by ID. IDs that are not indexed are ignored.
func (x *Index) Delete(ids ...string) error {
	for start := 0; start < len(ids); start += putBatchSize {
		end := min(start+putBatchSize, len(ids))
		b := x.idx.NewBatch()
		for _, id := range ids[start:end] {
			if id != "" {
				b.Delete(id)
			}
		}
		if err := x.write(b); err != nil {
			return fmt.Errorf("delete %d search documents: %w", end-start, err)
		}
	}
	return nil
}

// Count returns the number of documents in the index.
func (x *Index) Count() (uint64, error) {
	if x.closed.Load() {
		return 0, ErrClosed
	}
	n, err := x.idx.DocCount()
	if errors.Is(err, bleve.ErrorIndexClosed) {
		return 0, ErrClosed
	}
	if err != nil {
		return 0, fmt.Errorf("count search documents: %w", err)
	}
	return n, nil
}

// Close waits for background merging to stop and releases the index.
// Closing a closed index does nothing.
func (x *Index) Close() error {
	if !x.closed.CompareAndSwap(false, true) {
		return nil
	}
	if err := x.idx.Close(); err != nil && !errors.Is(err, bleve.ErrorIndexClosed) {
		return fmt.Errorf("close search index: %w", err)
	}
	return nil
}

// toBleve converts a Doc to what bleve indexes, normalising the keyword
// fields the way queries are normalised.
func toBleve(d Doc) bdoc {
	b := bdoc{
		Text:    truncate(d.Text, MaxTextBytes),
		Summary: d.Summary,
		Author:  normAuthor(d.Author),
		Source:  normSource(d.Source),
		Time:    timeKey(d.Time),
	}
	for _, t := range d.Tags {
		if t = normTag(t); t != "" {
			b.Tags = append(b.Tags, t)
		}
	}
	return b
}

// timeKey encodes t as 16 hex digits that sort like the times: Unix
// seconds with the sign bit flipped. The zero Time sorts oldest.
func timeKey(t time.Time) string {
	return fmt.Sprintf("%016x", uint64(t.Unix())^(1<<63))
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// normTag lower-cases a tag and drops leading '#'.
func normTag(s string) string {
	return strings.ToLower(strings.TrimLeft(strings.TrimSpace(s), "#"))
}

// normAuthor lower-cases an author and drops one leading '@', so that
// "from:ann@example.social" finds "@Ann@example.social".
func normAuthor(s string) string {
	return strings.ToLower(strings.TrimPrefix(strings.TrimSpace(s), "@"))
}

// normSource lower-cases a source name.
func normSource(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}
