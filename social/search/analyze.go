package search

import (
	"strings"
	"unicode"
	"unicode/utf8"

	porterstemmer "github.com/blevesearch/go-porterstemmer"
)

// token is one term of analysed text and its position: the ordinal of
// the word it came from, counting the stop words that were dropped, so
// that a phrase's words must stand exactly as far apart as in the query.
type token struct {
	term string
	pos  int
}

// analyse turns text into the terms the index keeps for Text and Summary,
// and a query's words are looked up by:
//
//  1. words, after the word-boundary rules of Unicode (UAX #29) in
//     simplified form: runs of letters, marks and digits (and "_"), kept
//     whole across an apostrophe, ':' or '.' between two letters
//     ("don't", "lang:en", "example.social") and across '.', ',' or ';'
//     between two digits ("3.14", "1,000"); each Han, Hiragana or
//     Katakana character is a word of its own;
//  2. a possessive "'s" dropped ("Ann's" → "Ann");
//  3. lower case ("River" → "river"; accents are kept: "café" ≠ "cafe");
//  4. English stop words dropped ("the", "of", "and");
//  5. Porter stemming ("running" → "run", "gardens" → "garden").
//
// Positions count from 1.
func analyse(text string) []token {
	var out []token
	pos := 0
	words(text, func(w string) {
		pos++
		if t := normWord(w); t != "" {
			out = append(out, token{t, pos})
		}
	})
	return out
}

// terms returns the terms of text without positions, each once.
func terms(text string) []string {
	var out []string
	for _, t := range analyse(text) {
		out = appendNew(out, t.term)
	}
	return out
}

// normWord applies steps 2 to 5 of analyse to one word; "" means the
// word is dropped.
func normWord(w string) string {
	for _, s := range [...]string{"'s", "'S", "\u2019s", "\u2019S", "\uff07s", "\uff07S"} {
		if len(w) > len(s) && strings.HasSuffix(w, s) {
			w = w[:len(w)-len(s)]
			break
		}
	}
	w = strings.ToLower(w)
	if _, stop := englishStopWords[w]; stop {
		return ""
	}
	return string(porterstemmer.StemWithoutLowerCasing([]rune(w)))
}

// words calls fn with each word of s (step 1 of analyse).
func words(s string, fn func(string)) {
	start := -1 // start of the word being read, or -1
	var prev rune
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case ideograph(r):
			if start >= 0 {
				fn(s[start:i])
				start = -1
			}
			fn(s[i : i+size])
			prev = 0
		case wordRune(r):
			if start < 0 {
				start = i
			}
			prev = r
		case start >= 0 && joins(prev, r, s[i+size:]):
			// stays inside the word; prev keeps the last word rune
		default:
			if start >= 0 {
				fn(s[start:i])
				start = -1
			}
			prev = 0
		}
		i += size
	}
	if start >= 0 {
		fn(s[start:])
	}
}

// wordRune reports whether r belongs to a word.
func wordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || unicode.In(r, unicode.Nd, unicode.Nl, unicode.Pc)
}

// ideograph reports whether r is a word on its own: scripts written
// without spaces between words.
func ideograph(r rune) bool {
	return r >= 0x2e80 && unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana)
}

// joins reports whether the punctuation r, after the word rune prev and
// before rest, keeps the word going.
func joins(prev, r rune, rest string) bool {
	next, _ := utf8.DecodeRuneInString(rest)
	if ideograph(next) || !wordRune(next) {
		return false
	}
	letters := unicode.IsLetter(prev) && unicode.IsLetter(next)
	digits := unicode.IsDigit(prev) && unicode.IsDigit(next)
	switch r {
	case '\'', '\u2019', '.', '\uff07', '\ufe52', '\uff0e':
		return letters || digits
	case ':', '\u00b7', '\u0387', '\u05f4', '\u2027', '\ufe13', '\ufe55', '\uff1a':
		return letters
	case ',', ';', '\u037e', '\u0589', '\u060c', '\u060d', '\u066c', '\u07f8', '\u2044', '\ufe10', '\ufe14', '\ufe50', '\ufe54', '\uff0c', '\uff1b':
		return digits
	}
	return false
}

// englishStopWords are the English stop words: the Snowball project's list
// (snowball.tartarus.org/algorithms/english/stop.txt, BSD licence), as
// Lucene and bleve use it.
var englishStopWords = func() map[string]struct{} {
	const list = `i me my myself we our ours ourselves you your yours yourself yourselves
he him his himself she her hers herself it its itself they them their theirs themselves
what which who whom this that these those am is are was were be been being have has had
having do does did doing would should could ought i'm you're he's she's it's we're
they're i've you've we've they've i'd you'd he'd she'd we'd they'd i'll you'll he'll
she'll we'll they'll isn't aren't wasn't weren't hasn't haven't hadn't doesn't don't
didn't won't wouldn't shan't shouldn't can't cannot couldn't mustn't let's that's who's
what's here's there's when's where's why's how's a an the and but if or because as until
while of at by for with about against between into through during before after above
below to from up down in out on off over under again further then once here there when
where why how all any both each few more most other some such no nor not only own same so
than too very`
	m := make(map[string]struct{})
	for _, w := range strings.Fields(list) {
		m[w] = struct{}{}
		m[strings.ReplaceAll(w, "'", "\u2019")] = struct{}{}
	}
	return m
}()
