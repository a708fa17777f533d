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

	"github.com/plug-net/plug/store/kv"
)

// Limits on what goes into the index.
const (
	// MaxTextBytes is how much of a document's Text is indexed; the rest
	// (long harvested articles) is ignored, so that one item cannot make a
	// batch take unbounded memory.
	MaxTextBytes = 64 << 10

	// putBatchSize is how many documents one write applies. Each is
	// durable before Put goes on, so memory stays bounded however many
	// documents Put gets.
	putBatchSize = 1000
)

// ErrDamaged is wrapped by the error [Open] returns when the index
// directory holds something that cannot be opened as an index of this
// version: garbage files, a half-written index, a write cut short by a
// crash, or an index built by an older, incompatible version of this
// package (bleve's, before 2026-12). Writes and Search wrap it too after a
// write failed half-way. The caller removes the directory, opens it again
// and reindexes from its store.
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

// The index is kept in a store/kv database of its own (space kv.Search),
// as five kinds of records:
//
//	'm' name              meta: "format", "state" (counts), "dirty"
//	'd' ID                the document's number, seq (8 bytes)
//	'r' seq               the document: its ID, its batch, the lengths of
//	                      its text fields and its terms (to delete it)
//	'p' field term batch  a block of postings: the documents of one write
//	                      (batch, 8 bytes) that have the term in the field;
//	                      see blockEntries
//	't' seq               the times of the documents of one write, seq
//	                      being the write's last document; see timeBlock
//
// A term is written as its length (uvarint) and its bytes, so no term is
// a prefix of another's key. Numbers in keys are big-endian, so they sort.
//
// Postings are kept in blocks, one per term and write, rather than one
// record per posting: a write of a thousand documents makes about as
// many records as it has distinct terms, and a search reads each term's
// postings as a few long values, adding up their counts for the term's
// document frequency. Within a block, documents are numbered by the
// difference from the one before, a byte or two. Deleting a document
// rewrites the blocks of its write that hold it; the times are never
// rewritten (a deleted document's time is simply never asked for).
const (
	recMeta    = 'm'
	recDocKey  = 'd'
	recDoc     = 'r'
	recPosting = 'p'
	recTimes   = 't'
)

// The fields.
const (
	fieldText byte = 1 + iota
	fieldSummary
	fieldAuthor
	fieldSource
	fieldTag
)

// textField reports whether f is analysed text (scored, with positions).
func textField(f byte) bool { return f == fieldText || f == fieldSummary }

// formatVersion is kept in the index. Open refuses (with ErrDamaged) an
// index whose version differs, so changing the layout or the analysis
// only needs a bump here: the caller then rebuilds.
const formatVersion = "plug-search-3"

// Memory for the index's database: it is a cache of small records, so it
// gets smaller memtables and caches than the plug's own database, keeps
// its values (blocks of postings, records) in the value log so that
// compaction moves only keys, and, on 64-bit machines, tables of 512 KiB,
// which bound what a compaction holds in the heap (peak heap while
// indexing 100,000 items: 20-25 MiB; 55-113 MiB with badger's tables).
//
// On 32-bit ARM, badger with tables that small read a corrupt block
// ("slice bounds out of range" in table.(*Table).block) in
// TestPutManyBatches under qemu-arm; the cause is not found yet, so
// 32-bit machines keep badger's table size.
var dbOptions = func() kv.Options {
	o := kv.Options{
		ValueThreshold:   64,
		MemTableSize:     2 << 20,
		BlockCacheSize:   2 << 20,
		IndexCacheSize:   1 << 20,
		ValueLogFileSize: 16 << 20,
	}
	if strconv.IntSize == 64 {
		o.TableSize = 512 << 10
	}
	return o
}()

// state is what the index keeps counted: the documents, the total length
// of each text field (for the average length in scoring), and the last
// sequence number given to a document and to a write.
type state struct {
	docs, textLen, summaryLen, seq, batch uint64
}

