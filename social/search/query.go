package search

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	bsearch "github.com/blevesearch/bleve/v2/search"
	bquery "github.com/blevesearch/bleve/v2/search/query"
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
	Took  time.Duration // time bleve spent searching
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
func parse(text string, an analysis.Analyzer) (parsed, error) {
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
			switch toks := analyse(an, phrase); len(toks) {
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
		for _, t := range analyse(an, w) {
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

// analyse returns the terms the English analyser makes of s.
func analyse(an analysis.Analyzer, s string) []string {
	ts := an.Analyze([]byte(s))
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, string(t.Term))
	}
	return out
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
// Search fails only when ctx ends, the index is closed or damaged, or the
// query is too large (ErrQueryTooLarge).
func (x *Index) Search(ctx context.Context, q Query) (res Result, err error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if x.closed.Load() {
		return Result{}, fmt.Errorf("search: %w", ErrClosed)
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
	p, err := parse(q.Text, x.an)
	if err != nil {
		return Result{}, fmt.Errorf("search: %w", err)
	}
	bq, scored := p.query(q.Source)
	if bq == nil {
		return Result{}, nil
	}

	req := bleve.NewSearchRequestOptions(bq, limit, offset, false)
	newest := &bsearch.SortField{Field: fieldTime, Desc: true, Type: bsearch.SortFieldAsString}
	if scored {
		req.SortByCustom(bsearch.SortOrder{&bsearch.SortScore{Desc: true}, newest})
	} else {
		req.SortByCustom(bsearch.SortOrder{newest})
		req.Score = "none"
	}

	defer func() {
		if r := recover(); r != nil {
			res, err = Result{}, fmt.Errorf("search: %w: %v", ErrDamaged, r)
		}
	}()
	br, err := x.idx.SearchInContext(ctx, req)
	switch {
	case errors.Is(err, bleve.ErrorIndexClosed):
		return Result{}, fmt.Errorf("search: %w", ErrClosed)
	case err != nil:
		if cerr := ctx.Err(); cerr != nil {
			return Result{}, fmt.Errorf("search: %w", cerr)
		}
		return Result{}, fmt.Errorf("search: %w", err)
	}
	res = Result{Total: br.Total, Took: br.Took, Hits: make([]Hit, 0, len(br.Hits))}
	for _, h := range br.Hits {
		score := h.Score
		if !scored {
			score = 0
		}
		res.Hits = append(res.Hits, Hit{ID: h.ID, Score: score})
	}
	return res, nil
}

// query builds the bleve query for p, ANDed with source when that is not
// empty. It returns nil when there is nothing to match, and whether the
// query has words or phrases to score by.
func (p parsed) query(source string) (q bquery.Query, scored bool) {
	var must []bquery.Query
	for _, w := range p.words {
		must = append(must, anyOf(term(fieldText, w), term(fieldSummary, w)))
	}
	for _, ph := range p.phrases {
		must = append(must, anyOf(phrase(fieldText, ph), phrase(fieldSummary, ph)))
	}
	scored = len(must) > 0
	for _, t := range p.tags {
		must = append(must, term(fieldTags, t))
	}
	if len(p.authors) > 0 {
		must = append(must, anyTerm(fieldAuthor, p.authors))
	}
	if len(p.sources) > 0 {
		must = append(must, anyTerm(fieldSource, p.sources))
	}
	if source != "" {
		must = append(must, term(fieldSource, normSource(source)))
	}
	switch len(must) {
	case 0:
		return nil, false
	case 1:
		return must[0], scored
	}
	return bquery.NewConjunctionQuery(must), scored
}

func term(field, value string) bquery.Query {
	t := bquery.NewTermQuery(value)
	t.SetField(field)
	return t
}

func phrase(field, text string) bquery.Query {
	m := bquery.NewMatchPhraseQuery(text)
	m.SetField(field)
	return m
}

func anyTerm(field string, values []string) bquery.Query {
	qs := make([]bquery.Query, len(values))
	for i, v := range values {
		qs[i] = term(field, v)
	}
	return anyOf(qs...)
}

func anyOf(qs ...bquery.Query) bquery.Query {
	if len(qs) == 1 {
		return qs[0]
	}
	return bquery.NewDisjunctionQuery(qs)
}
