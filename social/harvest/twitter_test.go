package harvest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// countTweets counts the tweets of a tweets.js independently of the code
// under test.
func countTweets(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.IndexByte(b, '[')
	return bytes.Count(b[i:], []byte(`"tweet" : {`)) + bytes.Count(b[i:], []byte(`"tweet":{`))
}

func TestImportTwitterFixture(t *testing.T) {
	tweetsJS := filepath.Join(twitterFixture(t), "data", "tweets.js")
	tweets := countTweets(t, tweetsJS)
	if tweets != 1758 {
		t.Fatalf("the fixture has %d tweets, want 1758", tweets)
	}
	dir := t.TempDir()
	for name, path := range map[string]string{
		"folder":      twitterFixture(t),
		"data folder": filepath.Join(twitterFixture(t), "data"),
		"tweets.js":   tweetsJS,
		"zip":         writeZip(t, filepath.Join(dir, "twitter.zip"), dirEntries(t, twitterFixture(t), "")),
		"zip/wrapped": writeZip(t, filepath.Join(dir, "wrapped.zip"), dirEntries(t, twitterFixture(t), "twitter-2024-01-01-abc/")),
	} {
		t.Run(name, func(t *testing.T) {
			s := newMemSink()
			rep, err := ImportTwitter(t.Context(), path, s.sink, Options{})
			if err != nil {
				t.Fatalf("ImportTwitter: %v", err)
			}
			checkAccounted(t, rep)
			if rep.Seen != tweets || rep.Imported != tweets || rep.Skipped != 0 {
				t.Fatalf("seen %d, imported %d, skipped %d (%v); want all %d imported", rep.Seen, rep.Imported, rep.Skipped, rep.SkipReasons, tweets)
			}
			if rep.MediaFound != 0 || rep.MediaMissing != 91 || len(rep.Errors) != 0 {
				t.Fatalf("media found/missing %d/%d, errors %q; want 0/91 (no tweets_media folder), none", rep.MediaFound, rep.MediaMissing, rep.Errors)
			}
			boosts := 0
			for _, k := range s.order {
				it := s.items[k]
				checkSafeText(t, k, it.Text)
				if it.Author != "" || it.Time.IsZero() || strings.Contains(it.Text, "https://t.co/") && len(it.Media) > 0 {
					t.Fatalf("%s: author %q, time %v, text %q", k, it.Author, it.Time, it.Text)
				}
				if it.Boost {
					boosts++
				}
			}
			if boosts != 128 {
				t.Fatalf("%d retweets, want 128", boosts)
			}
			checkTweets(t, s)

			again, err := ImportTwitter(t.Context(), path, s.sink, Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkAccounted(t, again)
			if again.Imported != 0 || again.Duplicates != tweets {
				t.Fatalf("second import: imported %d, duplicates %d; want 0, %d", again.Imported, again.Duplicates, tweets)
			}
		})
	}
}

// checkTweets checks tweets of the fixture by hand.
func checkTweets(t *testing.T, s *memSink) {
	t.Helper()
	// A reply with a mention, a hashtag and a t.co link.
	got := s.find(t, SourceTwitter, "1488230291944529920")
	want := Item{
		Source:     SourceTwitter,
		OriginalID: "1488230291944529920",
		URL:        "https://twitter.com/i/web/status/1488230291944529920",
		Time:       time.Date(2022, 1, 31, 19, 18, 46, 0, time.UTC),
		Text: `@dgkeyes Here's a gist that shows how I extended the {trackdown} package for a "tracking-many-files" (e.g. Distill) ` +
			`situation: https://gist.github.com/smithjd/aaf71b5a6575a0d4a1e4ac3168c4c682 #RStats`,
		InReplyTo: "https://twitter.com/dgkeyes/status/1480585245434986504",
		Mentions:  []string{"@dgkeyes"},
		Tags:      []string{"RStats"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reply:\n got %#v\nwant %#v", got, want)
	}

	// An expanded link, and white space tidied.
	got = s.find(t, SourceTwitter, "1552312411591417860")
	if w := "I'm excited to convene a BoF about data analytics in support of religious or faith based organizations at " +
		"rstudio::conf(2022) https://sched.co/137li -- Thursday Breakfast #RstudioConf"; got.Text != w {
		t.Errorf("Text = %q, want %q", got.Text, w)
	}
	if w := time.Date(2022, 7, 27, 15, 18, 14, 0, time.UTC); !got.Time.Equal(w) || !reflect.DeepEqual(got.Tags, []string{"RstudioConf"}) {
		t.Errorf("Time = %v, Tags = %q", got.Time, got.Tags)
	}

	// A photo: its link leaves the text, the file is missing.
	got = s.find(t, SourceTwitter, "1552679756239441920")
	if w := "Awesome simultaneous conversation with presenters from Africa #rstudioconf2022"; got.Text != w {
		t.Errorf("Text = %q, want %q", got.Text, w)
	}
	if len(got.Media) != 1 || got.Media[0].Name != "1552679756239441920-FYw6AfMXwAEKcPJ.jpg" || got.Media[0].Type != "image/jpeg" || !got.Media[0].Missing {
		t.Errorf("Media = %+v", got.Media)
	}

	// A video is named after its best MP4.
	got = s.find(t, SourceTwitter, "1533261720847716352")
	if got.Text != "Rain" || len(got.Media) != 1 || got.Media[0].Name != "1533261720847716352-RjcxOl0Q_qjBrk9h.mp4" || got.Media[0].Type != "video/mp4" {
		t.Errorf("video tweet: %q %+v", got.Text, got.Media)
	}

	// A retweet, with an entity decoded and a link expanded.
	got = s.find(t, SourceTwitter, "1464661424580354048")
	if w := "RT @luckymarmot: Paw · The most advanced REST & GraphQL API client for Mac http://paw.cloud · Our crazy🤯 2021 Black Friday offer: Re…"; !got.Boost || got.Text != w {
		t.Errorf("retweet: boost %v, Text %q, want %q", got.Boost, got.Text, w)
	}
}

func TestImportTwitterMediaAccountAndLongPosts(t *testing.T) {
	const long = "This is a long post that goes on well past the old limit of two hundred and eighty characters, " +
		"because some thoughts need room: it talks about gardens, about tools, about the weather in July and about " +
		"why the tomatoes came late this year although the basil was early and the beans did fine. And then it ends."
	stub := long[:200] + "… https://t.co/LongPostXy"
	tweets := `window.YTD.tweets.part0 = [
  {"tweet": {"id_str": "1685000000000000001", "full_text": "` + stub + `", "created_at": "Sat Jul 29 10:00:01 +0000 2023",
    "entities": {"hashtags": [], "user_mentions": [], "urls": [{"url": "https://t.co/LongPostXy", "expanded_url": "https://twitter.com/i/web/status/1685000000000000001"}]}}},
  {"tweet": {"id_str": "1685000000000000002", "full_text": "A photo &amp; a caption https://t.co/PhotoLink1", "created_at": "Sat Jul 29 11:00:00 +0000 2023",
    "entities": {"hashtags": [{"text": "garden"}], "user_mentions": [], "urls": [],
      "media": [{"url": "https://t.co/PhotoLink1", "media_url": "http://pbs.twimg.com/media/Abc123.jpg", "type": "photo"}]},
    "extended_entities": {"media": [{"url": "https://t.co/PhotoLink1", "media_url_https": "https://pbs.twimg.com/media/Abc123.jpg", "type": "photo", "ext_alt_text": "Basil"}]}}}
]`
	notes := `window.YTD.note_tweet.part0 = [
  {"noteTweet": {"noteTweetId": "1684999999000000000", "createdAt": "2023-07-29T10:00:00.000Z", "updatedAt": "2023-07-29T10:00:00.000Z",
    "core": {"styletags": [], "urls": [], "text": "` + long + `", "mentions": [], "cashtags": [], "hashtags": [{"text": "gardens"}]}}},
  {"noteTweet": {"noteTweetId": "1600000000000000000", "createdAt": "2022-12-06T00:00:00.000Z",
    "core": {"text": "A long post whose tweet was deleted, so nothing matches it at all."}}}
]`
	account := `window.YTD.account.part0 = [ { "account" : { "email" : "ann@example.org", "username" : "ann_example", "accountId" : "42", "accountDisplayName" : "Ann" } } ]`
	files := []entry{
		{name: "data/tweets.js", data: []byte(tweets)},
		{name: "data/note-tweet.js", data: []byte(notes)},
		{name: "data/account.js", data: []byte(account)},
		{name: "data/tweets_media/1685000000000000002-Abc123.jpg", data: jpeg},
	}
	dir := t.TempDir()
	for name, path := range map[string]string{
		"zip":    writeZip(t, filepath.Join(dir, "x.zip"), files),
		"folder": writeDir(t, filepath.Join(dir, "x"), files),
	} {
		t.Run(name, func(t *testing.T) {
			s := newMemSink()
			var media []byte
			rep, err := ImportTwitter(t.Context(), path, func(ctx context.Context, it Item) (bool, error) {
				for _, m := range it.Media {
					rc, err := m.Open()
					if err != nil {
						return false, err
					}
					media, err = io.ReadAll(rc)
					closeReader(rc)
					if err != nil {
						return false, err
					}
				}
				return s.sink(ctx, it)
			}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkAccounted(t, rep)
			if rep.Imported != 2 || rep.MediaFound != 1 || len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0], "1600000000000000000") {
				t.Fatalf("report %+v: want 2 imported, 1 medium, the unmatched long post reported", rep)
			}
			lp := s.find(t, SourceTwitter, "1685000000000000001")
			if lp.Text != long || lp.Author != "@ann_example" || lp.URL != "https://twitter.com/ann_example/status/1685000000000000001" ||
				!reflect.DeepEqual(lp.Tags, []string{"gardens"}) {
				t.Errorf("long post: %#v", lp)
			}
			photo := s.find(t, SourceTwitter, "1685000000000000002")
			m := photo.Media
			if photo.Text != "A photo & a caption" || len(m) != 1 || m[0].Missing || m[0].Name != "1685000000000000002-Abc123.jpg" ||
				m[0].Size != int64(len(jpeg)) || m[0].Description != "Basil" || !bytes.Equal(media, jpeg) {
				t.Errorf("photo: %#v", photo)
			}
		})
	}
}

func TestImportTwitterHostile(t *testing.T) {
	dir := t.TempDir()
	good := `{"tweet": {"id_str": "1500000000000000001", "full_text": "one", "created_at": "Sun Mar 06 10:00:00 +0000 2022"}}`
	for _, tc := range []struct {
		name    string
		js      string
		want    error // nil: a partial import
		message string
	}{
		{"empty", "", ErrNotExport, "empty or cut short"},
		{"no prefix", "[" + good + "]", ErrNotExport, "does not start with"},
		{"wrong prefix", "var tweets = [" + good + "]", ErrNotExport, "does not start with"},
		{"code before", "alert(1); window.YTD.tweets.part0 = [" + good + "]", ErrNotExport, "does not start with"},
		{"bad part", "window.YTD.tweets.partX = [" + good + "]", ErrNotExport, "does not start with"},
		{"object", "window.YTD.tweets.part0 = {" + good + "}", ErrNotExport, "expected an array"},
		{"string", `window.YTD.tweets.part0 = "hello"`, ErrNotExport, "expected an array"},
		{"truncated", "window.YTD.tweets.part0 = [" + good + "," + good[:40], io.ErrUnexpectedEOF, "incomplete"},
		{"deep", "window.YTD.tweets.part0 = [" + strings.Repeat("[", 1_000_000), nil, "exceeded max depth"},
		{"long prefix", strings.Repeat("window", 100) + " = []", ErrNotExport, "does not start with"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeDir(t, filepath.Join(dir, tc.name), []entry{{name: "data/tweets.js", data: []byte(tc.js)}})
			rep, err := ImportTwitter(t.Context(), path, newMemSink().sink, Options{})
			checkAccounted(t, rep)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("err = %v, want %v with %q", err, tc.want, tc.message)
			}
		})
	}

	t.Run("malformed entries and bad UTF-8", func(t *testing.T) {
		js := "\uFEFF window.YTD.tweets.part0 = [" + good + `,
			{"tweet": {"id_str": 5}},
			{"tweet": {"full_text": "no id"}},
` + "\n{\"tweet\": {\"id_str\": \"1500000000000000002\", \"full_text\": \"caf\xe9 &lt;b&gt;bold&lt;/b&gt; \\u0000\", \"created_at\": \"bad date\"}}," + `
			{"tweet": {"id_str": "1500000000000000003", "full_text": "", "created_at": "Sun Mar 06 10:00:00 +0000 2022"}}
		];`
		path := writeDir(t, filepath.Join(dir, "malformed"), []entry{{name: "tweets.js", data: []byte(js)}})
		s := newMemSink()
		rep, err := ImportTwitter(t.Context(), path, s.sink, Options{})
		if err != nil {
			t.Fatal(err)
		}
		checkAccounted(t, rep)
		if rep.Seen != 5 || rep.Imported != 2 || rep.SkipReasons[reasonMalformed] != 2 || rep.SkipReasons[reasonEmpty] != 1 {
			t.Fatalf("report %+v", rep)
		}
		it := s.find(t, SourceTwitter, "1500000000000000002")
		if it.Text != "caf\uFFFD < b>bold< /b>" {
			t.Errorf("Text = %q", it.Text)
		}
		// The date comes from the ID when created_at is unreadable.
		if want, _ := snowflakeTime(it.OriginalID); !it.Time.Equal(want) || want.Year() != 2022 {
			t.Errorf("Time = %v, want %v", it.Time, want)
		}
	})
}
