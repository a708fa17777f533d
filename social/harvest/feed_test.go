package harvest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// feedCase is a feed document of testdata/ and what it must give.
type feedCase struct {
	file, contentType string
	seen, imported    int
	check             func(t *testing.T, s *memSink, base string)
}

var feedCases = []feedCase{
	{
		file: "rss.xml", contentType: "application/rss+xml", seen: 3, imported: 2,
		check: func(t *testing.T, s *memSink, base string) {
			it := s.find(t, SourceFeed, "ann-2024-07-tomatoes")
			want := Item{
				Source:     SourceFeed,
				OriginalID: "ann-2024-07-tomatoes",
				URL:        "https://ann.example.org/2024/07/tomatoes",
				Author:     "Ann Example",
				Time:       time.Date(2024, 7, 16, 16, 30, 0, 0, time.UTC),
				Text:       "The first San Marzano is red.\nBasil is < finally> thriving.\n\nPhotos: album",
				Summary:    "Tomatoes & basil, week 12",
				Tags:       []string{"garden", "tomatoes"},
			}
			m := it.Media
			it.Media = nil
			if !reflect.DeepEqual(it, want) {
				t.Errorf("item:\n got %#v\nwant %#v", it, want)
			}
			if len(m) != 1 || m[0].Name != "tomato.jpg" || m[0].Type != "image/jpeg" || m[0].Size != 48213 || m[0].Missing || m[0].Open == nil {
				t.Errorf("media = %+v", m)
			}
			it = s.find(t, SourceFeed, "https://ann.example.org/2024/06/chisels")
			if it.Text != "A 1000/6000 water stone and patience. Nothing else." || !it.Time.Equal(time.Date(2024, 6, 1, 9, 0, 0, 0, time.UTC)) {
				t.Errorf("second item: %#v", it)
			}
		},
	},
	{
		file: "atom.xml", contentType: "application/atom+xml", seen: 2, imported: 2,
		check: func(t *testing.T, s *memSink, base string) {
			it := s.find(t, SourceFeed, "tag:bob.example.net,2024:shelf-v2")
			want := Item{
				Source:     SourceFeed,
				OriginalID: "tag:bob.example.net,2024:shelf-v2",
				URL:        "https://bob.example.net/shelf-v2",
				Author:     "Bob Builder",
				Time:       time.Date(2024, 5, 2, 20, 15, 0, 0, time.UTC),
				Text:       "Oak, dovetails,\nand no screws.\n\n4 shelves\n1 m wide",
				Summary:    "Shelf v2 is done",
				Tags:       []string{"woodwork", "oak"},
			}
			if !reflect.DeepEqual(it, want) {
				t.Errorf("item:\n got %#v\nwant %#v", it, want)
			}
			it = s.find(t, SourceFeed, "tag:bob.example.net,2024:draft")
			wantURL := "" // a relative link in a file leads nowhere
			if base != "" {
				wantURL = base + "/drafts/1"
			}
			if it.Text != "Only a summary here." || it.URL != wantURL || !it.Time.Equal(time.Date(2024, 4, 1, 12, 0, 0, 0, time.UTC)) {
				t.Errorf("second item: %#v", it)
			}
		},
	},
	{
		file: "feed.json", contentType: "application/feed+json", seen: 2, imported: 2,
		check: func(t *testing.T, s *memSink, base string) {
			it := s.find(t, SourceFeed, "https://cleo.example.com/2024/03/10/rain")
			if it.Text != "Rain again.\n\nThe river is high; the ducks are pleased." || it.Author != "Cleo" ||
				!it.Time.Equal(time.Date(2024, 3, 10, 12, 45, 0, 0, time.UTC)) || !reflect.DeepEqual(it.Tags, []string{"weather", "river"}) {
				t.Errorf("item: %#v", it)
			}
			if m := it.Media; len(m) != 1 || m[0].Name != "ducks.mp4" || m[0].Type != "video/mp4" || m[0].Size != 1<<20 {
				t.Errorf("media = %+v", m)
			}
			it = s.find(t, SourceFeed, "42")
			if it.Text != "Sourdough, day 3: it & I are friends now." || it.Summary != "Bread" || it.URL != "https://cleo.example.com/2024/03/09/bread" {
				t.Errorf("second item: %#v", it)
			}
		},
	},
}