func (s state) encode() []byte {
	var b []byte
	for _, v := range [...]uint64{s.docs, s.textLen, s.summaryLen, s.seq, s.batch} {
		b = binary.AppendUvarint(b, v)
	}
	return b
}

func decodeState(b []byte) (state, error) {
	var v [5]uint64
	for i := range v {
		n, k := binary.Uvarint(b)
		if k <= 0 {
			return state{}, errors.New("state record is malformed")
		}
		v[i], b = n, b[k:]
	}
	return state{docs: v[0], textLen: v[1], summaryLen: v[2], seq: v[3], batch: v[4]}, nil
}

// Index is a full-text index over documents. It is safe for concurrent
// use. Close it to release the directory.
type Index struct {
	db  *kv.DB
	dir string // "" in memory

	mu     sync.Mutex // writes hold it; Close takes it to wait for them
	closed atomic.Bool
	broken atomic.Pointer[error] // a write that failed half-way: rebuild
	st     atomic.Pointer[state]
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
	fresh := errors.Is(err, fs.ErrNotExist) || (err == nil && len(entries) == 0)
	if err != nil && !fresh {
		if fi, serr := os.Stat(dir); serr == nil && !fi.IsDir() {
			return nil, fmt.Errorf("open search index %s: %w: not a directory", dir, ErrDamaged)
		}
		return nil, fmt.Errorf("open search index %s: %w", dir, err)
	}
	db, err := openDB(dir)
	if err != nil {
		return nil, err
	}
	x := &Index{db: db, dir: dir}
	if err := x.load(fresh); err != nil {
		_ = db.Close() // the error reported is the one that matters
		return nil, fmt.Errorf("open search index %s: %w", dir, err)
	}
	return x, nil
}

// openDB opens the database in dir, classifying failures as damage or not.
func openDB(dir string) (db *kv.DB, err error) {
	defer func() {
		// badger can panic on files it cannot make sense of.
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("open search index %s: %w: %v", dir, ErrDamaged, r)
		}
	}()
	db, err = kv.Open(dir, dbOptions)
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, kv.ErrLocked):
		return nil, fmt.Errorf("open search index %s: in use by another process (or another Open in this one): %w", dir, err)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("open search index %s: %w", dir, err)
	default:
		return nil, fmt.Errorf("open search index %s: %w: %v", dir, ErrDamaged, err)
	}
}

// OpenMem returns an empty index held in memory only, for tests and
// tools. Close releases it.
func OpenMem() (*Index, error) {
	db, err := kv.Open("", kv.Options{InMemory: true, MemTableSize: dbOptions.MemTableSize})
	if err != nil {
		return nil, fmt.Errorf("create in-memory search index: %w", err)
	}
	x := &Index{db: db}
	if err := x.load(true); err != nil {
		_ = db.Close() // the error reported is the one that matters
		return nil, fmt.Errorf("create in-memory search index: %w", err)
	}
	return x, nil
}

