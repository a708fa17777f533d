package harvest

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// noArchive is an archive that holds nothing: fuzzed exports reference
// media that are all missing.
type noArchive struct{}

func (noArchive) stat(string) (int64, error)                     { return 0, errNoEntry }
func (noArchive) open(string, int64) (io.ReadCloser, error)      { return nil, errNoEntry }
func (noArchive) openMedia(string, int64) (io.ReadCloser, error) { return nil, errNoEntry }
func (noArchive) find(string) (string, bool)                     { return "", false }
func (noArchive) Close() error                                   { return nil }

var _ archive = noArchive{}

// fixturePrefix returns the first n bytes of a fixture file, when the
// fixtures are there.
func fixturePrefix(f *testing.F, rel string, n int) []byte {
	b, err := os.ReadFile(filepath.Join(fixtures(f), rel))
	if err != nil {
		f.Fatal(err)
	}
	return b[:min(n, len(b))]
}

// checkFuzzed checks what any input must give: every entry accounted for
// and safe text.
func checkFuzzed(t *testing.T, im *importer, items []Item) {
	rep := im.report()
	if rep.Imported+rep.Duplicates+rep.Skipped != rep.Seen || rep.Imported != len(items) {
		t.Fatalf("report %+v for %d items", rep, len(items))
	}
	if len(rep.Errors) > MaxErrors {
		t.Fatalf("%d errors listed", len(rep.Errors))
	}
	for _, it := range items {
		for _, s := range append([]string{it.Text, it.Summary, it.Author}, append(it.Tags, it.Mentions...)...) {
			if !utf8.ValidString(s) || tagStart(s) >= 0 {
				t.Fatalf("unsafe text %q", s)
			}
		}
		if it.URL != "" && safeURL(it.URL) != it.URL {
			t.Fatalf("unsafe URL %q", it.URL)
		}
		if it.Key() == "" {
			t.Fatal("empty key")
		}
	}
}

func collect(items *[]Item) Sink {
	return func(_ context.Context, it Item) (bool, error) {
		*items = append(*items, it)
		return true, nil
	}
}

func FuzzTweetsJS(f *testing.F) {
	f.Add([]byte(`window.YTD.tweets.part0 = [{"tweet": {"id_str": "1500000000000000001", "full_text": "hi &amp; bye https://t.co/x",` +
		`"created_at": "Sun Mar 06 10:00:00 +0000 2022", "entities": {"urls": [{"url": "https://t.co/x", "expanded_url": "https://x.example"}],` +
		`"hashtags": [{"text": "a"}], "user_mentions": [{"screen_name": "b"}]}, "extended_entities": {"media": [{"url": "https://t.co/x",` +
		`"media_url": "http://pbs.twimg.com/media/A.jpg", "type": "photo"}]}}}]`))
	f.Add([]byte("window.YTD.tweets.part0 = []"))
	f.Add([]byte("window.YTD.tweets.part0 = {}"))
	f.Add([]byte("window.YTD.tweet.part12 = [{\"id_str\": \"1\", \"full_text\": \"old style\"}];\n"))
	f.Add([]byte("alert(1) = ["))
	f.Add([]byte("window.YTD.tweets.part0 = [" + strings.Repeat("[", 20000)))
	f.Add(fixturePrefix(f, "twitter-archive/data/tweets.js", 8000))
	f.Fuzz(func(t *testing.T, data []byte) {
		var items []Item
		im := newImporter(context.Background(), SourceTwitter, collect(&items), Options{})
		tc := &twitterContext{a: noArchive{}, notes: &noteIndex{}}
		if err := im.tweets(bytes.NewReader(data), "tweets.js", tc); err == nil && !bytes.Contains(data, []byte("YTD.")) {
			t.Fatalf("accepted a file without the YTD assignment: %q", data)
		}
		checkFuzzed(t, im, items)
		for _, it := range items {
			for _, m := range it.Media {
				if !m.Missing || m.Open != nil {
					t.Fatalf("media %+v found in an empty archive", m)
				}
			}
		}
	})
}

func FuzzOutbox(f *testing.F) {
	f.Add(outboxWith(note("1", "<p>hello <a href=\"x\">#tag</a></p>", "/media_attachments/a.jpg")))
	f.Add(outboxWith(`{"type":"Announce","id":"a","object":"https://x.example/1","published":"2024-01-01T00:00:00Z"}`,
		`{"type":"Create","object":{"id":"q","type":"Question","content":"?","oneOf":[{"name":"yes"},{"name":"no"}],"to":"as:Public"}}`))
	f.Add([]byte(`{"type":"OrderedCollection","orderedItems":[{"type":"Create","object":{"type":"Note","tag":{"type":"Mention","name":"@a"},` +
		`"attachment":{"url":[{"href":"https://x.example/a.png","mediaType":"image/png"}]},"url":{"href":"https://x.example/n"},"to":[]}}]}`))
	f.Add([]byte(`{"orderedItems":[` + strings.Repeat("[", 20000)))
	f.Add([]byte(`{"@context":` + strings.Repeat(`{"a":`, 600)))
	f.Add(fixturePrefix(f, "mastodon-archive/outbox.json", 12000))
	f.Fuzz(func(t *testing.T, data []byte) {
		var items []Item
		im := newImporter(context.Background(), SourceMastodon, collect(&items), Options{})
		ac := &apContext{followers: "https://ex.social/users/ann/followers"}
		ac.media = func(m apMedia) Media { return im.archiveMedia(noArchive{}, "", m) }
		_ = im.outbox(bytes.NewReader(data), "outbox.json", ac) // most inputs are refused: the checks are that nothing panics and what is kept
		checkFuzzed(t, im, items)
	})
}

func FuzzHTMLText(f *testing.F) {
	for _, s := range []string{
		"<p>one<br>two</p>", "&lt;script&gt;", "<<script>>", "<</p>p>", "&lt;&lt;b&gt;", "a<\x00b", "<\u00e9t\u00e9>",
		"<p>caf\xe9</p>", "<![CDATA[<b>]]>", "<a href='x'>&#60;i&#62;</a>", "&#x3c;svg onload=alert(1)&#x3e;", "<\u202eb>",
		"<style><b>x</b></style>", "<textarea><b></textarea>", "<!---->< !-- -->", "&lt;\r\nb", "&lt;\u00a0b",
	} {
		f.Add(s)
	}
	for _, name := range []string{"rss.xml", "atom.xml"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(string(b))
		}
	}
	c := newTextCleaner()
	f.Fuzz(func(t *testing.T, s string) {
		for _, out := range []string{c.html(s), c.plain(s), line(s)} {
			if !utf8.ValidString(out) {
				t.Fatalf("invalid UTF-8 %q from %q", out, s)
			}
			if i := tagStart(out); i >= 0 {
				t.Fatalf("'<' starts a tag at %d in %q from %q", i, out, s)
			}
			if strings.TrimSpace(out) != out {
				t.Fatalf("untidy %q from %q", out, s)
			}
		}
	})
}