func TestImportFeedFormats(t *testing.T) {
	var mu sync.Mutex
	var agents []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		agents = append(agents, r.UserAgent())
		mu.Unlock()
		for _, fc := range feedCases {
			if r.URL.Path == "/"+fc.file {
				w.Header().Set("Content-Type", fc.contentType)
				http.ServeFile(w, r, filepath.Join("testdata", fc.file))
				return
			}
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()

	for _, fc := range feedCases {
		for _, from := range []string{"file", "http"} {
			t.Run(fc.file+"/"+from, func(t *testing.T) {
				src, base := filepath.Join("testdata", fc.file), ""
				if from == "http" {
					src, base = srv.URL+"/"+fc.file, srv.URL
				}
				s := newMemSink()
				rep, err := ImportFeed(t.Context(), src, s.sink, Options{})
				if err != nil {
					t.Fatalf("ImportFeed(%s): %v", src, err)
				}
				checkAccounted(t, rep)
				if rep.Seen != fc.seen || rep.Imported != fc.imported || len(rep.Errors) != 0 {
					t.Fatalf("report %+v: want %d seen, %d imported", rep, fc.seen, fc.imported)
				}
				for _, k := range s.order {
					checkSafeText(t, k, s.items[k].Text)
				}
				fc.check(t, s, base)
				again, err := ImportFeed(t.Context(), src, s.sink, Options{})
				if err != nil || again.Duplicates != fc.imported || again.Imported != 0 {
					t.Fatalf("second import: %+v, %v", again, err)
				}
			})
		}
	}
	for _, a := range agents {
		if a != UserAgent {
			t.Fatalf("User-Agent %q, want %q", a, UserAgent)
		}
	}
}

func TestImportFeedMediaFetched(t *testing.T) {
	rss, err := os.ReadFile(filepath.Join("testdata", "rss.xml"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	mux.HandleFunc("/feed.xml", func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.ReplaceAll(rss, []byte("https://ann.example.org/media/"), []byte(srv.URL+"/media/")))
	})
	mux.HandleFunc("/media/tomato.jpg", func(w http.ResponseWriter, r *http.Request) { w.Write(jpeg) })
	var got []byte
	rep, err := ImportFeed(t.Context(), srv.URL+"/feed.xml", func(ctx context.Context, it Item) (bool, error) {
		for _, m := range it.Media {
			rc, err := m.Open()
			if err != nil {
				return false, err
			}
			got, err = io.ReadAll(rc)
			closeReader(rc)
			if err != nil {
				return false, err
			}
		}
		return true, nil
	}, Options{})
	if err != nil || rep.MediaFound != 1 || !bytes.Equal(got, jpeg) {
		t.Fatalf("report %+v, err %v, media %d bytes", rep, err, len(got))
	}
}

// outboxServer serves an actor and its outbox of three pages of two
// activities each; "next" of the last page points to another host.
type outboxServer struct {
	*httptest.Server
	mu      sync.Mutex
	accepts map[string]string // path?query -> Accept header
}

func newOutboxServer(t *testing.T) *outboxServer {
	o := &outboxServer{accepts: map[string]string{}}
	o.Server = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.Close)
	return o
}

