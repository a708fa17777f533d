package search

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plug-net/plug/store/kv"
)

// backends are the ways to get an index; every round-trip test runs on each.
var backends = []struct {
	name string
	open func(t *testing.T) *Index
}{
	{"mem", func(t *testing.T) *Index {
		t.Helper()
		x, err := OpenMem()
		if err != nil {
			t.Fatalf("OpenMem: %v", err)
		}
		t.Cleanup(func() { closeOK(t, x) })
		return x
	}},
	{"disk", func(t *testing.T) *Index {
		t.Helper()
		x, err := Open(filepath.Join(t.TempDir(), "search"))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { closeOK(t, x) })
		return x
	}},
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// closeOK closes x, failing the test if that fails.
func closeOK(t testing.TB, x *Index) {
	t.Helper()
	if err := x.Close(); err != nil {
		t.Errorf("close the index: %v", err)
	}
}

// fixture is a small, hand-written set of documents whose matches the
// tests below state exactly.
func fixture() []Doc {
	return []Doc{
		{ID: "p1", Text: "I went running along the river this morning", Author: "ann", Source: "plug", Tags: []string{"Run", "river"}, Time: t0.Add(1 * time.Hour)},
		{ID: "p2", Text: "A quiet run before the first frost", Summary: "weather", Author: "@Bob@example.social", Source: "mastodon", Tags: []string{"#frost"}, Time: t0.Add(2 * time.Hour)},
		{ID: "p3", Text: "The frost came first, then the snow", Author: "bob@example.social", Source: "Mastodon", Time: t0.Add(3 * time.Hour)},
		{ID: "p4", Text: "New blog post: gardens in winter", Summary: "Frost-hardy gardens", Author: "Carol Smith", Source: "feed", Tags: []string{"garden"}, Time: t0.Add(4 * time.Hour)},
		{ID: "p5", Text: "Rain all day. The garden is happy.", Author: "ann", Source: "twitter", Tags: []string{"garden", "rain"}, Time: t0.Add(5 * time.Hour)},
		{ID: "p6", Text: "rain rain rain", Author: "dave", Source: "twitter", Time: t0.Add(6 * time.Hour)},
		{ID: "p7", Text: "café crème for breakfast — naïve joy", Author: "émile", Source: "plug", Tags: []string{"Café"}, Time: t0.Add(7 * time.Hour)},
	}
}

func put(t *testing.T, x *Index, docs ...Doc) {
	t.Helper()
	if err := x.Put(docs...); err != nil {
		t.Fatalf("Put: %v", err)
	}
}

func search(t *testing.T, x *Index, q Query) Result {
	t.Helper()
	res, err := x.Search(t.Context(), q)
	if err != nil {
		t.Fatalf("Search(%+v): %v", q, err)
	}
	return res
}

