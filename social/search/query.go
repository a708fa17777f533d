package search

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/plug-net/plug/store/kv"
)

// Limits on queries. A query past them is refused with an error wrapping
// [ErrQueryTooLarge] rather than cut, so that nobody gets results for a
// query they did not make.
const (
	MaxQueryBytes = 1000   // length of Query.Text
	MaxQueryTerms = 32     // words (after stop words are dropped), phrase words, #tags, from: and source: values
	DefaultLimit  = 20     // Query.Limit 0 means this
	MaxLimit      = 1000   // a larger Query.Limit is lowered to this
	MaxOffset     = 10_000 // Query.Offset must not be larger
)

// ErrQueryTooLarge is wrapped by Search's error when a query is longer
// than MaxQueryBytes, has more than MaxQueryTerms terms, or asks for hits
// past MaxOffset.
var ErrQueryTooLarge = errors.New("search query too large")

// Query is a search: the text a person typed plus options for the caller.
type Query struct {
	Text   string // the query language described on Index.Search
	Source string // if not empty, only documents from this source
	Limit  int    // hits per page; 0 means DefaultLimit, at most MaxLimit
	Offset int    // hits to skip, for the next pages; at most MaxOffset
}

// Hit is one matching document. Score is 0 for queries without words.
type Hit struct {
	ID    string
	Score float64
}

// Result is one page of hits.
type Result struct {
	Hits  []Hit         // best first
	Total uint64        // all matching documents, not just this page
	Took  time.Duration // time spent searching
}

// parsed is a query split into its parts. words holds analysed terms
// (stemmed, lower-cased, stop words removed); the others hold normalised
// values.
type parsed struct {
	words   []string
	phrases []string
	tags    []string
	authors []string
	sources []string
}

func (p *parsed) terms(nPhraseWords int) int {
	return len(p.words) + nPhraseWords + len(p.tags) + len(p.authors) + len(p.sources)
}

// parse splits the text of a query into its parts. It never fails on
// syntax: whatever is not a phrase, #tag, from: or source: is words.
// It fails only when the query is too large.
func parse(text string) (parsed, error) {
	var p parsed
	if len(text) > MaxQueryBytes {
		return p, fmt.Errorf("%w: %d bytes, at most %d", ErrQueryTooLarge, len(text), MaxQueryBytes)
	}
	s := strings.ToValidUTF8(text, " ")
	var rawWords []string
	nPhraseWords := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			i += size
			continue
		}
		if r == '"' {
			phrase, next := quoted(s, i)
			i = next
			switch toks := analyse(phrase); len(toks) {
			case 0: // only stop words or punctuation
			case 1:
				rawWords = append(rawWords, phrase)
			default:
				p.phrases = appendNew(p.phrases, phrase)
				nPhraseWords += len(toks)
			}
			continue
		}
		if key, value, next, ok := filter(s, i); ok {
			i = next
			switch key {
			case "from":
				p.authors = appendNew(p.authors, normAuthor(value))
			case "source":
				p.sources = appendNew(p.sources, normSource(value))
			}
			continue
		}
		end := i
		for end < len(s) {
			r, size := utf8.DecodeRuneInString(s[end:])
			if unicode.IsSpace(r) {
				break
			}
			end += size
		}
		tok := s[i:end]
		i = end
		if strings.HasPrefix(tok, "#") {
			if tag := normTag(strings.TrimRight(tok, `.,;:!?"'`)); tag != "" {
				p.tags = appendNew(p.tags, tag)
				continue
			}
		}
		rawWords = append(rawWords, tok)
	}
	for _, w := range rawWords {
		for _, t := range terms(w) {
			p.words = appendNew(p.words, t)
		}
	}
	if n := p.terms(nPhraseWords); n > MaxQueryTerms {
		return p, fmt.Errorf("%w: %d terms, at most %d", ErrQueryTooLarge, n, MaxQueryTerms)
	}
	return p, nil
}

// quoted returns the text between the quote at s[i] and the next quote
// (or the end of s, when the quote is never closed), and the index after
// the closing quote.
func quoted(s string, i int) (string, int) {
	rest := s[i+1:]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return rest, len(s)
	}
	return rest[:j], i + 1 + j + 1
}

