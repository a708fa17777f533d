package social

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plug-net/plug/social/harvest"
)

// countTimeline pages through the whole timeline of source as a client
// does, and returns the entries.
func pageAll(t *testing.T, s *Service, source string) []Entry {
	t.Helper()
	var all []Entry
	var before time.Time
	for {
		es, err := s.Timeline(t.Context(), TimelineQuery{Source: source, Before: before, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			return all
		}
		all = append(all, es...)
		before = es[len(es)-1].Time
	}
}

// checkAccounted checks the import report: every item seen is counted once.
func checkAccounted(t *testing.T, rep ImportReport) {
	t.Helper()
	if rep.Imported+rep.Duplicates+rep.Skipped != rep.Seen {
		t.Fatalf("imported %d + duplicates %d + skipped %d != seen %d (%+v)", rep.Imported, rep.Duplicates, rep.Skipped, rep.Seen, rep)
	}
	skipped := 0
	for _, n := range rep.SkipReasons {
		skipped += n
	}
	if skipped != rep.Skipped {
		t.Fatalf("skip reasons %v add up to %d, skipped %d", rep.SkipReasons, skipped, rep.Skipped)
	}
	if len(rep.Errors) != 0 {
		t.Fatalf("import errors: %q", rep.Errors)
	}
}

// checkImportedTwice imports src into a new Service twice and checks the
// counts; it returns the service and the first report.
func checkImportedTwice(t *testing.T, kind, src string, seen int) (*Service, ImportReport) {
	t.Helper()
	s := newService(t, "ann")
	ctx := t.Context()
	var calls int
	rep, err := s.Import(ctx, kind, src, func(done, total int) { calls++ })
	if err != nil {
		t.Fatalf("Import(%s): %v", kind, err)
	}
	checkAccounted(t, rep)
	if rep.Seen != seen || rep.Imported == 0 || rep.Duplicates != 0 {
		t.Fatalf("first import: %+v; want %d seen, some imported, no duplicates", rep, seen)
	}
	if calls == 0 {
		t.Fatal("the import never reported progress")
	}
	es := pageAll(t, s, kind)
	if len(es) != rep.Imported {
		t.Fatalf("the timeline of %s holds %d entries, %d were imported", kind, len(es), rep.Imported)
	}
	if other := pageAll(t, s, SourcePlug); len(other) != 0 {
		t.Fatalf("imported items appear as plug posts: %d", len(other))
	}
	for i, e := range es {
		if e.Source != kind || e.Time.IsZero() || e.Own || e.Post != nil || e.Key == "" || e.ID != entryID(e.Key) {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}

	again, err := s.Import(ctx, kind, src, nil)
	if err != nil {
		t.Fatalf("second Import(%s): %v", kind, err)
	}
	checkAccounted(t, again)
	if again.Imported != 0 || again.Duplicates != rep.Imported || again.Skipped != rep.Skipped || again.Seen != rep.Seen {
		t.Fatalf("second import: %+v; want 0 imported, %d duplicates, %d skipped", again, rep.Imported, rep.Skipped)
	}
	if n := len(pageAll(t, s, kind)); n != rep.Imported {
		t.Fatalf("after the second import the timeline holds %d entries, want %d", n, rep.Imported)
	}
	return s, rep
}

// checkFound checks that an entry is the first hit of query, also within
// its source.
func checkFound(t *testing.T, s *Service, query string, e Entry) {
	t.Helper()
	for _, source := range []string{"", e.Source} {
		got, total, err := s.Search(t.Context(), query, source, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || got[0].ID != e.ID || total == 0 {
			t.Fatalf("search %q (source %q) = %v, want %s first", query, source, ids(got), e.ID)
		}
	}
	// And the timeline shows it at its date.
	got, err := s.Timeline(t.Context(), TimelineQuery{Source: e.Source, Before: e.Time.Add(time.Nanosecond), Limit: 1})
	if err != nil || len(got) != 1 || got[0].ID != e.ID {
		t.Fatalf("timeline before %v = %v, %v; want %s", e.Time, ids(got), err, e.ID)
	}
}

func TestImportMastodon(t *testing.T) {
	dir := filepath.Join(fixtures(t), "mastodon-archive")
	// Counted here, independently of the importer.
	b, err := os.ReadFile(filepath.Join(dir, "outbox.json"))
	if err != nil {
		t.Fatal(err)
	}
	var outbox struct {
		OrderedItems []json.RawMessage `json:"orderedItems"`
	}
	if err := json.Unmarshal(b, &outbox); err != nil {
		t.Fatal(err)
	}
	s, rep := checkImportedTwice(t, SourceMastodon, dir, len(outbox.OrderedItems))
	if rep.Skipped == 0 || rep.SkipReasons == nil {
		t.Errorf("no direct message was skipped: %+v", rep)
	}
	if rep.MediaFound != 0 || rep.MediaMissing == 0 {
		t.Errorf("media found %d, missing %d; the fixture references media it does not hold", rep.MediaFound, rep.MediaMissing)
	}

	// Checked by hand in outbox.json: the Create activity of
	// statuses/112658075826196619, published 2024-06-22T03:10:15Z, content
	// "<p>I really enjoy <span class="h-card">@opencage</span> #geoweirdness posts.</p>".
	const status = "https://indieweb.social/users/dealingwith/statuses/112658075826196619"
	e, ok := live(t, s, entryID("mastodon:"+status))
	if !ok {
		t.Fatalf("toot %s is not in the timeline", status)
	}
	want := Entry{
		ID: e.ID, Key: "mastodon:" + status, Source: SourceMastodon, Author: "@dealingwith@indieweb.social",
		Time: time.Date(2024, 6, 22, 3, 10, 15, 0, time.UTC), Text: "I really enjoy @opencage #geoweirdness posts.",
		URL: "https://indieweb.social/@dealingwith/112658075826196619", Tags: []string{"geoweirdness"},
		Mentions: []string{"@opencage@en.osm.town"},
	}
	if !reflect.DeepEqual(e, want) {
		t.Fatalf("toot:\n got %+v\nwant %+v", e, want)
	}
	checkFound(t, s, "geoweirdness", e)
	checkFound(t, s, `"really enjoy @opencage"`, e)

	// statuses/109376719336938342 has two attachments the archive lacks.
	att, ok := live(t, s, entryID("mastodon:https://indieweb.social/users/dealingwith/statuses/109376719336938342"))
	if !ok || len(att.Media) != 2 || !att.Media[0].Missing || !att.Media[1].Missing || att.Media[0].Hash != "" {
		t.Fatalf("toot with missing attachments: %+v (found %v)", att.Media, ok)
	}
}

func TestImportTwitter(t *testing.T) {
	dir := filepath.Join(fixtures(t), "twitter-archive")
	b, err := os.ReadFile(filepath.Join(dir, "data", "tweets.js"))
	if err != nil {
		t.Fatal(err)
	}
	var tweets []json.RawMessage
	if err := json.Unmarshal(b[strings.IndexByte(string(b), '['):], &tweets); err != nil {
		t.Fatal(err)
	}
	s, rep := checkImportedTwice(t, SourceTwitter, dir, len(tweets))
	if rep.Imported != len(tweets) {
		t.Errorf("imported %d of %d tweets", rep.Imported, len(tweets))
	}

	// Checked by hand in tweets.js: id_str 1552318600203190273, created_at
	// "Wed Jul 27 15:42:49 +0000 2022", full_text "So far it looks like
	// we'll have Jewish, Episcopalian, and Buddhist perspectives and
	// experiences.  #RStudioConf" (two spaces, tidied to one).
	e, ok := live(t, s, entryID("twitter:1552318600203190273"))
	if !ok {
		t.Fatal("tweet 1552318600203190273 is not in the timeline")
	}
	if got, want := e.Text, "So far it looks like we'll have Jewish, Episcopalian, and Buddhist perspectives and experiences. #RStudioConf"; got != want {
		t.Errorf("Text = %q, want %q", got, want)
	}
	if got, want := e.Time, time.Date(2022, 7, 27, 15, 42, 49, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Time = %v, want %v", got, want)
	}
	if e.Source != SourceTwitter || !strings.HasSuffix(e.URL, "/status/1552318600203190273") || e.InReplyTo == "" {
		t.Errorf("tweet: %+v", e)
	}
	checkFound(t, s, "Episcopalian", e)
	checkFound(t, s, "buddhist perspectives", e)

	// Two tweets share a second (created_at "Sat Feb 21 18:47:53 +0000
	// 2015": 569206894591672320 and 569206893207375872); paging one at a
	// time, as "plug timeline --before" does, shows both.
	at := time.Date(2015, 2, 21, 18, 47, 53, 0, time.UTC)
	var got []string
	before := at.Add(time.Second)
	for range 3 {
		es, err := s.Timeline(t.Context(), TimelineQuery{Source: SourceTwitter, Before: before, Limit: 1})
		if err != nil || len(es) == 0 {
			t.Fatalf("Timeline: %v, %v", ids(es), err)
		}
		for _, e := range es {
			if e.Time.Equal(at) {
				got = append(got, e.Key)
			}
		}
		before = es[len(es)-1].Time
	}
	slices.Sort(got)
	if want := []string{"twitter:569206893207375872", "twitter:569206894591672320"}; !slices.Equal(got, want) {
		t.Errorf("paging one at a time over the tweets of %v shows %v, want %v", at, got, want)
	}
}

// TestSources: the sources of entries are the plug's own, then every
// registered importer's; a filter or an import kind outside them is
// refused with the list, and Import refuses an unknown kind before it
// reads anything.
func TestSources(t *testing.T) {
	want := []string{SourcePlug}
	for _, im := range harvest.Importers() {
		want = append(want, string(im.Source))
	}
	if got := Sources(); !slices.Equal(got, want) {
		t.Fatalf("Sources() = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		source     string
		filter, im bool // accepted as a filter, as an import kind
	}{
		{"", true, false},
		{SourcePlug, true, false},
		{SourceMastodon, true, true},
		{SourceTwitter, true, true},
		{SourceFeed, true, true},
		{"Mastodon", false, false},
		{"rss", false, false},
	} {
		t.Run(tc.source, func(t *testing.T) {
			err := CheckSource(tc.source)
			if (err == nil) != tc.filter || (err != nil && !errors.Is(err, ErrUnknownSource)) {
				t.Errorf("CheckSource(%q) = %v, want accepted %v", tc.source, err, tc.filter)
			}
			err = CheckImportKind(tc.source)
			if (err == nil) != tc.im || (err != nil && !errors.Is(err, ErrUnknownSource)) {
				t.Errorf("CheckImportKind(%q) = %v, want accepted %v", tc.source, err, tc.im)
			}
		})
	}
	if err := CheckSource("rss"); !strings.Contains(err.Error(), "plug, mastodon, twitter or feed") {
		t.Errorf("CheckSource(rss) = %q, want the sources listed", err)
	}
	s := newService(t, "ann")
	if _, err := s.Import(t.Context(), "rss", "/nonexistent", nil); !errors.Is(err, ErrUnknownSource) ||
		!strings.Contains(err.Error(), "mastodon, twitter or feed") {
		t.Errorf("Import of kind rss = %v, want ErrUnknownSource listing the importers", err)
	}
}