func ids(res Result) []string {
	out := make([]string, len(res.Hits))
	for i, h := range res.Hits {
		out[i] = h.ID
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestSearchMatches(t *testing.T) {
	tests := []struct {
		query  string
		source string
		want   []string // any order
	}{
		{query: "river", want: []string{"p1"}},
		{query: "RIVER", want: []string{"p1"}},
		{query: "run", want: []string{"p1", "p2"}},     // "running" is stemmed to "run"
		{query: "running", want: []string{"p1", "p2"}}, // and so is the query
		{query: "runs", want: []string{"p1", "p2"}},
		{query: "frost", want: []string{"p2", "p3", "p4"}}, // p4 in Summary
		{query: "weather", want: []string{"p2"}},           // Summary only
		{query: "frost first", want: []string{"p2", "p3"}}, // all words must match
		{query: "frost nosuchword", want: nil},
		{query: `"first frost"`, want: []string{"p2"}}, // order matters in a phrase
		{query: `"frost came first"`, want: []string{"p3"}},
		{query: `"before the first frost"`, want: []string{"p2"}}, // stop words keep their place
		{query: `"first frost`, want: []string{"p2"}},             // unclosed quote runs to the end
		{query: `"frost"`, want: []string{"p2", "p3", "p4"}},      // one-word phrase is a word
		{query: `"frost hardy"`, want: []string{"p4"}},            // phrase in Summary
		{query: "#garden", want: []string{"p4", "p5"}},
		{query: "#GARDEN", want: []string{"p4", "p5"}},
		{query: "#garden,", want: []string{"p4", "p5"}}, // trailing punctuation
		{query: "#frost", want: []string{"p2"}},         // tag stored as "#frost"
		{query: "#run", want: []string{"p1"}},           // tags are not stemmed
		{query: "#running", want: nil},
		{query: "#garden #rain", want: []string{"p5"}},
		{query: "#café", want: []string{"p7"}},
		{query: "from:ann", want: []string{"p1", "p5"}},
		{query: "FROM:Ann", want: []string{"p1", "p5"}},
		{query: "from:bob@example.social", want: []string{"p2", "p3"}}, // "@" and case ignored
		{query: "from:@bob@example.social", want: []string{"p2", "p3"}},
		{query: `from:"carol smith"`, want: []string{"p4"}},
		{query: "from:ann from:dave", want: []string{"p1", "p5", "p6"}}, // alternatives
		{query: "from:ann rain", want: []string{"p5"}},
		{query: "source:mastodon", want: []string{"p2", "p3"}},
		{query: "source:twitter source:feed", want: []string{"p4", "p5", "p6"}},
		{query: "source:mastodon frost first", want: []string{"p2", "p3"}},
		{query: "frost", source: "mastodon", want: []string{"p2", "p3"}},
		{query: "frost source:feed", source: "mastodon", want: nil}, // both must hold
		{query: "", source: "feed", want: []string{"p4"}},
		{query: "cafe", want: nil}, // no accent folding
		{query: "café", want: []string{"p7"}},
		{query: "naïve", want: []string{"p7"}},
		{query: "from:émile", want: []string{"p7"}},
		{query: "", want: nil},
		{query: "   ", want: nil},
		{query: "the", want: nil}, // stop words only
		{query: "the of river", want: []string{"p1"}},
		{query: "river!!!", want: []string{"p1"}},
		{query: "lang:en river", want: nil},          // an unknown key:value is a word, "lang:en", found nowhere
		{query: "river AND", want: []string{"p1"}},   // "and" is a stop word
		{query: "river OR rain", want: nil},          // no boolean operators: "or" is a stop word, rain+river match nothing
		{query: "-rain", want: []string{"p5", "p6"}}, // no negation: "-" is punctuation
		{query: "rain*", want: []string{"p5", "p6"}}, // no wildcards
		{query: "from:", want: nil},                  // an empty filter is the word "from", a stop word
		{query: "#", want: nil},
		{query: `""`, want: nil},
		{query: "(river", want: []string{"p1"}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			x := b.open(t)
			put(t, x, fixture()...)
			for _, tt := range tests {
				t.Run(tt.query+"/"+tt.source, func(t *testing.T) {
					res := search(t, x, Query{Text: tt.query, Source: tt.source})
					if got, want := sorted(ids(res)), sorted(tt.want); !slices.Equal(got, want) {
						t.Fatalf("Search(%q) = %v, want %v", tt.query, got, want)
					}
					if got, want := res.Total, uint64(len(tt.want)); got != want {
						t.Fatalf("Search(%q).Total = %d, want %d", tt.query, got, want)
					}
				})
			}
		})
	}
}

func TestSearchOrder(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			x := b.open(t)
			put(t, x, fixture()...)

			// p6 says rain three times in a short text: it beats p5.
			if got, want := ids(search(t, x, Query{Text: "rain"})), []string{"p6", "p5"}; !slices.Equal(got, want) {
				t.Fatalf("rain: %v, want %v", got, want)
			}
			// Filters only: newest first, score 0.
			res := search(t, x, Query{Text: "source:twitter source:mastodon"})
			if got, want := ids(res), []string{"p6", "p5", "p3", "p2"}; !slices.Equal(got, want) {
				t.Fatalf("filters only: %v, want %v", got, want)
			}
			for _, h := range res.Hits {
				if h.Score != 0 {
					t.Fatalf("filters only: hit %s has score %v, want 0", h.ID, h.Score)
				}
			}
			// Scores never increase down the list.
			res = search(t, x, Query{Text: "frost"})
			for i := 1; i < len(res.Hits); i++ {
				if res.Hits[i].Score > res.Hits[i-1].Score {
					t.Fatalf("frost: hits out of order: %+v", res.Hits)
				}
			}
		})
	}
}

func TestSearchTiesNewestFirst(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			x := b.open(t)
			// Identical documents score the same; put them oldest last so
			// that index order does not hide a missing tie break.
			var docs []Doc
			for i := range 5 {
				docs = append(docs, Doc{ID: string(rune('a' + i)), Text: "quiet garden rain", Time: t0.Add(time.Duration(i) * time.Minute)})
			}
			slices.Reverse(docs)
			put(t, x, docs...)
			put(t, x, Doc{ID: "z", Text: "quiet garden rain, quiet garden", Time: t0.Add(-time.Hour)})
			res := search(t, x, Query{Text: "quiet garden"})
			if got, want := ids(res), []string{"z", "e", "d", "c", "b", "a"}; !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v (best first, then newest first)", got, want)
			}
		})
	}
}