// filter recognises from:VALUE and source:VALUE (key case-insensitive;
// VALUE may be "quoted") at s[i]. An empty value is not a filter.
func filter(s string, i int) (key, value string, next int, ok bool) {
	for _, k := range [...]string{"from", "source"} {
		n := len(k) + 1
		if len(s)-i < n+1 || !strings.EqualFold(s[i:i+len(k)], k) || s[i+len(k)] != ':' {
			continue
		}
		j := i + n
		if s[j] == '"' {
			value, next = quoted(s, j)
		} else {
			next = j
			for next < len(s) {
				r, size := utf8.DecodeRuneInString(s[next:])
				if unicode.IsSpace(r) {
					break
				}
				next += size
			}
			value = s[j:next]
		}
		if strings.TrimSpace(value) == "" {
			return "", "", 0, false
		}
		return k, value, next, true
	}
	return "", "", 0, false
}

func appendNew(list []string, s string) []string {
	for _, have := range list {
		if have == s {
			return list
		}
	}
	return append(list, s)
}

// Search runs a query and returns one page of hits, best match first;
// hits with equal scores come newest first (by Doc.Time).
//
// The query language, for people:
//
//   - words: every word must match, in Text or Summary, after English
//     stemming ("running" finds "run"); case does not matter; stop words
//     ("the", "of") are ignored.
//   - "exact phrase": the words in this order (stop words still hold
//     their place). An unclosed quote runs to the end of the query.
//   - #tag: documents carrying this tag.
//   - from:author, from:"name with spaces": documents by this author.
//   - source:mastodon: documents from this source.
//
// All parts must match, except that several from: (or several source:)
// values are alternatives: "from:ann from:bob" finds documents by either.
// Anything else, including unknown "key:value" pairs and stray
// punctuation, is taken as words. A query of only #tag, from: and
// source: lists its documents newest first, with Score 0. A query with
// nothing to match (empty, or only stop words) has no hits.
//
// Scores are BM25 over Text and Summary, summed over the query's words
// and phrases.
//
// Search fails only when ctx ends, the index is closed or damaged, or the
// query is too large (ErrQueryTooLarge).
func (x *Index) Search(ctx context.Context, q Query) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if err := x.usable(); err != nil {
		return Result{}, fmt.Errorf("search: %w", err)
	}
	limit, offset := q.Limit, max(q.Offset, 0)
	switch {
	case limit <= 0:
		limit = DefaultLimit
	case limit > MaxLimit:
		limit = MaxLimit
	}
	if offset > MaxOffset {
		return Result{}, fmt.Errorf("search: %w: offset %d is past %d; narrow the query", ErrQueryTooLarge, offset, MaxOffset)
	}
	p, err := parse(q.Text)
	if err != nil {
		return Result{}, fmt.Errorf("search: %w", err)
	}
	cs := p.clauses(q.Source)
	if len(cs) == 0 {
		return Result{}, nil
	}
	start := time.Now()
	var res Result
	err = x.db.View(func(tx *kv.Tx) error {
		r := run{ctx: ctx, tx: tx, st: *x.st.Load(), clauses: cs, need: offset + limit}
		if err := r.plan(); err != nil || r.empty {
			return err
		}
		if err := r.scan(); err != nil {
			return err
		}
		res.Total = r.total
		if err := r.order(); err != nil {
			return err
		}
		for _, h := range r.hits[min(offset, len(r.hits)):min(offset+limit, len(r.hits))] {
			rb, ok, err := tx.Lookup(kv.Search, seqKey(recDoc, h.seq), nil)
			if err != nil {
				return err
			}
			if !ok {
				continue // deleted by a write still being applied
			}
			rec, err := decodeRecord(rb, true)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrDamaged, err)
			}
			res.Hits = append(res.Hits, Hit{ID: rec.id, Score: h.score})
		}
		return nil
	})
	switch {
	case errors.Is(err, kv.ErrClosed):
		return Result{}, fmt.Errorf("search: %w", ErrClosed)
	case err != nil:
		if cerr := ctx.Err(); cerr != nil {
			return Result{}, fmt.Errorf("search: %w", cerr)
		}
		return Result{}, fmt.Errorf("search: %w", err)
	}
	res.Took = time.Since(start)
	return res, nil
}