// load reads the index's meta records, or writes them when fresh. It
// reports ErrDamaged for an index of another format, one without meta
// records (a directory of something else), or one whose last write was
// cut short.
func (x *Index) load(fresh bool) error {
	var format, st, dirty []byte
	var okFormat, okState, okDirty bool
	err := x.db.View(func(tx *kv.Tx) (err error) {
		if format, okFormat, err = tx.Lookup(kv.Search, metaKey("format"), nil); err != nil {
			return err
		}
		if st, okState, err = tx.Lookup(kv.Search, metaKey("state"), nil); err != nil {
			return err
		}
		dirty, okDirty, err = tx.Lookup(kv.Search, metaKey("dirty"), nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("%w: read meta records: %v", ErrDamaged, err)
	}
	if !okFormat {
		if !fresh {
			if _, err := os.Stat(filepath.Join(x.dir, "index_meta.json")); err == nil {
				return fmt.Errorf("%w: it is the search index of an older plug (bleve's), which this plug rebuilds in its own format", ErrDamaged)
			}
			return fmt.Errorf("%w: the directory holds no search index of this plug", ErrDamaged)
		}
		s := state{}
		err := x.db.UpdateSync(func(tx *kv.Tx) error {
			if err := tx.Put(kv.Search, metaKey("format"), []byte(formatVersion)); err != nil {
				return err
			}
			return tx.Put(kv.Search, metaKey("state"), s.encode())
		})
		if err != nil {
			return fmt.Errorf("write meta records: %w", err)
		}
		x.st.Store(&s)
		return nil
	}
	if string(format) != formatVersion {
		return fmt.Errorf("%w: format %q, this plug writes %q", ErrDamaged, format, formatVersion)
	}
	if okDirty {
		return fmt.Errorf("%w: a write was cut short (%s)", ErrDamaged, dirty)
	}
	if !okState {
		return fmt.Errorf("%w: no state record", ErrDamaged)
	}
	s, err := decodeState(st)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	x.st.Store(&s)
	return nil
}

func metaKey(name string) []byte { return append([]byte{recMeta}, name...) }

// appendTerm appends field and term as they start a posting or df key.
func appendTerm(b []byte, field byte, term string) []byte {
	b = append(b, field)
	b = binary.AppendUvarint(b, uint64(len(term)))
	return append(b, term...)
}

// postingPrefix is the key prefix of a term's blocks in field.
func postingPrefix(field byte, term string) []byte {
	return appendTerm([]byte{recPosting}, field, term)
}

// blockKey is the key of the block of a term's postings in field made by
// write number batch.
func blockKey(field byte, term string, batch uint64) []byte {
	return binary.BigEndian.AppendUint64(postingPrefix(field, term), batch)
}

func seqKey(rec byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{rec}, seq)
}

// posting is one term of a document in one field.
type posting struct {
	field byte
	term  string
	val   []byte // for a text field: length, frequency, positions; see blockEntries
}

// A block holds the number of its entries (uvarint), then the entries in
// the order of their documents. An entry is the document's number less
// the one before it in the block (the first: less 0), then for a text
// field the field's length in terms, the term's frequency in it and its
// positions, each as the difference from the one before, all uvarints.

// entry is one document's entry in a block.
type entry struct {
	seq       uint64
	flen, tf  uint64
	positions []byte // aliases the block: tf uvarints
}

// blockEntries reads the number of entries at the start of a block and
// returns the entries.
func blockEntries(b []byte) (uint64, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return 0, nil, errBlock
	}
	return n, b[k:], nil
}

var errBlock = fmt.Errorf("%w: block of postings is malformed", ErrDamaged)

// nextEntry decodes the entry at the start of b, whose document number is
// prev plus what it holds, and returns the rest.
func nextEntry(b []byte, text bool, prev uint64) (entry, []byte, error) {
	d, k := binary.Uvarint(b)
	if k <= 0 {
		return entry{}, nil, errBlock
	}
	e := entry{seq: prev + d}
	b = b[k:]
	if !text {
		return e, b, nil
	}
	if e.flen, k = binary.Uvarint(b); k <= 0 {
		return entry{}, nil, errBlock
	}
	b = b[k:]
	if e.tf, k = binary.Uvarint(b); k <= 0 || e.tf > uint64(len(b)) {
		return entry{}, nil, errBlock
	}
	b = b[k:]
	start := b
	for range e.tf {
		if _, k = binary.Uvarint(b); k <= 0 {
			return entry{}, nil, errBlock
		}
		b = b[k:]
	}
	e.positions = start[:len(start)-len(b)]
	return e, b, nil
}

// decodePositions decodes an entry's positions, in order, into dst.
func (e entry) decodePositions(dst []uint64) []uint64 {
	b := e.positions
	var last uint64
	for len(b) > 0 {
		d, k := binary.Uvarint(b)
		b = b[k:]
		last += d
		dst = append(dst, last)
	}
	return dst
}

// appendEntry appends to a block the entry of document seq, prev being
// the block's entry before (0 for the first); val is the text field's
// part of the entry (nil for the others).
func appendEntry(block []byte, prev, seq uint64, val []byte) []byte {
	block = binary.AppendUvarint(block, seq-prev)
	return append(block, val...)
}