func TestSearchPagination(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			x := b.open(t)
			var docs []Doc
			for i := range 25 {
				docs = append(docs, Doc{ID: string(rune('A' + i)), Text: "page", Source: "plug", Time: t0.Add(time.Duration(i) * time.Minute)})
			}
			put(t, x, docs...)

			all := ids(search(t, x, Query{Text: "page", Limit: 100}))
			if len(all) != 25 {
				t.Fatalf("Limit 100: %d hits, want 25", len(all))
			}
			if got := search(t, x, Query{Text: "page"}); len(got.Hits) != DefaultLimit || got.Total != 25 {
				t.Fatalf("Limit 0: %d hits, Total %d; want %d, 25", len(got.Hits), got.Total, DefaultLimit)
			}
			var paged []string
			for off := 0; off < 30; off += 10 {
				res := search(t, x, Query{Text: "page", Limit: 10, Offset: off})
				if res.Total != 25 {
					t.Fatalf("Offset %d: Total %d, want 25", off, res.Total)
				}
				paged = append(paged, ids(res)...)
			}
			if !slices.Equal(paged, all) {
				t.Fatalf("pages %v\nwant      %v", paged, all)
			}
			if res := search(t, x, Query{Text: "page", Offset: 100}); len(res.Hits) != 0 || res.Total != 25 {
				t.Fatalf("Offset past the end: %v hits, Total %d", ids(res), res.Total)
			}
			if res := search(t, x, Query{Text: "page", Limit: -1, Offset: -5}); len(res.Hits) != DefaultLimit {
				t.Fatalf("negative Limit/Offset: %d hits, want %d", len(res.Hits), DefaultLimit)
			}
			// Filters only pages newest first too.
			if got := ids(search(t, x, Query{Text: "source:plug", Limit: 3, Offset: 1})); !slices.Equal(got, []string{"X", "W", "V"}) {
				t.Fatalf("filters only, page 2: %v, want [X W V]", got)
			}
		})
	}
}

func TestPutReplacesAndDeleteRemoves(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			x := b.open(t)
			put(t, x, fixture()...)
			count(t, x, 7)

			// Upsert: p1 no longer mentions the river.
			put(t, x, Doc{ID: "p1", Text: "edited: went swimming", Author: "ann", Time: t0})
			count(t, x, 7)
			if got := ids(search(t, x, Query{Text: "river"})); len(got) != 0 {
				t.Fatalf("river after edit: %v, want none", got)
			}
			if got := ids(search(t, x, Query{Text: "#river"})); len(got) != 0 {
				t.Fatalf("#river after edit: %v, want none", got)
			}
			if got := ids(search(t, x, Query{Text: "swim"})); !slices.Equal(got, []string{"p1"}) {
				t.Fatalf("swim after edit: %v, want [p1]", got)
			}

			// The later of two documents with one ID wins.
			put(t, x, Doc{ID: "dup", Text: "first version"}, Doc{ID: "dup", Text: "second version"})
			if got := ids(search(t, x, Query{Text: "first version"})); len(got) != 0 {
				t.Fatalf("first version: %v, want none", got)
			}
			if got := ids(search(t, x, Query{Text: "second version"})); !slices.Equal(got, []string{"dup"}) {
				t.Fatalf("second version: %v, want [dup]", got)
			}
			count(t, x, 8)

			if err := x.Delete("p5", "dup", "no-such-id", ""); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			count(t, x, 6)
			if got := ids(search(t, x, Query{Text: "rain"})); !slices.Equal(got, []string{"p6"}) {
				t.Fatalf("rain after delete: %v, want [p6]", got)
			}
			if err := x.Delete(); err != nil {
				t.Fatalf("Delete(): %v", err)
			}
		})
	}
}

func TestPutRejectsEmptyID(t *testing.T) {
	x := backends[0].open(t)
	err := x.Put(Doc{ID: "ok", Text: "fine"}, Doc{Text: "no id"})
	if err == nil || !strings.Contains(err.Error(), "2 of 2: empty ID") {
		t.Fatalf("Put with empty ID: %v, want an error naming the empty ID", err)
	}
	count(t, x, 0) // nothing was written
}

func TestPutManyBatches(t *testing.T) {
	x := backends[1].open(t)
	docs := newCorpus(1).docs(2*putBatchSize + 17)
	put(t, x, docs...)
	count(t, x, uint64(len(docs)))
	all := make([]string, len(docs))
	for i, d := range docs {
		all[i] = d.ID
	}
	if err := x.Delete(all...); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	count(t, x, 0)
}

