package httpui

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// browser is one browser against the server's handler: it keeps its
// cookies and comes from one address.
type browser struct {
	t       *testing.T
	h       http.Handler
	remote  string
	cookies map[string]*http.Cookie
}

func newBrowserAt(t *testing.T, h http.Handler, remote string) *browser {
	return &browser{t: t, h: h, remote: remote, cookies: map[string]*http.Cookie{}}
}

func (b *browser) do(method, path string, form url.Values) *httptest.ResponseRecorder {
	b.t.Helper()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, "https://kitchen.local:7443"+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://kitchen.local:7443")
	} else {
		req = httptest.NewRequest(method, "https://kitchen.local:7443"+path, nil)
	}
	req.RemoteAddr = b.remote
	for _, c := range b.cookies {
		req.AddCookie(c)
	}
	w := httptest.NewRecorder()
	b.h.ServeHTTP(w, req)
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return w
}

// step reads the step a setup page shows.
func step(w *httptest.ResponseRecorder) string {
	m := regexp.MustCompile(`data-step="([a-z]+)"`).FindStringSubmatch(w.Body.String())
	if m == nil {
		return ""
	}
	return m[1]
}

func newSetupServer(t *testing.T, f *fakeBackend) (*Server, Config) {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{
		Token: testToken, PasswordFile: filepath.Join(dir, "ui.password"), PasswordCost: bcrypt.MinCost,
		UploadDir: t.TempDir(), TokenFile: "/var/lib/plug/api.token",
		SetupCodeFile: filepath.Join(dir, "setup-code"), WordsFile: filepath.Join(dir, "recovery-words"),
		AllowedHosts: []string{"kitchen.local"},
	}
	s, err := New(cfg, backends(t, f))
	if err != nil {
		t.Fatal(err)
	}
	return s, cfg
}

var testWords = strings.Fields("abandon ability able about above absent absorb abstract absurd abuse access accident " +
	"account accuse achieve acid acoustic acquire across act action actor actress actual")