// A clause is one part of a query that every hit must match: a word (in
// Text or Summary), a phrase (in one of them), or a filter (any of its
// values).
type clause struct {
	kind   clauseKind
	lists  []list  // word: the term in each text field; filter: the values
	phrase []token // phrase: its terms, positions relative to the first
	// viable lists the phrase's rarest term in each field where all of its
	// terms occur; set by plan.
	viable []list
	n      uint64 // documents the clause can match at most; set by plan
	// phraseLists holds, for a phrase, its terms' lists in Text ([0]) and
	// Summary ([1]) when all of them are there; set by plan.
	phraseLists [2][]list
}

type clauseKind int

const (
	clauseWord clauseKind = iota
	clausePhrase
	clauseFilter
)

// A list is the postings of one term in one field.
type list struct {
	field  byte
	term   string
	prefix []byte
	df     uint64   // set by plan
	blocks [][]byte // set by plan
}

func newList(field byte, term string) list {
	return list{field: field, term: term, prefix: postingPrefix(field, term)}
}

// clauses turns p, and a source the caller requires, into clauses; none
// means nothing to match.
func (p parsed) clauses(source string) []clause {
	var cs []clause
	for _, w := range p.words {
		cs = append(cs, clause{kind: clauseWord, lists: []list{newList(fieldText, w), newList(fieldSummary, w)}})
	}
	for _, ph := range p.phrases {
		toks := analyse(ph)
		base := toks[0].pos
		for i := range toks {
			toks[i].pos -= base
		}
		cs = append(cs, clause{kind: clausePhrase, phrase: toks})
	}
	filter := func(field byte, values ...string) {
		c := clause{kind: clauseFilter}
		for _, v := range values {
			c.lists = append(c.lists, newList(field, v))
		}
		cs = append(cs, c)
	}
	for _, t := range p.tags {
		filter(fieldTag, t)
	}
	if len(p.authors) > 0 {
		filter(fieldAuthor, p.authors...)
	}
	if len(p.sources) > 0 {
		filter(fieldSource, p.sources...)
	}
	if source != "" {
		filter(fieldSource, normSource(source))
	}
	return cs
}

// candidates are the lists whose union holds every document the clause
// matches.
func (c *clause) candidates() []list {
	if c.kind == clausePhrase {
		return c.viable
	}
	return c.lists
}

// hit is a matching document before its ID is read.
type hit struct {
	seq   uint64
	score float64
	time  uint64 // timeKey; read only for the hits order needs it for
}

// cand is a document that every clause applied so far matched.
type cand struct {
	score float64
	step  int // the last clause it matched
}

// run is one search on one snapshot of the index.
type run struct {
	ctx     context.Context
	tx      *kv.Tx
	st      state
	clauses []clause
	need    int // hits to keep: offset + limit

	empty bool // plan found a clause nothing can match
	total uint64
	hits  []hit
	seen  int // entries read, to look at ctx now and then

	cur  map[uint64]*cand
	step int // the clause being applied, from 1
}

// plan reads the postings of every list, drops lists nobody has, and
// orders the clauses by how many documents they can match, fewest first.
func (r *run) plan() error {
	for i := range r.clauses {
		c := &r.clauses[i]
		if c.kind == clausePhrase {
			for _, field := range [...]byte{fieldText, fieldSummary} {
				var rarest list
				var lists []list
				for _, t := range c.phrase {
					l := newList(field, t.term)
					if err := r.load(&l); err != nil {
						return err
					}
					if l.df == 0 {
						lists = nil
						break
					}
					lists = append(lists, l)
					if rarest.prefix == nil || l.df < rarest.df {
						rarest = l
					}
				}
				if lists != nil {
					c.viable = append(c.viable, rarest)
					c.phraseLists[field-fieldText] = lists
				}
			}
		} else {
			kept := c.lists[:0]
			for _, l := range c.lists {
				if err := r.load(&l); err != nil {
					return err
				}
				if l.df > 0 {
					kept = append(kept, l)
				}
			}
			c.lists = kept
		}
		var n uint64
		for _, l := range c.candidates() {
			n += l.df
		}
		if n == 0 {
			r.empty = true
			return nil
		}
		c.n = n
	}
	slices.SortStableFunc(r.clauses, func(a, b clause) int { return cmp.Compare(a.n, b.n) })
	return nil
}