func TestPutLongText(t *testing.T) {
	x := backends[0].open(t)
	long := strings.Repeat("filler ", MaxTextBytes/7) + " needle"
	put(t, x, Doc{ID: "long", Text: "haystack " + long})
	if got := ids(search(t, x, Query{Text: "haystack"})); !slices.Equal(got, []string{"long"}) {
		t.Fatalf("haystack: %v", got)
	}
	if got := ids(search(t, x, Query{Text: "needle"})); len(got) != 0 {
		t.Fatalf("needle past MaxTextBytes: %v, want none", got)
	}
	if got, want := truncate("aé", 2), "a"; got != want {
		t.Fatalf("truncate cuts a rune: %q, want %q", got, want)
	}
}

func count(t *testing.T, x *Index, want uint64) {
	t.Helper()
	n, err := x.Count()
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	if n != want {
		t.Fatalf("Count = %d, want %d", n, want)
	}
}

func TestReopenKeepsDocuments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "search")
	x, err := Open(dir)
	if err != nil {
		t.Fatalf("Open new: %v", err)
	}
	put(t, x, fixture()...)
	if err := x.Delete("p6"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := x.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	x, err = Open(dir)
	if err != nil {
		t.Fatalf("Open again: %v", err)
	}
	defer closeOK(t, x)
	count(t, x, 6)
	if got := sorted(ids(search(t, x, Query{Text: "frost"}))); !slices.Equal(got, []string{"p2", "p3", "p4"}) {
		t.Fatalf("frost after reopen: %v", got)
	}
	if got := ids(search(t, x, Query{Text: "rain"})); !slices.Equal(got, []string{"p5"}) {
		t.Fatalf("rain after reopen: %v", got)
	}
}

func TestOpenCreates(t *testing.T) {
	for _, tt := range []struct {
		name string
		dir  func(t *testing.T) string
	}{
		{"missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "a", "b") }},
		{"empty", func(t *testing.T) string { return t.TempDir() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			x, err := Open(tt.dir(t))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer closeOK(t, x)
			count(t, x, 0)
		})
	}
	if _, err := Open(""); err == nil {
		t.Fatal(`Open(""): no error`)
	}
}

// TestOpenDamaged damages an index in the ways a crash, a bad disk or a
// stray tool might, and wants ErrDamaged for each, then checks that the
// documented recovery (remove, open, reindex) works.
func TestOpenDamaged(t *testing.T) {
	garbage := []byte("this is not an index\x00\xff\x01\x02")
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"garbage files", func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"index_meta.json", "junk", "store"} {
				if err := os.WriteFile(filepath.Join(dir, name), garbage, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"unrelated file", func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "notes.txt"), garbage, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"an index of an older plug (bleve)", func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(dir, "store"), 0o700); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"index_meta.json", "plug-search-gen", "store/root.bolt", "store/000000000001.zap"} {
				if err := os.WriteFile(filepath.Join(dir, name), garbage, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"MANIFEST garbage", func(t *testing.T, dir string) {
			writeOver(t, filepath.Join(dir, "MANIFEST"))
		}},
		{"MANIFEST missing", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "MANIFEST")); err != nil {
				t.Fatal(err)
			}
		}},
		{"tables garbage", func(t *testing.T, dir string) {
			for _, f := range tables(t, dir) {
				writeOver(t, f)
			}
		}},
		{"tables truncated", func(t *testing.T, dir string) {
			for _, f := range tables(t, dir) {
				if err := os.Truncate(f, 10); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"tables missing", func(t *testing.T, dir string) {
			for _, f := range tables(t, dir) {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"not a directory", func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dir, garbage, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"other format version", func(t *testing.T, dir string) {
			x, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := x.db.Put(kv.Search, metaKey("format"), []byte("plug-search-0")); err != nil {
				t.Fatal(err)
			}
			if err := x.Close(); err != nil {
				t.Fatal(err)
			}
		}},
		{"a write cut short", func(t *testing.T, dir string) {
			// What a crash between the start and the end of a batch
			// leaves: the batch's mark.
			x, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := x.db.Put(kv.Search, metaKey("dirty"), []byte("2026-12-03T12:00:00Z")); err != nil {
				t.Fatal(err)
			}
			if err := x.Close(); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "search")
			x, err := Open(dir)
			if err != nil {
				t.Fatalf("Open new: %v", err)
			}
			put(t, x, fixture()...)
			if err := x.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}

			tt.damage(t, dir)

			x, err = Open(dir)
			if !errors.Is(err, ErrDamaged) {
				if x != nil {
					_ = x.Close() // the test fails anyway: this only frees the index
				}
				t.Fatalf("Open damaged index: %v, want ErrDamaged", err)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the directory", err)
			}
			if strings.Contains(tt.name, "older plug") && !strings.Contains(err.Error(), "older plug") {
				t.Errorf("error %q does not say the index is an older plug's", err)
			}

			// The documented recovery.
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			x, err = Open(dir)
			if err != nil {
				t.Fatalf("Open after RemoveAll: %v", err)
			}
			defer closeOK(t, x)
			count(t, x, 0)
			put(t, x, fixture()...)
			count(t, x, 7)
		})
	}
}