// A time block holds the number of its entries (uvarint), then for each
// document of the write its number less the one before (uvarint) and its
// time: Unix seconds with the sign bit flipped, 8 bytes big-endian, so
// that later times are larger.
func timeKey(t time.Time) uint64 { return uint64(t.Unix()) ^ (1 << 63) }

// analysed is a document turned into its postings.
type analysed struct {
	id                  string
	time                time.Time
	textLen, summaryLen int
	postings            []posting
}

// analyseDoc turns d into postings, normalising the keyword fields the
// way queries are normalised.
func analyseDoc(d Doc) analysed {
	a := analysed{id: d.ID, time: d.Time}
	for _, f := range [...]struct {
		field byte
		text  string
		n     *int
	}{{fieldText, truncate(d.Text, MaxTextBytes), &a.textLen}, {fieldSummary, d.Summary, &a.summaryLen}} {
		toks := analyse(f.text)
		*f.n = len(toks)
		at := make(map[string][]int, len(toks))
		var order []string
		for _, t := range toks {
			if _, ok := at[t.term]; !ok {
				order = append(order, t.term)
			}
			at[t.term] = append(at[t.term], t.pos)
		}
		for _, term := range order {
			pos := at[term]
			v := binary.AppendUvarint(nil, uint64(len(toks)))
			v = binary.AppendUvarint(v, uint64(len(pos)))
			last := 0
			for _, p := range pos {
				v = binary.AppendUvarint(v, uint64(p-last))
				last = p
			}
			a.postings = append(a.postings, posting{field: f.field, term: term, val: v})
		}
	}
	keyword := func(field byte, v string) {
		if v == "" {
			return
		}
		for _, p := range a.postings {
			if p.field == field && p.term == v {
				return
			}
		}
		a.postings = append(a.postings, posting{field: field, term: v})
	}
	keyword(fieldAuthor, normAuthor(d.Author))
	keyword(fieldSource, normSource(d.Source))
	for _, t := range d.Tags {
		keyword(fieldTag, normTag(t))
	}
	return a
}

// record encodes the document record: ID, batch, field lengths, terms.
func (a analysed) record(batch uint64) []byte {
	b := binary.AppendUvarint(nil, uint64(len(a.id)))
	b = append(b, a.id...)
	b = binary.AppendUvarint(b, batch)
	b = binary.AppendUvarint(b, uint64(a.textLen))
	b = binary.AppendUvarint(b, uint64(a.summaryLen))
	b = binary.AppendUvarint(b, uint64(len(a.postings)))
	for _, p := range a.postings {
		b = appendTerm(b, p.field, p.term)
	}
	return b
}

// docRecord is a decoded document record.
type docRecord struct {
	seq                 uint64 // not in the record: its key
	id                  string
	batch               uint64
	textLen, summaryLen uint64
	terms               []posting // without values
}

// decodeRecord decodes a document record; with idOnly it stops after
// the ID.
func decodeRecord(b []byte, idOnly bool) (docRecord, error) {
	var r docRecord
	bad := errors.New("document record is malformed")
	str := func() (string, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return "", false
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, true
	}
	num := func() (uint64, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 {
			return 0, false
		}
		b = b[k:]
		return n, true
	}
	var ok bool
	if r.id, ok = str(); !ok {
		return r, bad
	}
	if idOnly {
		return r, nil
	}
	var n uint64
	if r.batch, ok = num(); !ok {
		return r, bad
	}
	if r.textLen, ok = num(); !ok {
		return r, bad
	}
	if r.summaryLen, ok = num(); !ok {
		return r, bad
	}
	if n, ok = num(); !ok || n > uint64(len(b)) {
		return r, bad
	}
	r.terms = make([]posting, 0, n)
	for range n {
		if len(b) == 0 {
			return r, bad
		}
		field := b[0]
		b = b[1:]
		term, ok := str()
		if !ok {
			return r, bad
		}
		r.terms = append(r.terms, posting{field: field, term: term})
	}
	return r, nil
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
		if err := x.write(docs[start:end], nil); err != nil {
			return fmt.Errorf("put %d search documents: %w", end-start, err)
		}
	}
	return nil
}

