package social

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plug-net/plug/crypto/cryptotest"
)

func TestEditKeepsIDAndRaisesVersion(t *testing.T) {
	s := newService(t, "ann")
	ctx := t.Context()
	first, err := s.Post(ctx, "tomatoes are ripening", nil)
	if err != nil {
		t.Fatal(err)
	}
	edited, err := s.Edit(ctx, first.ID, "  tomatoes are red #garden ", nil)
	if err != nil {
		t.Fatal(err)
	}
	if edited.ID != first.ID {
		t.Fatalf("edit changed the ID: %s -> %s", first.ID, edited.ID)
	}
	p := edited.Post
	if p.Version != 2 || p.Text != "tomatoes are red #garden" || !p.Created.Equal(first.Post.Created) || p.Edited.IsZero() {
		t.Fatalf("edited post = %+v, want version 2, new text, same creation time, an edit time", p)
	}
	if err := p.Check(); err != nil {
		t.Fatalf("the edit does not check: %v", err)
	}
	if !reflect.DeepEqual(edited.Tags, []string{"garden"}) {
		t.Fatalf("Tags = %q", edited.Tags)
	}
	third, err := s.Edit(ctx, first.ID, "tomatoes are eaten", nil)
	if err != nil {
		t.Fatal(err)
	}
	if third.Post.Version != 3 {
		t.Fatalf("second edit: version %d, want 3", third.Post.Version)
	}

	tl := timeline(t, s, TimelineQuery{})
	if len(tl) != 1 || tl[0].ID != first.ID || tl[0].Text != "tomatoes are eaten" || tl[0].Post.Version != 3 {
		t.Fatalf("timeline after two edits = %+v, want the one post at version 3", tl)
	}
	if got := find(t, s, "eaten", ""); !slices.Equal(got, []string{first.ID}) {
		t.Fatalf("search for the new text = %v", got)
	}
	if got := find(t, s, "ripening", ""); len(got) != 0 {
		t.Fatalf("search for the replaced text still finds %v", got)
	}
	if got := find(t, s, "#garden", ""); len(got) != 0 {
		t.Fatalf("search for a tag the edit removed still finds %v", got)
	}
}