// load reads l's blocks and adds up their counts into l.df.
func (r *run) load(l *list) error {
	return r.tx.Iterate(kv.Search, kv.IterOptions{Prefix: l.prefix}, func(_, val []byte) error {
		n, _, err := blockEntries(val)
		if err != nil {
			return err
		}
		l.df += n
		l.blocks = append(l.blocks, bytes.Clone(val))
		return nil
	})
}

// scan applies the clauses in turn, each to the documents that matched
// those before it, and keeps the hits.
func (r *run) scan() error {
	for i := range r.clauses {
		r.step = i + 1
		c := &r.clauses[i]
		var err error
		if c.kind == clausePhrase {
			err = r.applyPhrase(c)
		} else {
			err = r.applyLists(c)
		}
		if err != nil {
			return err
		}
		for k, cd := range r.cur {
			if cd.step != r.step {
				delete(r.cur, k)
			}
		}
		if len(r.cur) == 0 {
			return nil
		}
	}
	r.total = uint64(len(r.cur))
	r.hits = make([]hit, 0, len(r.cur))
	for seq, cd := range r.cur {
		r.hits = append(r.hits, hit{seq: seq, score: cd.score})
	}
	return nil
}

// blocks calls fn with each entry of l's blocks.
func (r *run) blocks(l list, fn func(e entry)) error {
	text := textField(l.field)
	for _, blk := range l.blocks {
		_, rest, err := blockEntries(blk)
		if err != nil {
			return err
		}
		var prev uint64
		for len(rest) > 0 {
			e, next, err := nextEntry(rest, text, prev)
			if err != nil {
				return err
			}
			if r.seen++; r.seen%4096 == 0 {
				if err := r.ctx.Err(); err != nil {
					return err
				}
			}
			fn(e)
			prev, rest = e.seq, next
		}
	}
	return nil
}

// match records that document seq matches the clause being applied,
// adding score, if it matched the clauses before.
func (r *run) match(seq uint64, score float64) {
	cd := r.cur[seq]
	if cd == nil {
		if r.step != 1 {
			return
		}
		if r.cur == nil {
			r.cur = make(map[uint64]*cand)
		}
		cd = &cand{}
		r.cur[seq] = cd
	}
	if cd.step < r.step-1 {
		return // missed a clause before
	}
	cd.step = r.step
	cd.score += score
}