func (o *outboxServer) serve(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.accepts[r.URL.RequestURI()] = r.Header.Get("Accept")
	o.mu.Unlock()
	u := o.URL
	w.Header().Set("Content-Type", "application/activity+json")
	switch r.URL.RequestURI() {
	case "/users/ann":
		fmt.Fprintf(w, `{"@context":"https://www.w3.org/ns/activitystreams","id":"%s/users/ann","type":"Person","preferredUsername":"ann",`+
			`"followers":"%s/users/ann/followers","outbox":"%s/users/ann/outbox"}`, u, u, u)
	case "/users/ann/outbox":
		fmt.Fprintf(w, `{"@context":"https://www.w3.org/ns/activitystreams","id":"%s/users/ann/outbox","type":"OrderedCollection",`+
			`"totalItems":6,"first":"%s/users/ann/outbox?page=1","last":"%s/users/ann/outbox?page=3"}`, u, u, u)
	case "/users/ann/outbox?page=1", "/users/ann/outbox?page=2", "/users/ann/outbox?page=3":
		page := r.URL.Query().Get("page")
		next := fmt.Sprintf(`"%s/users/ann/outbox?page=%c"`, u, page[0]+1)
		if page == "3" {
			next = `"https://elsewhere.example/outbox?page=4"`
		}
		items := []string{
			strings.ReplaceAll(note("p"+page+"a", "<p>Page "+page+", first</p>", "/media/p"+page+".jpg"), "https://ex.social", u),
			`{"id":"` + u + `/users/ann/statuses/p` + page + `b/activity","type":"Announce","actor":"` + u + `/users/ann",` +
				`"published":"2024-02-0` + page + `T00:00:00Z","to":["https://www.w3.org/ns/activitystreams#Public"],"object":"https://other.example/notes/` + page + `"}`,
		}
		fmt.Fprintf(w, `{"id":"%s/users/ann/outbox?page=%s","type":"OrderedCollectionPage","partOf":"%s/users/ann/outbox","next":%s,"orderedItems":[%s]}`,
			u, page, u, next, strings.Join(items, ","))
	case "/media/p1.jpg":
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(jpeg)
	default:
		http.NotFound(w, r)
	}
}

func TestImportFeedOutboxPages(t *testing.T) {
	o := newOutboxServer(t)
	for _, tc := range []struct {
		name     string
		src      string
		maxPages int
		want     int
		problem  string
	}{
		{"actor", o.URL + "/users/ann", 0, 6, "another host"},
		{"outbox", o.URL + "/users/ann/outbox", 0, 6, "another host"},
		{"two pages", o.URL + "/users/ann/outbox", 2, 4, "stopped after 2 pages"},
		{"one page", o.URL + "/users/ann/outbox?page=2", 1, 2, "stopped after 1 pages"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newMemSink()
			var media []byte
			rep, err := ImportFeed(t.Context(), tc.src, func(ctx context.Context, it Item) (bool, error) {
				if len(it.Media) == 1 && strings.HasSuffix(it.OriginalID, "/p1a") {
					rc, err := it.Media[0].Open()
					if err != nil {
						return false, err
					}
					defer closeReader(rc)
					if media, err = io.ReadAll(rc); err != nil {
						return false, err
					}
				}
				return s.sink(ctx, it)
			}, Options{MaxPages: tc.maxPages})
			if err != nil {
				t.Fatal(err)
			}
			checkAccounted(t, rep)
			if rep.Seen != tc.want || rep.Imported != tc.want || len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0], tc.problem) {
				t.Fatalf("report %+v: want %d imported and a problem with %q", rep, tc.want, tc.problem)
			}
			if tc.name == "actor" {
				it := s.find(t, SourceFeed, o.URL+"/users/ann/statuses/p2a")
				host := strings.TrimPrefix(o.URL, "http://")
				if it.Text != "Page 2, first" || it.Author != "@ann@"+host || it.URL != o.URL+"/@ann/p2a" || it.Media[0].Name != "p2.jpg" {
					t.Errorf("item %#v", it)
				}
				b := s.find(t, SourceFeed, o.URL+"/users/ann/statuses/p3b/activity")
				if !b.Boost || b.Text != "https://other.example/notes/3" {
					t.Errorf("boost %#v", b)
				}
				if !bytes.Equal(media, jpeg) {
					t.Errorf("media of the outbox not fetched")
				}
			}
		})
	}
	for uri, accept := range o.accepts {
		if (strings.HasSuffix(uri, "page=1") || strings.HasSuffix(uri, "page=3")) && accept != "application/activity+json" {
			t.Errorf("%s fetched with Accept %q", uri, accept)
		}
		if !strings.Contains(uri, "/media/") && !strings.HasPrefix(accept, "application/activity+json") {
			t.Errorf("%s fetched with Accept %q", uri, accept)
		}
	}
}