// Delete removes documents by ID. IDs that are not indexed are ignored.
func (x *Index) Delete(ids ...string) error {
	for start := 0; start < len(ids); start += putBatchSize {
		end := min(start+putBatchSize, len(ids))
		if err := x.write(nil, ids[start:end]); err != nil {
			return fmt.Errorf("delete %d search documents: %w", end-start, err)
		}
	}
	return nil
}

// write applies one batch: the documents in put replace any of the same
// ID, and those in del go. The batch may be committed in several
// transactions: a "dirty" mark is its first write and its removal the
// last, so an index found marked was cut short and is damaged. The batch
// is durable when write returns.
func (x *Index) write(put []Doc, del []string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.usable(); err != nil {
		return err
	}

	// The later of two documents with one ID wins.
	last := make(map[string]int, len(put))
	for i, d := range put {
		last[d.ID] = i
	}
	var add []analysed
	for i, d := range put {
		if last[d.ID] == i {
			add = append(add, analyseDoc(d))
		}
	}
	gone := make(map[string]bool, len(del)+len(add))
	for _, id := range del {
		if id != "" {
			gone[id] = true
		}
	}
	for _, a := range add {
		gone[a.id] = true
	}

	// Read what the batch replaces or deletes, and the blocks that hold
	// them.
	var olds []docRecord
	oldSeqs := make(map[uint64]bool)
	blocks := make(map[string][]byte) // block key → block, for the blocks that lose entries
	err := x.db.View(func(tx *kv.Tx) error {
		for id := range gone {
			sk, ok, err := tx.Lookup(kv.Search, append([]byte{recDocKey}, id...), nil)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if len(sk) != 8 {
				return fmt.Errorf("%w: document %q has a number of %d bytes", ErrDamaged, id, len(sk))
			}
			seq := binary.BigEndian.Uint64(sk)
			rb, ok, err := tx.Lookup(kv.Search, seqKey(recDoc, seq), nil)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%w: document %q has no record", ErrDamaged, id)
			}
			rec, err := decodeRecord(rb, false)
			if err != nil {
				return fmt.Errorf("%w: document %q: %v", ErrDamaged, id, err)
			}
			rec.seq = seq
			olds = append(olds, rec)
			oldSeqs[seq] = true
			for _, p := range rec.terms {
				bk := string(blockKey(p.field, p.term, rec.batch))
				if _, ok := blocks[bk]; ok {
					continue
				}
				b, ok, err := tx.Lookup(kv.Search, []byte(bk), nil)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("%w: document %q has no postings for a term", ErrDamaged, id)
				}
				blocks[bk] = b
			}
		}
		return nil
	})
	if err != nil {
		return x.fail(err)
	}

	// The old documents' entries leave their blocks.
	for bk, b := range blocks {
		text := textField(bk[1])
		_, rest, err := blockEntries(b)
		if err != nil {
			return x.fail(err)
		}
		var kept []byte
		var n, prev, keptPrev uint64
		for len(rest) > 0 {
			e, next, err := nextEntry(rest, text, prev)
			if err != nil {
				return x.fail(err)
			}
			if !oldSeqs[e.seq] {
				_, k := binary.Uvarint(rest)
				kept = appendEntry(kept, keptPrev, e.seq, rest[k:len(rest)-len(next)])
				keptPrev = e.seq
				n++
			}
			prev, rest = e.seq, next
		}
		if n == 0 {
			blocks[bk] = nil
		} else {
			blocks[bk] = append(binary.AppendUvarint(nil, n), kept...)
		}
	}

	// The new documents make this write's blocks, in the order of their
	// numbers, and its time block.
	st := *x.st.Load()
	st.batch++
	for _, o := range olds {
		st.docs--
		st.textLen -= o.textLen
		st.summaryLen -= o.summaryLen
	}
	type newEntry struct {
		seq uint64
		val []byte
	}
	fresh := make(map[string][]newEntry)
	seqs := make([]uint64, len(add))
	var times []byte
	var prevT uint64
	for i, a := range add {
		st.seq++
		seqs[i] = st.seq
		for _, p := range a.postings {
			bk := string(blockKey(p.field, p.term, st.batch))
			fresh[bk] = append(fresh[bk], newEntry{st.seq, p.val})
		}
		times = binary.AppendUvarint(times, st.seq-prevT)
		times = binary.BigEndian.AppendUint64(times, timeKey(a.time))
		prevT = st.seq
		st.docs++
		st.textLen += uint64(a.textLen)
		st.summaryLen += uint64(a.summaryLen)
	}

	err = x.db.Batch(func(b *kv.Batch) error {
		if err := b.Put(kv.Search, metaKey("dirty"), []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
			return err
		}
		for _, o := range olds {
			if err := b.Delete(kv.Search, seqKey(recDoc, o.seq)); err != nil {
				return err
			}
			if err := b.Delete(kv.Search, append([]byte{recDocKey}, o.id...)); err != nil {
				return err
			}
		}
		for bk, blk := range blocks {
			var err error
			if len(blk) == 0 {
				err = b.Delete(kv.Search, []byte(bk))
			} else {
				err = b.Put(kv.Search, []byte(bk), blk)
			}
			if err != nil {
				return err
			}
		}
		var blk []byte
		for bk, es := range fresh {
			blk = binary.AppendUvarint(blk[:0], uint64(len(es)))
			var prev uint64
			for _, e := range es {
				blk = appendEntry(blk, prev, e.seq, e.val)
				prev = e.seq
			}
			if err := b.Put(kv.Search, []byte(bk), blk); err != nil {
				return err
			}
		}
		if len(add) > 0 {
			tb := append(binary.AppendUvarint(nil, uint64(len(add))), times...)
			if err := b.Put(kv.Search, seqKey(recTimes, st.seq), tb); err != nil {
				return err
			}
		}
		for i, a := range add {
			if err := b.Put(kv.Search, seqKey(recDoc, seqs[i]), a.record(st.batch)); err != nil {
				return err
			}
			if err := b.Put(kv.Search, append([]byte{recDocKey}, a.id...), binary.BigEndian.AppendUint64(nil, seqs[i])); err != nil {
				return err
			}
		}
		if err := b.Put(kv.Search, metaKey("state"), st.encode()); err != nil {
			return err
		}
		return b.Delete(kv.Search, metaKey("dirty"))
	})
	if err == nil {
		err = x.db.Sync()
	}
	if err != nil {
		return x.fail(err)
	}
	x.st.Store(&st)
	return nil
}

// fail records that a write failed half-way: the index no longer matches
// what was put, and every later call says it is damaged.
func (x *Index) fail(err error) error {
	if errors.Is(err, kv.ErrClosed) {
		return ErrClosed
	}
	err = fmt.Errorf("%w: a write failed: %v", ErrDamaged, err)
	x.broken.Store(&err)
	return err
}

// usable returns ErrClosed after Close, the damage after a failed write,
// and nil otherwise.
func (x *Index) usable() error {
	if x.closed.Load() {
		return ErrClosed
	}
	if err := x.broken.Load(); err != nil {
		return *err
	}
	return nil
}

// Count returns the number of documents in the index.
func (x *Index) Count() (uint64, error) {
	if err := x.usable(); err != nil {
		return 0, err
	}
	return x.st.Load().docs, nil
}

// Close releases the index. It waits for a write in progress. Closing a
// closed index does nothing.
func (x *Index) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.closed.CompareAndSwap(false, true) {
		return nil
	}
	if err := x.db.Close(); err != nil {
		return fmt.Errorf("close search index: %w", err)
	}
	return nil
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