// TestFirstBootFromAnotherMachine walks the setup as the owner does from a
// laptop: the setup code (a wrong one and a used one refused), the name,
// the words shown and three typed back (a wrong one refused; right, the
// plug forgets them), the password, a folder, the invite.
func TestFirstBootFromAnotherMachine(t *testing.T) {
	f := newFake()
	s, cfg := newSetupServer(t, f)
	words := "The 24 recovery words of plug X. Write them down...\nThen delete this file.\n\n" + strings.Join(testWords, " ") + "\n"
	if err := os.WriteFile(cfg.WordsFile, []byte(words), 0o600); err != nil {
		t.Fatal(err)
	}
	code, err := s.SetupCode()
	if err != nil || !regexp.MustCompile(`^[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}$`).MatchString(code) {
		t.Fatalf("SetupCode() = %q, %v", code, err)
	}
	if again, _ := s.SetupCode(); again != code {
		t.Fatalf("a second SetupCode() = %q, want the same %q until it is used", again, code)
	}
	const laptopAddr = "198.18.1.12:50000"
	laptop := newBrowserAt(t, s.Handler(), laptopAddr)

	if w := laptop.do("GET", "/login", nil); w.Header().Get("Location") != "/setup" {
		t.Fatalf("first visit: %d to %q, want the setup", w.Code, w.Header().Get("Location"))
	}
	if w := laptop.do("GET", "/setup", nil); step(w) != "code" || laptop.cookies[setupCookie] != nil {
		t.Fatalf("from another machine the setup begins with the code: step %q, cookies %v", step(w), laptop.cookies)
	}
	// Nothing moves without the code.
	laptop.do("POST", "/setup/name", url.Values{"name": {"evil"}})
	laptop.do("POST", "/login/setup", url.Values{"password": {"evil password"}, "confirm": {"evil password"}})
	if st, _ := f.Status(t.Context()); st.Name != "ann" {
		t.Fatalf("renamed without the code: %q", st.Name)
	}
	if _, err := os.Stat(cfg.PasswordFile); err == nil {
		t.Fatal("a password was set without the code")
	}
	if w := laptop.do("POST", "/setup/code", url.Values{"code": {"ABCD-EFGH-JKMN"}}); w.Code != http.StatusForbidden || step(w) != "code" || laptop.cookies[setupCookie] != nil {
		t.Fatalf("a wrong code: %d step %q", w.Code, step(w))
	}
	// Typed in lower case, without dashes, with spaces around: it still works.
	typed := " " + strings.ToLower(strings.ReplaceAll(code, "-", "")) + " "
	if w := laptop.do("POST", "/setup/code", url.Values{"code": {typed}}); w.Code != http.StatusSeeOther || laptop.cookies[setupCookie] == nil {
		t.Fatalf("the right code: %d, cookies %v\n%s", w.Code, laptop.cookies, w.Body)
	}
	if _, err := os.Stat(cfg.SetupCodeFile); !os.IsNotExist(err) {
		t.Fatalf("the used code is still kept: %v", err)
	}
	other := newBrowserAt(t, s.Handler(), "198.18.1.13:40000")
	if w := other.do("POST", "/setup/code", url.Values{"code": {code}}); w.Code != http.StatusForbidden || other.cookies[setupCookie] != nil || !strings.Contains(w.Body.String(), "used already") {
		t.Fatalf("the code used a second time: %d\n%s", w.Code, w.Body)
	}

	if w := laptop.do("GET", "/setup", nil); step(w) != "name" || !strings.Contains(w.Body.String(), `value="ann"`) {
		t.Fatalf("after the code: step %q\n%s", step(w), w.Body)
	}
	if w := laptop.do("POST", "/setup/name", url.Values{"name": {"  "}}); w.Code != http.StatusBadRequest || step(w) != "name" {
		t.Fatalf("an empty name: %d step %q", w.Code, step(w))
	}
	if w := laptop.do("POST", "/setup/name", url.Values{"name": {"Kitchen"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("name: %d\n%s", w.Code, w.Body)
	}
	if st, _ := f.Status(t.Context()); st.Name != "Kitchen" {
		t.Fatalf("the plug is named %q, want Kitchen", st.Name)
	}

	w := laptop.do("GET", "/setup", nil)
	if step(w) != "words" {
		t.Fatalf("after the name: step %q", step(w))
	}
	for _, word := range testWords {
		if !strings.Contains(w.Body.String(), "<li>"+word+"</li>") {
			t.Fatalf("the words page lacks %q", word)
		}
	}
	if w := laptop.do("POST", "/login/setup", url.Values{"password": {"correct horse"}, "confirm": {"correct horse"}}); w.Code != http.StatusConflict {
		t.Fatalf("a password before the words are checked: %d, want 409", w.Code)
	}
	laptop.do("POST", "/setup/words", url.Values{"do": {"written"}})
	w = laptop.do("GET", "/setup", nil)
	places := regexp.MustCompile(`data-place="(\d+)"`).FindAllStringSubmatch(w.Body.String(), -1)
	if step(w) != "check" || len(places) != 3 || strings.Contains(w.Body.String(), testWords[0]+"</li>") {
		t.Fatalf("the check: step %q, places %v\n%s", step(w), places, w.Body)
	}
	answer, wrong := url.Values{}, url.Values{}
	for i, p := range places {
		n, _ := strconv.Atoi(p[1])
		if n < 1 || n > 24 || (i > 0 && p[1] == places[i-1][1]) {
			t.Fatalf("places %v", places)
		}
		answer.Set("w"+strconv.Itoa(i+1), strings.ToUpper(testWords[n-1])+" ")
		wrong.Set("w"+strconv.Itoa(i+1), testWords[n-1])
	}
	wrong.Set("w2", "zoo")
	if w := laptop.do("POST", "/setup/check", wrong); w.Code != http.StatusBadRequest || step(w) != "check" || !strings.Contains(w.Body.String(), "#"+places[1][1]+" is not right") {
		t.Fatalf("a wrong word: %d step %q\n%s", w.Code, step(w), w.Body)
	}
	if _, err := os.Stat(cfg.WordsFile); err != nil {
		t.Fatal("a wrong check deleted the words")
	}
	if w := laptop.do("POST", "/setup/check", answer); w.Code != http.StatusSeeOther {
		t.Fatalf("the right words: %d\n%s", w.Code, w.Body)
	}
	if _, err := os.Stat(cfg.WordsFile); !os.IsNotExist(err) {
		t.Fatalf("the words are still kept after the check: %v", err)
	}
	w = laptop.do("GET", "/setup", nil)
	if step(w) != "password" || strings.Contains(w.Body.String(), testWords[5]) {
		t.Fatalf("after the check: step %q", step(w))
	}
	if !strings.Contains(w.Body.String(), "/var/lib/plug/api.token") {
		t.Fatal("the password page does not name the token's real path")
	}
	if w := laptop.do("POST", "/login/setup", url.Values{"password": {"correct horse"}, "confirm": {"correct horse"}}); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/setup/folders" || laptop.cookies[sessionCookie] == nil || laptop.cookies[setupCookie] != nil {
		t.Fatalf("password: %d to %q, cookies %v\n%s", w.Code, w.Header().Get("Location"), laptop.cookies, w.Body)
	}
	if w := laptop.do("GET", "/setup/folders", nil); w.Code != http.StatusOK || step(w) != "folders" {
		t.Fatalf("folders: %d step %q", w.Code, step(w))
	}
	f.sources = []string{"/home/ann/Documents"}
	if w := laptop.do("POST", "/setup/folders", url.Values{"path": {"/home/ann/Documents"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("add a folder: %d\n%s", w.Code, w.Body)
	}
	if w := laptop.do("GET", "/setup/folders", nil); !strings.Contains(w.Body.String(), "<code>/home/ann/Documents</code>") {
		t.Fatalf("the folder is not listed:\n%s", w.Body)
	}
	if w := laptop.do("GET", "/setup/invite", nil); step(w) != "invite" || !strings.Contains(w.Body.String(), `src="/api/v1/qr.png?text=plug1-fake"`) {
		t.Fatalf("invite: step %q\n%s", step(w), w.Body)
	}
	// Set up: no way back into the setup, and no more codes.
	if w := laptop.do("GET", "/setup", nil); w.Header().Get("Location") != "/login" {
		t.Fatalf("the setup after it ended: %d to %q", w.Code, w.Header().Get("Location"))
	}
	if code, err := s.SetupCode(); err != ErrSetUp {
		t.Fatalf("SetupCode after the setup: %q, %v", code, err)
	}
	req := httptest.NewRequest("POST", "http://127.0.0.1:7777/api/v1/setup/code", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	rw := httptest.NewRecorder()
	s.Handler().ServeHTTP(rw, req)
	if rw.Code != http.StatusConflict {
		t.Fatalf("POST /api/v1/setup/code after the setup: %d", rw.Code)
	}
}

// TestFirstBootOnThisMachine: from the plug's own machine no code is
// asked, and a plug that kept no words (started in a terminal) says where
// they were shown instead.
func TestFirstBootOnThisMachine(t *testing.T) {
	f := newFake()
	s, cfg := newSetupServer(t, f)
	local := newBrowserAt(t, s.Handler(), "127.0.0.1:50000")
	if w := local.do("GET", "/setup", nil); step(w) != "name" || local.cookies[setupCookie] == nil {
		t.Fatalf("on loopback: step %q", step(w))
	}
	if _, err := os.Stat(cfg.SetupCodeFile); !os.IsNotExist(err) {
		t.Fatal("a setup on loopback made a setup code")
	}
	local.do("POST", "/setup/name", url.Values{"name": {"ann"}})
	if w := local.do("GET", "/setup", nil); step(w) != "nowords" || !strings.Contains(w.Body.String(), "in a terminal") {
		t.Fatalf("no words kept: step %q", step(w))
	}
	local.do("POST", "/setup/words", url.Values{"do": {"next"}})
	if w := local.do("GET", "/setup", nil); step(w) != "password" || strings.Contains(w.Body.String(), `name="token"`) {
		t.Fatalf("then: step %q", step(w))
	}
	if w := local.do("POST", "/login/setup", url.Values{"password": {"correct horse"}, "confirm": {"correct horse"}}); w.Header().Get("Location") != "/setup/folders" {
		t.Fatalf("password: %d to %q", w.Code, w.Header().Get("Location"))
	}
}

// TestSetupCodeAPI: "plug setup-code" asks the daemon; the code stays the
// same until it is used, then a new one is made; a maker's code in the
// file is the one.
func TestSetupCodeAPI(t *testing.T) {
	s, cfg := newSetupServer(t, newFake())
	if err := os.WriteFile(cfg.SetupCodeFile, []byte("wxyz-2345-abcd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ask := func() string {
		t.Helper()
		req := httptest.NewRequest("POST", "http://127.0.0.1:7777/api/v1/setup/code", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		var out struct{ Code string }
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &out) != nil {
			t.Fatalf("POST /api/v1/setup/code: %d %s", w.Code, w.Body)
		}
		return out.Code
	}
	if c := ask(); c != "WXYZ-2345-ABCD" {
		t.Fatalf("the maker's code: %q", c)
	}
	b := newBrowserAt(t, s.Handler(), "198.18.1.12:50000")
	if w := b.do("POST", "/setup/code", url.Values{"code": {"WXYZ-2345-ABCD"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("the maker's code refused: %d", w.Code)
	}
	if c := ask(); c == "WXYZ-2345-ABCD" || len(c) != 14 {
		t.Fatalf("after its use: %q, want a new code", c)
	}
	req := httptest.NewRequest("POST", "http://127.0.0.1:7777/api/v1/setup/code", nil)
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("the code without the token: %d", w.Code)
	}
}
