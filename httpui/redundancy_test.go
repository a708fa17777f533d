package httpui

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/plug-net/plug/store"
)

func TestRedundancyAPI(t *testing.T) {
	f := newFake()
	s, _ := newTestServer(t, f)
	do := func(method, body string) (*httptest.ResponseRecorder, store.Redundancy) {
		t.Helper()
		req := httptest.NewRequest(method, "http://127.0.0.1:7777/api/v1/redundancy", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		var red store.Redundancy
		if w.Code == http.StatusOK {
			if err := json.Unmarshal(w.Body.Bytes(), &red); err != nil {
				t.Fatalf("%s: %v %s", method, err, w.Body)
			}
			for _, key := range []string{`"target"`, `"k"`, `"m"`, `"friends"`, `"overhead"`} {
				if !strings.Contains(w.Body.String(), key) {
					t.Fatalf("%s: no %s key in %s", method, key, w.Body)
				}
			}
		}
		return w, red
	}
	if w, red := do("GET", ""); w.Code != http.StatusOK || red.Target != 1 || !red.Auto {
		t.Fatalf("GET: %d %s", w.Code, w.Body)
	}
	if w, red := do("PUT", `{"target": 2}`); w.Code != http.StatusOK || red.Target != 2 || red.K != 1 || red.Auto {
		t.Fatalf("PUT 2: %d %s", w.Code, w.Body)
	}
	if w, _ := do("PUT", `{"target": 3}`); w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "pair with 1 more") {
		t.Fatalf("PUT 3 with three friends: %d %s, want 409 saying to pair with 1 more", w.Code, w.Body)
	}
	if w, red := do("PUT", `{"target": "auto"}`); w.Code != http.StatusOK || !red.Auto {
		t.Fatalf("PUT auto: %d %s", w.Code, w.Body)
	}
	for _, bad := range []string{`{"target": -1}`, `{"target": "two"}`, `{}`} {
		if w, _ := do("PUT", bad); w.Code != http.StatusBadRequest {
			t.Errorf("PUT %s: %d %s, want 400", bad, w.Code, w.Body)
		}
	}
	page := get(t, s.Handler(), "/backups")
	if page.Code != http.StatusOK || !strings.Contains(page.Body.String(), `id="redundancy-target"`) {
		t.Fatalf("the Backups page has no redundancy control: %d", page.Code)
	}
}

func TestHealthNamesSharedHouses(t *testing.T) {
	h := Health{CanLose: 1, Target: 1, Packs: 3, SharedHouses: []string{"Bob and Cat"}}
	if w := h.Words(); !strings.Contains(w, "You can lose 1 friend") || !strings.Contains(w, "Bob and Cat are in the same house: losing it loses all of them") {
		t.Fatalf("words: %q", w)
	}
}
