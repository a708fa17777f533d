package httpui

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func form(s *Server, path string, v url.Values, host, remote string, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "http://"+host+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, x := range hdr {
		req.Header.Set(k, x)
	}
	req.RemoteAddr = remote
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	return w
}

func sessionOf(w *httptest.ResponseRecorder) *http.Cookie {
	for _, c := range w.Result().Cookies() {
		if c.Name == sessionCookie && c.Value != "" {
			return c
		}
	}
	return nil
}

// TestPasswordIsKeptExactly: a password with spaces around it logs in as
// typed (only the token is trimmed, as a pasted token carries a newline).
func TestPasswordIsKeptExactly(t *testing.T) {
	s, _ := newTestServer(t, newFake())
	const pw = "  correct horse  "
	if w := form(s, "/login/setup", url.Values{"password": {pw}, "confirm": {pw}}, "127.0.0.1:7777", "127.0.0.1:5000", nil); w.Code != http.StatusSeeOther {
		t.Fatalf("setup: %d", w.Code)
	}
	for secret, ok := range map[string]bool{pw: true, "correct horse": false, testToken + "\n": true} {
		w := form(s, "/login", url.Values{"password": {secret}}, "127.0.0.1:7777", "127.0.0.1:5000", nil)
		if got := sessionOf(w) != nil; got != ok {
			t.Errorf("login with %q: session %v, want %v", secret, got, ok)
		}
	}
}

// TestSetupThroughAProxyTakesTheToken: a request that a proxy on the same
// machine forwards, or any on a UI opened with --allow-remote-ui, cannot
// choose the first password without the token.
func TestSetupThroughAProxyTakesTheToken(t *testing.T) {
	v := url.Values{"password": {"correct horse"}, "confirm": {"correct horse"}}
	s, pwFile := newTestServer(t, newFake())
	if w := form(s, "/login/setup", v, "127.0.0.1:7777", "127.0.0.1:5000", map[string]string{"X-Forwarded-For": "203.0.113.9"}); w.Code != http.StatusForbidden {
		t.Fatalf("setup through a proxy without the token: %d, want 403", w.Code)
	}
	remote, err := New(Config{Token: testToken, PasswordFile: filepath.Join(t.TempDir(), "pw"), PasswordCost: bcrypt.MinCost, RemoteUI: true, UploadDir: t.TempDir()}, backends(t, newFake()))
	if err != nil {
		t.Fatal(err)
	}
	if w := form(remote, "/login/setup", v, "127.0.0.1:7777", "127.0.0.1:5000", nil); w.Code != http.StatusForbidden {
		t.Fatalf("setup on a remote UI without the token: %d, want 403", w.Code)
	}
	if _, err := os.Stat(pwFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused setup wrote the password file")
	}
	// On plain HTTP reached by a LAN address the cookie cannot be Secure
	// (browsers would drop it); on loopback it is.
	w := form(remote, "/login", url.Values{"password": {testToken}}, "192.168.1.20:7777", "192.168.1.30:5000", nil)
	if c := sessionOf(w); c == nil || c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie on a LAN address: %+v", c)
	}
	w = form(remote, "/login", url.Values{"password": {testToken}}, "127.0.0.1:7777", "127.0.0.1:5000", nil)
	if c := sessionOf(w); c == nil || !c.Secure {
		t.Fatalf("session cookie on loopback: %+v", c)
	}
}

// TestStreamSendsWholeLines: warnings sent from many goroutines at once
// (as a backup's workers do) arrive as whole JSON lines.
func TestStreamSendsWholeLines(t *testing.T) {
	w := httptest.NewRecorder()
	st := newStream(w)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				st.send("warning", map[string]any{"path": strings.Repeat("x", 100+g), "n": i})
			}
		})
	}
	wg.Wait()
	n := 0
	sc := bufio.NewScanner(w.Body)
	for sc.Scan() {
		var v map[string]any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line %d is not JSON: %v", n+1, err)
		}
		n++
	}
	if n != 8*200 {
		t.Fatalf("%d lines, want %d", n, 8*200)
	}
}
