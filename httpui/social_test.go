package httpui

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/plug-net/plug/social"
	"github.com/plug-net/plug/social/harvest"
)

// options returns the values of the options of the select with id in page.
func options(t *testing.T, page, id string) []string {
	t.Helper()
	m := regexp.MustCompile(`<select [^>]*id="` + id + `"[^>]*>(.*?)</select>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no select #%s in the page:\n%s", id, page)
	}
	var out []string
	for _, o := range regexp.MustCompile(`<option value="([^"]*)"`).FindAllStringSubmatch(m[1], -1) {
		out = append(out, o[1])
	}
	return out
}

// TestImportPageListsImporters: the import page offers every registered
// importer, and nothing else: the upload form those that take an archive,
// the other form all of them, those that read a URL first.
func TestImportPageListsImporters(t *testing.T) {
	s, _ := newTestServer(t, newFake())
	w := get(t, s.Handler(), "/import")
	if w.Code != http.StatusOK {
		t.Fatalf("GET /import: %d %s", w.Code, w.Body)
	}
	var upload, byURL, onPlug []string
	for _, im := range harvest.Importers() {
		if im.Files != "" {
			upload = append(upload, string(im.Source))
			if !strings.Contains(w.Body.String(), im.Label+" ("+im.Files+")") {
				t.Errorf("the upload form does not say what %s reads (%s (%s))", im.Source, im.Label, im.Files)
			}
		}
		if im.URL {
			byURL = append(byURL, string(im.Source))
		} else {
			onPlug = append(onPlug, string(im.Source))
		}
	}
	if got := options(t, w.Body.String(), "upload-kind"); !slices.Equal(got, upload) {
		t.Errorf("the upload form offers %q, want %q", got, upload)
	}
	if got, want := options(t, w.Body.String(), "source-kind"), append(byURL, onPlug...); !slices.Equal(got, want) {
		t.Errorf("the URL or path form offers %q, want %q", got, want)
	}
}

// TestSocialAPIChecksSources: the import API takes every registered
// importer as its kind, the timeline and search APIs every source of
// entries as a filter; anything else is refused with the list.
func TestSocialAPIChecksSources(t *testing.T) {
	s, _ := newTestServer(t, newFake())
	do := func(method, path, body string) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest(method, "http://127.0.0.1:7777"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		return w
	}
	importOf := func(kind string) *httptest.ResponseRecorder {
		return do("POST", "/api/v1/import", `{"kind": "`+kind+`", "source": "https://example.org/feed.xml"}`)
	}
	for _, im := range harvest.Importers() {
		if w := importOf(string(im.Source)); w.Code != http.StatusOK {
			t.Errorf("import of kind %s: %d %s", im.Source, w.Code, w.Body)
		}
	}
	for _, src := range social.Sources() {
		if w := get(t, s.Handler(), "/api/v1/timeline?source="+src); w.Code != http.StatusOK {
			t.Errorf("timeline of source %s: %d %s", src, w.Code, w.Body)
		}
		if w := get(t, s.Handler(), "/api/v1/search?q=x&source="+src); w.Code != http.StatusOK {
			t.Errorf("search of source %s: %d %s", src, w.Code, w.Body)
		}
	}
	if w := get(t, s.Handler(), "/api/v1/search?q=x&source=Mastodon"); w.Code != http.StatusOK {
		t.Errorf("search of source Mastodon (search ignores case): %d %s", w.Code, w.Body)
	}
	for _, bad := range []string{"rss", "plug2"} {
		if w := importOf(bad); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "mastodon, twitter or feed") {
			t.Errorf("import of kind %s: %d %s, want 400 listing the importers", bad, w.Code, w.Body)
		}
		for _, path := range []string{"/api/v1/timeline?source=", "/api/v1/search?q=x&source="} {
			w := get(t, s.Handler(), path+url.QueryEscape(bad))
			if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "plug, mastodon, twitter or feed") {
				t.Errorf("GET %s%s: %d %s, want 400 listing the sources", path, bad, w.Code, w.Body)
			}
		}
	}
	if w := importOf("plug"); w.Code != http.StatusBadRequest {
		t.Errorf("import of kind plug: %d, want 400 (posts are not imported)", w.Code)
	}
}