// applyLists applies a word (its term in Text and Summary) or a filter
// (any of its values).
func (r *run) applyLists(c *clause) error {
	for _, l := range c.lists {
		err := r.blocks(l, func(e entry) {
			score := 0.0
			if c.kind == clauseWord {
				score = r.bm25(l, e.tf, e.flen)
			}
			r.match(e.seq, score)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// phraseDoc is a document's progress through a phrase in one field.
type phraseDoc struct {
	starts []uint64 // where the phrase may begin
	terms  int      // the phrase's terms found so far
	flen   uint64
}

// applyPhrase applies a phrase: all its terms in Text, or all in Summary,
// at its relative positions.
func (r *run) applyPhrase(c *clause) error {
	var pos []uint64
	for _, v := range c.viable {
		field := v.field
		// The rarest term first: it bounds the documents to look at.
		order := make([]int, len(c.phrase))
		for i := range order {
			order[i] = i
		}
		lists := c.phraseLists[field-fieldText]
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(lists[a].df, lists[b].df) })
		docs := make(map[uint64]*phraseDoc)
		for n, ti := range order {
			t := c.phrase[ti]
			off := uint64(t.pos)
			err := r.blocks(lists[ti], func(e entry) {
				var d *phraseDoc
				if n == 0 {
					if r.step > 1 {
						if cd := r.cur[e.seq]; cd == nil || cd.step < r.step-1 {
							return
						}
					}
					d = &phraseDoc{flen: e.flen}
					docs[e.seq] = d
				} else if d = docs[e.seq]; d == nil || d.terms != n {
					return
				}
				pos = e.decodePositions(pos[:0])
				if n == 0 {
					for _, p := range pos {
						if p >= off {
							d.starts = append(d.starts, p-off)
						}
					}
				} else {
					kept := d.starts[:0]
					for _, s := range d.starts {
						if _, in := slices.BinarySearch(pos, s+off); in {
							kept = append(kept, s)
						}
					}
					d.starts = kept
				}
				if len(d.starts) > 0 {
					d.terms = n + 1
				}
			})
			if err != nil {
				return err
			}
		}
		for k, d := range docs {
			if d.terms != len(c.phrase) {
				continue
			}
			score := 0.0
			for _, l := range lists {
				score += r.bm25(l, uint64(len(d.starts)), d.flen)
			}
			r.match(k, score)
		}
	}
	return nil
}

// order sorts the hits best first, then newest first (then last put
// first), and keeps the first need. Times are read only for the hits
// whose place depends on them: those that score as well as the last one
// kept.
func (r *run) order() error {
	byScore := func(a, b hit) int { return cmp.Compare(b.score, a.score) }
	slices.SortFunc(r.hits, byScore)
	if len(r.hits) == 0 {
		return nil
	}
	cut := r.hits[min(r.need, len(r.hits))-1].score
	tied := 0 // r.hits[:tied] scores at least cut
	for tied < len(r.hits) && r.hits[tied].score >= cut {
		tied++
	}
	r.hits = r.hits[:tied]
	if err := r.times(r.hits); err != nil {
		return err
	}
	slices.SortFunc(r.hits, func(a, b hit) int {
		if c := byScore(a, b); c != 0 {
			return c
		}
		if c := cmp.Compare(b.time, a.time); c != 0 {
			return c
		}
		return cmp.Compare(b.seq, a.seq)
	})
	r.hits = r.hits[:min(len(r.hits), r.need)]
	return nil
}

// times reads the time of each hit from the time blocks.
func (r *run) times(hits []hit) error {
	idx := make([]int, len(hits)) // hits in the order of their numbers
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(hits[a].seq, hits[b].seq) })
	next := 0 // the first of idx without a time
	opt := kv.IterOptions{Prefix: []byte{recTimes}, Start: seqKey(recTimes, hits[idx[0]].seq)}
	err := r.tx.Iterate(kv.Search, opt, func(_, val []byte) error {
		n, rest, err := blockEntries(val)
		if err != nil {
			return err
		}
		var seq uint64
		for range n {
			d, k := binary.Uvarint(rest)
			if k <= 0 || len(rest) < k+8 {
				return errBlock
			}
			seq += d
			t := binary.BigEndian.Uint64(rest[k:])
			rest = rest[k+8:]
			for next < len(idx) && hits[idx[next]].seq < seq {
				next++ // deleted while this search ran: no time, sorts oldest
			}
			for next < len(idx) && hits[idx[next]].seq == seq {
				hits[idx[next]].time = t
				next++
			}
		}
		if next == len(idx) {
			return kv.ErrStop
		}
		return nil
	})
	return err
}

// BM25's parameters, as Lucene sets them.
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

// bm25 scores tf occurrences of l's term in a field of length flen.
func (r *run) bm25(l list, tf, flen uint64) float64 {
	n := float64(r.st.docs)
	df := float64(l.df)
	idf := math.Log(1 + (n-df+0.5)/(df+0.5))
	total := r.st.textLen
	if l.field == fieldSummary {
		total = r.st.summaryLen
	}
	avg := max(float64(total)/max(n, 1), 1)
	t := float64(tf)
	return idf * t * (bm25K1 + 1) / (t + bm25K1*(1-bm25B+bm25B*float64(flen)/avg))
}
