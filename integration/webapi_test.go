package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// apiOf returns the base URL and token of a running plug.
func apiOf(t *testing.T, dir string) (base, token string) {
	t.Helper()
	addr, err := os.ReadFile(filepath.Join(dir, "api.addr"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(filepath.Join(dir, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + strings.TrimSpace(string(addr)), strings.TrimSpace(string(tok))
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// TestAPISecurity: the API answers 401 without the token, refuses a
// foreign Host header (DNS rebinding) and a cross-origin POST, and a login
// gives a secure, HttpOnly, SameSite session cookie.
func TestAPISecurity(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plug")
	startPlug(t, dir, "--bootstrap", "none")
	base, token := apiOf(t, dir)
	do := func(method, path string, hdr map[string]string, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		for k, v := range hdr {
			if k == "Host" {
				req.Host = v
				continue
			}
			req.Header.Set(k, v)
		}
		resp, err := (&http.Client{CheckRedirect: noRedirect}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		closeBody(resp)
		mustOK(t, err)
		return resp
	}
	bearer := map[string]string{"Authorization": "Bearer " + token}
	tests := []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		body   string
		want   int
	}{
		{"status without token", "GET", "/api/v1/status", nil, "", http.StatusUnauthorized},
		{"status with a wrong token", "GET", "/api/v1/status", map[string]string{"Authorization": "Bearer " + strings.Repeat("0", 64)}, "", http.StatusUnauthorized},
		{"status with the token", "GET", "/api/v1/status", bearer, "", http.StatusOK},
		{"page without login goes to /login", "GET", "/", nil, "", http.StatusSeeOther},
		{"foreign Host header", "GET", "/api/v1/status", map[string]string{"Authorization": "Bearer " + token, "Host": "evil.example"}, "", http.StatusMisdirectedRequest},
		{"foreign Host on the login page", "GET", "/login", map[string]string{"Host": "evil.example:7777"}, "", http.StatusMisdirectedRequest},
		{"cross-origin POST", "POST", "/login", map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "application/x-www-form-urlencoded"}, "token=" + token, http.StatusForbidden},
		{"unknown API path", "GET", "/api/v1/nope", bearer, "", http.StatusNotFound},
		{"cross-origin password setup", "POST", "/login/setup", map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "application/x-www-form-urlencoded"}, "password=correct+horse&confirm=correct+horse", http.StatusForbidden},
		{"cross-origin backup from the page", "POST", "/api/v1/backups/jobs", map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}, "{}", http.StatusForbidden},
		{"foreign Host on a page", "GET", "/timeline", map[string]string{"Host": "evil.example"}, "", http.StatusMisdirectedRequest},
		{"pages need a login", "GET", "/backups", nil, "", http.StatusSeeOther},
		{"live log needs a login", "GET", "/api/v1/events/stream", nil, "", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := do(tt.method, tt.path, tt.hdr, tt.body).StatusCode; got != tt.want {
				t.Fatalf("%s %s: %d, want %d", tt.method, tt.path, got, tt.want)
			}
		})
	}

	if _, err := os.Stat(filepath.Join(dir, "ui.password")); err == nil {
		t.Fatal("a cross-origin request chose the password")
	}

	t.Run("login session", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, CheckRedirect: noRedirect}
		resp, err := c.PostForm(base+"/login", url.Values{"token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		closeBody(resp)
		var sess *http.Cookie
		for _, ck := range resp.Cookies() {
			if ck.Name == "plug_session" {
				sess = ck
			}
		}
		if sess == nil || !sess.HttpOnly || !sess.Secure || sess.SameSite != http.SameSiteStrictMode {
			t.Fatalf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict", sess)
		}
		req, _ := http.NewRequest("GET", base+"/api/v1/status", nil)
		req.AddCookie(sess)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var st map[string]any
		err = json.NewDecoder(resp.Body).Decode(&st)
		closeBody(resp)
		if err != nil || resp.StatusCode != http.StatusOK || st["peer_id"] == nil {
			t.Fatalf("status with a session: %d %v", resp.StatusCode, st)
		}
		// Logout ends the session.
		req, _ = http.NewRequest("POST", base+"/logout", nil)
		req.AddCookie(sess)
		resp, err = c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		closeBody(resp)
		req, _ = http.NewRequest("GET", base+"/api/v1/status", nil)
		req.AddCookie(sess)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		closeBody(resp)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status after logout: %d, want 401", resp.StatusCode)
		}
	})
}

// TestAPIRefusesRemoteWithoutFlag: a non-loopback --api needs
// --allow-remote-ui.
func TestAPIRefusesRemoteWithoutFlag(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plug")
	r := plug(t, "", "up", "--data", dir, "--api", "0.0.0.0:0", "--listen", "/ip4/127.0.0.1/tcp/0")
	if r.code != 2 || !strings.Contains(r.stderr, "--allow-remote-ui") {
		t.Fatalf("plug up --api 0.0.0.0:0: exit %d, %q", r.code, r.stderr)
	}
}

// closeBody closes the body of a response that is done with. Closing what
// was read, or is not wanted, loses nothing, so the error is not looked at.
func closeBody(resp *http.Response) { _ = resp.Body.Close() }
