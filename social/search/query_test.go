package search

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want parsed
	}{
		{"", parsed{}},
		{"Running dogs", parsed{words: []string{"run", "dog"}}},
		{"dog dogs DOG", parsed{words: []string{"dog"}}},
		{"the of and", parsed{}},
		{`"first frost" snow`, parsed{words: []string{"snow"}, phrases: []string{"first frost"}}},
		{`"first frost`, parsed{phrases: []string{"first frost"}}},
		{`"frost"`, parsed{words: []string{"frost"}}},
		{`"the"`, parsed{}},
		{`snow"first frost"`, parsed{words: []string{"snow", "first", "frost"}}}, // a quote inside a word is punctuation
		{"#Go #go, #", parsed{tags: []string{"go"}}},
		{"#c++", parsed{tags: []string{"c++"}}},
		{"from:Ann from:@ann FROM:bob", parsed{authors: []string{"ann", "bob"}}},
		{`from:"Carol Smith" tea`, parsed{words: []string{"tea"}, authors: []string{"carol smith"}}},
		{`from:"unclosed name`, parsed{authors: []string{"unclosed name"}}},
		{"source:Mastodon", parsed{sources: []string{"mastodon"}}},
		{`from: source: from:""`, parsed{words: []string{"sourc"}}}, // empty filters are words
		{"lang:en", parsed{words: []string{"lang:en"}}},
		{"fromage:brie", parsed{words: []string{"fromage:bri"}}},
		{"\xff\xferiver", parsed{words: []string{"river"}}}, // invalid UTF-8 is a space
		{"river\u00a0sea\tlake\nbay", parsed{words: []string{"river", "sea", "lake", "bai"}}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parse(tt.in)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	if _, err := parse(strings.Repeat("x", MaxQueryBytes)); err != nil {
		t.Fatalf("query of MaxQueryBytes: %v", err)
	}
	if _, err := parse(strings.Join(commonWords[:MaxQueryTerms], " ")); err != nil {
		t.Fatalf("query of MaxQueryTerms words: %v", err)
	}
	_, err := parse(strings.Join(commonWords[:MaxQueryTerms+1], " "))
	if !errors.Is(err, ErrQueryTooLarge) {
		t.Fatalf("query of MaxQueryTerms+1 words: %v, want ErrQueryTooLarge", err)
	}
	if want := "33 terms, at most 32"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}

// FuzzQuery runs arbitrary queries against a small index: Search must not
// panic, must fail only with ErrQueryTooLarge, and must respect Limit.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{
		"", "river", `"first frost"`, `"first frost`, "#garden", "from:ann", `from:"carol smith"`,
		"source:mastodon frost", "lang:en", "a:b:c", `"""`, "#", "##", "from:", `from:"`,
		"\xff\xfe", "río ☃ 東京", "rain* -sea +lake (a OR b) AND c~2 field:[1 TO 2]", "\x00",
		strings.Repeat("x ", 600), strings.Repeat(`"a `, 100),
	} {
		f.Add(s, "", 0, 0)
	}
	f.Add("frost", "Mastodon", 1, 1)
	x, err := OpenMem()
	if err != nil {
		f.Fatalf("OpenMem: %v", err)
	}
	defer closeOK(f, x)
	if err := x.Put(fixture()...); err != nil {
		f.Fatalf("Put: %v", err)
	}
	f.Fuzz(func(t *testing.T, text, source string, limit, offset int) {
		res, err := x.Search(t.Context(), Query{Text: text, Source: source, Limit: limit, Offset: offset})
		if err != nil {
			if !errors.Is(err, ErrQueryTooLarge) {
				t.Fatalf("Search(%q): %v", text, err)
			}
			return
		}
		wantMax := limit
		if limit <= 0 {
			wantMax = DefaultLimit
		}
		if len(res.Hits) > wantMax {
			t.Fatalf("Search(%q, Limit %d): %d hits", text, limit, len(res.Hits))
		}
		if res.Total > 7 {
			t.Fatalf("Search(%q): Total %d of 7 documents", text, res.Total)
		}
	})
}