// tables returns the index's table files, failing the test when there are
// none to damage.
func tables(t *testing.T, dir string) []string {
	t.Helper()
	fs, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil || len(fs) == 0 {
		t.Fatalf("no table files in %s to damage (%v)", dir, err)
	}
	return fs
}

func writeOver(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, max(fi.Size(), 64))
	for i := range junk {
		junk[i] = byte(i*7 + 3)
	}
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestOpenTwiceIsNotDamage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "search")
	x, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer closeOK(t, x)
	y, err := Open(dir)
	if err == nil {
		_ = y.Close() // the test fails anyway: this only frees the index
		t.Fatal("second Open of an open index: no error")
	}
	if errors.Is(err, ErrDamaged) {
		t.Fatalf("second Open: %v; a held index is not damaged", err)
	}
}

func TestQueryTooLarge(t *testing.T) {
	x := backends[0].open(t)
	put(t, x, fixture()...)
	tests := []struct {
		name string
		q    Query
	}{
		{"long text", Query{Text: strings.Repeat("a", MaxQueryBytes+1)}},
		{"many words", Query{Text: strings.Join(commonWords[:MaxQueryTerms+1], " ")}},
		{"many tags", Query{Text: "#" + strings.Join(commonWords[:MaxQueryTerms+1], " #")}},
		{"long phrase", Query{Text: `"` + strings.Repeat("river sea lake pond ", 9) + `"`}},
		{"deep offset", Query{Text: "river", Offset: MaxOffset + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := x.Search(t.Context(), tt.q)
			if !errors.Is(err, ErrQueryTooLarge) {
				t.Fatalf("Search: %v, want ErrQueryTooLarge", err)
			}
		})
	}
	// Repeated words count once, and stop words not at all.
	if _, err := x.Search(t.Context(), Query{Text: strings.Repeat("river the ", 60)}); err != nil {
		t.Fatalf("repeated words: %v", err)
	}
	if res := search(t, x, Query{Text: "rain", Limit: MaxLimit + 1}); len(res.Hits) != 2 {
		t.Fatalf("Limit over MaxLimit: %d hits, want 2", len(res.Hits))
	}
}

func TestSearchCanceled(t *testing.T) {
	x := backends[0].open(t)
	put(t, x, fixture()...)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := x.Search(ctx, Query{Text: "rain"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Search with canceled context: %v, want context.Canceled", err)
	}
}

func TestClosed(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			x := b.open(t)
			put(t, x, fixture()...)
			if err := x.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := x.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if _, err := x.Search(t.Context(), Query{Text: "rain"}); !errors.Is(err, ErrClosed) {
				t.Errorf("Search after Close: %v, want ErrClosed", err)
			}
			if err := x.Put(Doc{ID: "x", Text: "y"}); !errors.Is(err, ErrClosed) {
				t.Errorf("Put after Close: %v, want ErrClosed", err)
			}
			if err := x.Delete("p1"); !errors.Is(err, ErrClosed) {
				t.Errorf("Delete after Close: %v, want ErrClosed", err)
			}
			if _, err := x.Count(); !errors.Is(err, ErrClosed) {
				t.Errorf("Count after Close: %v, want ErrClosed", err)
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	x := backends[1].open(t)
	c := newCorpus(2)
	put(t, x, c.docs(300)...)
	queries := c.queries(50)
	done := make(chan error)
	for w := range 4 {
		go func() {
			for i := range 50 {
				if w == 0 {
					if err := x.Put(c.doc(1000 + i)); err != nil {
						done <- err
						return
					}
					continue
				}
				if _, err := x.Search(t.Context(), Query{Text: queries[(i+w)%len(queries)]}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	count(t, x, 350)
}

// TestCloseStopsGoroutines checks that a closed index leaves no goroutine
// behind.
func TestCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, b := range backends {
		x := b.open(t)
		put(t, x, fixture()...)
		search(t, x, Query{Text: "frost"})
		if err := x.Close(); err != nil {
			t.Fatalf("%s: Close: %v", b.name, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