func TestImportFeedOutboxFile(t *testing.T) {
	path := filepath.Join(mastodonFixture(t), "outbox.json")
	rep, err := ImportFeed(t.Context(), path, newMemSink().sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkAccounted(t, rep)
	if want := countOrderedItems(t, path); rep.Seen != want || rep.SkipReasons[reasonDirect] != 35 {
		t.Fatalf("report %+v, want %d seen", rep, want)
	}
}

func TestImportFeedRefused(t *testing.T) {
	huge := bytes.Repeat([]byte("<!-- padding -->"), 30<<20/16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/announced":
			w.Header().Set("Content-Length", fmt.Sprint(len(huge)))
			w.Write(huge)
		case "/chunked":
			w.Write(huge[:1000])
			w.(http.Flusher).Flush()
			w.Write(huge[1000:])
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		case "/gone":
			http.Error(w, "gone", http.StatusGone)
		case "/text":
			w.Write([]byte("just some text"))
		}
	}))
	defer srv.Close()

	for _, tc := range []struct {
		name, src string
		opt       Options
		check     func(error) bool
	}{
		{"30 MiB announced", srv.URL + "/announced", Options{}, func(err error) bool { return errors.Is(err, ErrTooLarge) }},
		{"30 MiB chunked", srv.URL + "/chunked", Options{}, func(err error) bool { return errors.Is(err, ErrTooLarge) }},
		{"slow server", srv.URL + "/slow", Options{HTTPClient: &http.Client{Timeout: 200 * time.Millisecond}}, func(err error) bool {
			var ne net.Error
			return errors.As(err, &ne) && ne.Timeout()
		}},
		{"status", srv.URL + "/gone", Options{}, func(err error) bool { return strings.Contains(err.Error(), "410") }},
		{"not a feed", srv.URL + "/text", Options{}, func(err error) bool { return errors.Is(err, ErrNotExport) }},
		{"file scheme", "file:///etc/passwd", Options{}, func(err error) bool { return strings.Contains(err.Error(), "only http and https") }},
		{"ftp scheme", "ftp://example.org/feed", Options{}, func(err error) bool { return strings.Contains(err.Error(), "only http and https") }},
		{"missing file", filepath.Join(t.TempDir(), "nope.xml"), Options{}, func(err error) bool { return errors.Is(err, os.ErrNotExist) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			rep, err := ImportFeed(t.Context(), tc.src, newMemSink().sink, tc.opt)
			if err == nil || !tc.check(err) {
				t.Fatalf("err = %v", err)
			}
			if rep.Seen != 0 {
				t.Fatalf("report %+v", rep)
			}
			t.Logf("%v (after %v)", err, time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestImportFeedNestingBounded: a feed of millions of nested elements (under
// the size cap) is refused early, saying why, instead of being parsed.
func TestImportFeedNestingBounded(t *testing.T) {
	const n = 2_700_000
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><title>`)
	b.Write(bytes.Repeat([]byte("<a>"), n))
	b.Write(bytes.Repeat([]byte("</a>"), n))
	b.WriteString(`</title></item></channel></rss>`)
	if b.Len() > MaxDocumentSize {
		t.Fatalf("the document is %d bytes, over the cap: the test would not reach the parser", b.Len())
	}
	path := filepath.Join(t.TempDir(), "deep.xml")
	mustWrite(t, path, b.Bytes())
	rep, err := ImportFeed(t.Context(), path, newMemSink().sink, Options{})
	if !errors.Is(err, ErrNotExport) || !strings.Contains(err.Error(), "nest more than") || rep.Imported != 0 {
		t.Fatalf("deep feed: %+v, %v; want refused for its nesting", rep, err)
	}
	// A feed with no items says so.
	empty := filepath.Join(t.TempDir(), "empty.xml")
	mustWrite(t, empty, []byte(`<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>`))
	rep, err = ImportFeed(t.Context(), empty, newMemSink().sink, Options{})
	if err != nil || len(rep.Errors) == 0 || !strings.Contains(rep.Errors[0], "no items") {
		t.Fatalf("empty feed: %+v, %v; want a report that says it has no items", rep, err)
	}
}

func mustWrite(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