func TestDeleteRemovesFromTimelineAndSearch(t *testing.T) {
	s := newService(t, "ann")
	ctx := t.Context()
	keep, err := s.Post(ctx, "the basil thrives", nil)
	if err != nil {
		t.Fatal(err)
	}
	gone, err := s.Post(ctx, "the basil died, sadly", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := find(t, s, "basil", ""); len(got) != 2 {
		t.Fatalf("before the deletion, search finds %v", got)
	}
	if err := s.Delete(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if got := ids(timeline(t, s, TimelineQuery{})); !slices.Equal(got, []string{keep.ID}) {
		t.Fatalf("timeline after the deletion = %v, want only %s", got, keep.ID)
	}
	if got := find(t, s, "basil", ""); !slices.Equal(got, []string{keep.ID}) {
		t.Fatalf("search after the deletion = %v, want only %s", got, keep.ID)
	}
	if got := find(t, s, "sadly", ""); len(got) != 0 {
		t.Fatalf("search still finds the deleted post: %v", got)
	}
	if _, ok := live(t, s, gone.ID); ok {
		t.Fatal("the deleted post is still an entry")
	}
	if _, err := s.Edit(ctx, gone.ID, "resurrected", nil); !errors.Is(err, ErrNoPost) {
		t.Fatalf("editing a deleted post: %v, want ErrNoPost", err)
	}
	if err := s.Delete(ctx, gone.ID); !errors.Is(err, ErrNoPost) {
		t.Fatalf("deleting twice: %v, want ErrNoPost", err)
	}
	if _, err := s.Edit(ctx, strings.Repeat("0", 32), "x", nil); !errors.Is(err, ErrNoPost) {
		t.Fatalf("editing an unknown post: %v, want ErrNoPost", err)
	}
}

func TestEditOrDeleteOfAnothersPostIsRefused(t *testing.T) {
	s := newService(t, "ann")
	bob := cryptotest.NewKeys(t)
	p := signedPost(bob, strings.Repeat("d4", 16), "Bob's post", 1, time.Now())
	if err := s.receive(p, "bob"); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := s.Edit(ctx, p.ID, "Ann was here", nil); !errors.Is(err, ErrNotYours) {
		t.Fatalf("editing Bob's post: %v, want ErrNotYours", err)
	}
	if err := s.Delete(ctx, p.ID); !errors.Is(err, ErrNotYours) {
		t.Fatalf("deleting Bob's post: %v, want ErrNotYours", err)
	}
	e, ok := live(t, s, p.ID)
	if !ok || e.Text != "Bob's post" || e.Post.Version != 1 || e.Author != "bob" || e.Own {
		t.Fatalf("Bob's post after the refusals: %+v (live %v)", e, ok)
	}
	// An imported item is nobody's post to edit either.
	rep, err := s.Import(ctx, SourceFeed, filepath.Join("testdata", "feed.rss"), nil)
	if err != nil || rep.Imported == 0 {
		t.Fatalf("import: %+v, %v", rep, err)
	}
	item := timeline(t, s, TimelineQuery{Source: SourceFeed})[0]
	if _, err := s.Edit(ctx, item.ID, "x", nil); !errors.Is(err, ErrNoPost) {
		t.Fatalf("editing an imported item: %v, want ErrNoPost", err)
	}
}

// newPostID returns a random post ID, as Service.Post makes them.
func newPostID(t testing.TB) string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// friendPosts stores n posts of a friend, an hour apart from base (the
// newest last), and returns their IDs newest first.
func friendPosts(t *testing.T, s *Service, name string, n int, base time.Time) []string {
	t.Helper()
	keys := cryptotest.NewKeys(t)
	var out []string
	for i := range n {
		id := newPostID(t)
		p := signedPost(keys, id, name+" post "+string(rune('A'+i)), 1, base.Add(time.Duration(i)*time.Hour))
		if err := s.receive(p, name); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	slices.Reverse(out)
	return out
}

func TestTimelinePagesNewestFirst(t *testing.T) {
	s := newService(t, "ann")
	base := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	want := friendPosts(t, s, "bob", 7, base)

	var got []string
	var before time.Time
	for page := 0; ; page++ {
		es, err := s.Timeline(t.Context(), TimelineQuery{Before: before, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			break
		}
		if page > 3 {
			t.Fatalf("page %d still has entries: paging does not end", page)
		}
		if len(es) > 3 {
			t.Fatalf("page %d has %d entries, limit 3", page, len(es))
		}
		for i, e := range es {
			if !before.IsZero() && !e.Time.Before(before) {
				t.Fatalf("page %d entry %d at %v, not before %v", page, i, e.Time, before)
			}
			if i > 0 && e.Time.After(es[i-1].Time) {
				t.Fatalf("page %d is not newest first: %v then %v", page, es[i-1].Time, e.Time)
			}
		}
		got = append(got, ids(es)...)
		before = es[len(es)-1].Time
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages = %v, want %v", got, want)
	}

	// Before is exclusive, and Limit 0 means a default page.
	es, err := s.Timeline(t.Context(), TimelineQuery{Before: base.Add(3 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(es); !slices.Equal(got, want[4:]) {
		t.Fatalf("before the fourth post: %v, want %v", got, want[4:])
	}
}

// Posts made at the same moment (an import of two tweets of the same
// second, two friends posting in the same millisecond) must not fall between
// two pages: "plug timeline --before TIME" pages with the time of the last
// entry shown.
func TestTimelinePagesKeepEntriesOfTheSameTime(t *testing.T) {
	s := newService(t, "ann")
	at := time.Date(2026, 2, 1, 8, 0, 0, 0, time.UTC)
	bob, cat := cryptotest.NewKeys(t), cryptotest.NewKeys(t)
	posts := []Post{
		signedPost(bob, strings.Repeat("1", 32), "newest", 1, at.Add(time.Hour)),
		signedPost(bob, strings.Repeat("2", 32), "same time, bob", 1, at),
		signedPost(cat, strings.Repeat("3", 32), "same time, cat", 1, at),
		signedPost(bob, strings.Repeat("4", 32), "oldest", 1, at.Add(-time.Hour)),
	}
	for _, p := range posts {
		if err := s.receive(p, "friend"); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	var before time.Time
	for range 10 {
		es, err := s.Timeline(t.Context(), TimelineQuery{Before: before, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			break
		}
		seen = append(seen, ids(es)...)
		before = es[len(es)-1].Time
	}
	slices.Sort(seen)
	if want := []string{posts[0].ID, posts[1].ID, posts[2].ID, posts[3].ID}; !slices.Equal(seen, want) {
		t.Fatalf("paging by the time of the last entry shown visits %v, want every post once: %v", seen, want)
	}
}

func TestTimelineFilters(t *testing.T) {
	s := newService(t, "ann")
	ctx := t.Context()
	own, err := s.Post(ctx, "my own post", nil)
	if err != nil {
		t.Fatal(err)
	}
	bobs := friendPosts(t, s, "bob", 3, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cats := friendPosts(t, s, "cat", 2, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	rep, err := s.Import(ctx, SourceFeed, filepath.Join("testdata", "feed.rss"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Imported != 2 {
		t.Fatalf("feed import: %+v, want 2 imported", rep)
	}
	bobID, _ := live(t, s, bobs[0])

	for _, c := range []struct {
		name string
		q    TimelineQuery
		want []string // nil: check count and source only
		n    int
	}{
		{name: "everything", q: TimelineQuery{}, n: 1 + 3 + 2 + 2},
		{name: "source plug", q: TimelineQuery{Source: SourcePlug}, want: append(append([]string{own.ID}, bobs...), cats...)},
		{name: "source feed", q: TimelineQuery{Source: SourceFeed}, n: 2},
		{name: "source mastodon", q: TimelineQuery{Source: SourceMastodon}, want: []string{}},
		{name: "author bob", q: TimelineQuery{Author: "bob"}, want: bobs},
		{name: "author BOB", q: TimelineQuery{Author: "BOB"}, want: bobs},
		{name: "author by peer ID", q: TimelineQuery{Author: bobID.AuthorID}, want: bobs},
		{name: "author cat", q: TimelineQuery{Author: "cat"}, want: cats},
		{name: "author ann", q: TimelineQuery{Author: "ann"}, want: []string{own.ID}},
		{name: "author of the feed", q: TimelineQuery{Author: "Ann Example", Source: SourceFeed}, n: 2},
		{name: "author nobody", q: TimelineQuery{Author: "dan"}, want: []string{}},
		{name: "bob in the feed", q: TimelineQuery{Author: "bob", Source: SourceFeed}, want: []string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			es := timeline(t, s, c.q)
			got := ids(es)
			for i, e := range es {
				if c.q.Source != "" && e.Source != c.q.Source {
					t.Fatalf("entry %s from %q, want %q", e.ID, e.Source, c.q.Source)
				}
				if i > 0 && e.Time.After(es[i-1].Time) {
					t.Fatalf("not newest first: %v then %v", es[i-1].Time, e.Time)
				}
			}
			if c.want != nil {
				if len(got) != len(c.want) || (len(got) > 0 && !slices.Equal(got, c.want)) {
					t.Fatalf("got %v, want %v", got, c.want)
				}
				return
			}
			if len(got) != c.n {
				t.Fatalf("got %d entries, want %d", len(got), c.n)
			}
		})
	}
}

// An item of a feed without a date must not sit above every newer post,
// and paging must reach the end.
func TestTimelineWithAnUndatedItem(t *testing.T) {
	s := newService(t, "ann")
	ctx := t.Context()
	if _, err := s.Post(ctx, "a post of today", nil); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Import(ctx, SourceFeed, filepath.Join("testdata", "undated.rss"), nil)
	if err != nil || rep.Imported != 2 {
		t.Fatalf("import: %+v, %v; want 2 imported", rep, err)
	}
	first := timeline(t, s, TimelineQuery{})
	for i := 1; i < len(first); i++ {
		if first[i].Time.After(first[i-1].Time) {
			t.Errorf("timeline is not newest first: %q (%v) before %q (%v)", first[i-1].Text, first[i-1].Time, first[i].Text, first[i].Time)
		}
	}
	var all []Entry
	var before time.Time
	for page := 0; ; page++ {
		if page > 5 {
			t.Errorf("paging by one does not end after %d pages: %v", page, ids(all))
			break
		}
		es, err := s.Timeline(ctx, TimelineQuery{Before: before, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			break
		}
		all = append(all, es...)
		before = es[0].Time
	}
	if len(all) != 3 {
		t.Errorf("paging found %d entries, want 3", len(all))
	}
}

func TestStateRoundTrip(t *testing.T) {
	keys := cryptotest.NewKeys(t)
	s := newServiceWith(t, "ann", keys, t.TempDir())
	ctx := t.Context()
	p1, err := s.Post(ctx, "first post about #bread", nil)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := s.Post(ctx, "sourdough starter notes", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Edit(ctx, p2.ID, "sourdough starter notes, day two", nil); err != nil {
		t.Fatal(err)
	}
	p3, err := s.Post(ctx, "a post regretted", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, p3.ID); err != nil {
		t.Fatal(err)
	}
	friendPosts(t, s, "bob", 3, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if _, err := s.Import(ctx, SourceFeed, filepath.Join("testdata", "feed.rss"), nil); err != nil {
		t.Fatal(err)
	}
	queries := []string{"bread", "sourdough", "regretted", "tomatoes", "bob", "post"}
	wantSearch := map[string][]string{}
	for _, q := range queries {
		wantSearch[q] = find(t, s, q, "")
	}
	if len(wantSearch["sourdough"]) != 1 || len(wantSearch["tomatoes"]) != 1 {
		t.Fatalf("search before the dump: %v", wantSearch)
	}
	wantTL := timeline(t, s, TimelineQuery{})
	if err := s.WriteState(ctx); err != nil {
		t.Fatal(err)
	}

	// A recovered plug: the same keys, a fresh store and index, the state
	// folder restored from the backup.
	f, err := os.Open(filepath.Join(s.StateDir(), StateFile))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }() // opened to read only: closing it loses nothing
	r := newServiceWith(t, "ann", keys, t.TempDir())
	if n, err := r.LoadState(ctx, f); err != nil || n == 0 {
		t.Fatalf("LoadState = %d, %v", n, err)
	}
	if got := timeline(t, r, TimelineQuery{}); !reflect.DeepEqual(got, wantTL) {
		t.Fatalf("timeline after LoadState:\n got %v\nwant %v", ids(got), ids(wantTL))
	}
	for _, q := range queries {
		if got := find(t, r, q, ""); !slices.Equal(got, wantSearch[q]) {
			t.Errorf("search %q after LoadState = %v, want %v", q, got, wantSearch[q])
		}
	}
	// The restored plug goes on: its posts stay its own, the deletion
	// stays, and the outbox counts on (friends pull after their cursor).
	if _, err := r.Edit(ctx, p1.ID, "first post about #bread, edited after recovery", nil); err != nil {
		t.Fatalf("editing a restored own post: %v", err)
	}
	old := *p3.Post
	if err := r.receive(old, "ann"); !errors.Is(err, errOldVersion) {
		t.Fatalf("the deleted post's first version after recovery: %v, want errOldVersion", err)
	}
	posts, next, _, err := r.outboxAfter(0)
	if err != nil {
		t.Fatal(err)
	}
	// Five versions before; the one after comes past the recovery gap, so
	// that a friend whose cursor passed the backup still pulls it.
	if next != 5+outboxRecoveryGap+1 || len(posts) != 3 {
		t.Fatalf("outbox after recovery: next %d, %d posts; want %d (five versions, the gap, one after), 3 posts", next, len(posts), 5+outboxRecoveryGap+1)
	}
	if after, _, _, _ := r.outboxAfter(5 + 100); len(after) != 1 {
		t.Fatalf("a friend whose cursor is past the backup pulls %d posts, want the one made after recovery", len(after))
	}
}
