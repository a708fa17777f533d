package httpui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestProfilesForTheOwnerOnly: the runtime's profiles answer the owner and
// no one else.
func TestProfilesForTheOwnerOnly(t *testing.T) {
	s, _ := newTestServer(t, newFake())
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1", "/debug/pprof/trace?seconds=1", "/debug/pprof/symbol"} {
		req := httptest.NewRequest("GET", "http://127.0.0.1:7777"+p, nil)
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("GET %s without login: %d, want 401", p, w.Code)
		}
	}
	w := get(t, s.Handler(), "/debug/pprof/goroutine?debug=1")
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Body.String(), "goroutine profile: total ") {
		t.Fatalf("goroutine profile: %d %.80q", w.Code, w.Body.String())
	}
	w = get(t, s.Handler(), "/debug/pprof/heap")
	if w.Code != http.StatusOK || w.Body.Len() == 0 {
		t.Fatalf("heap profile: %d, %d bytes", w.Code, w.Body.Len())
	}
}
