package httpui

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/plug-net/plug/social"
	"github.com/plug-net/plug/store"
	"github.com/plug-net/plug/store/archiver"
	"github.com/plug-net/plug/store/check"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/kv"
	"github.com/plug-net/plug/store/repair"
	"github.com/plug-net/plug/store/restorer"
)

// fakeBackend is a plug in memory; social may be a real social.Service.
type fakeBackend struct {
	social  socialService // nil: entries below
	entries []social.Entry

	mu      sync.Mutex
	red     store.Redundancy
	status  Status
	friends []Friend
	snaps   []SnapshotInfo
	sources []string
	events  []kv.Event
	changed chan struct{}
	dir     SnapshotDir
	health  Health
	files   map[string]string // path -> content of OpenSnapshotFile
	// backup, if set, runs a backup (the default succeeds at once).
	backup func(ctx context.Context, paths []string, progress func(archiver.Progress), warn func(string, error)) (BackupResult, error)
}

// socialService is what the fake needs of social.Service.
type socialService interface {
	Timeline(ctx context.Context, q social.TimelineQuery) ([]social.Entry, error)
	Search(ctx context.Context, query, source string, limit, offset int) ([]social.Entry, uint64, error)
}

var (
	_ StatusBackend  = (*fakeBackend)(nil)
	_ FriendsBackend = (*fakeBackend)(nil)
	_ BackupsBackend = (*fakeBackend)(nil)
	_ SocialBackend  = (*fakeBackend)(nil)
	_ BrowseBackend  = (*fakeBackend)(nil)
	_ SetupBackend   = (*fakeBackend)(nil)
)

func newFake() *fakeBackend {
	return &fakeBackend{
		status:  Status{PeerID: "12D3KooWFakePeer", Name: "ann", Reachability: "private", Version: "test", LastBackupAgeS: -1, Sources: []string{}},
		changed: make(chan struct{}),
		health:  Health{Target: 1},
	}
}

func (f *fakeBackend) Status(context.Context) (Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status, nil
}
func (f *fakeBackend) Rename(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status.Name = name
	return nil
}
func (f *fakeBackend) Events(_ context.Context, after uint64, limit int) ([]kv.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []kv.Event
	for _, e := range f.events {
		if e.Seq > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}
func (f *fakeBackend) LastEvents(_ context.Context, n int) ([]kv.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]kv.Event(nil), f.events[max(0, len(f.events)-n):]...), nil
}
func (f *fakeBackend) EventsChanged() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// appendEvent logs an event and wakes the waiters.
func (f *fakeBackend) appendEvent(e kv.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e.Seq = uint64(len(f.events) + 1)
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	f.events = append(f.events, e)
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeBackend) CreateInvite(context.Context, time.Duration) (Invite, error) {
	return Invite{Code: "plug1-fake", Expires: time.Now().Add(time.Hour)}, nil
}
func (f *fakeBackend) AcceptInvite(context.Context, string, func(string)) (Friend, error) {
	return Friend{}, nil
}
func (f *fakeBackend) Friends(context.Context) ([]Friend, error) {
	return append([]Friend(nil), f.friends...), nil
}
func (f *fakeBackend) SetQuota(context.Context, string, int64) (Friend, error) { return Friend{}, nil }
func (f *fakeBackend) RemoveFriend(context.Context, string) (int64, error)     { return 0, nil }
func (f *fakeBackend) Backup(ctx context.Context, paths []string, progress func(archiver.Progress), warn func(string, error)) (BackupResult, error) {
	if f.backup != nil {
		return f.backup(ctx, paths, progress, warn)
	}
	return BackupResult{SnapshotID: "0123456789abcdef"}, nil
}
func (f *fakeBackend) Snapshots(context.Context) ([]SnapshotInfo, error) {
	return append([]SnapshotInfo(nil), f.snaps...), nil
}
func (f *fakeBackend) Restore(context.Context, RestoreRequest, func(restorer.Progress)) (restorer.Stats, error) {
	return restorer.Stats{}, nil
}
func (f *fakeBackend) Verify(context.Context, bool, func(int, int)) (check.Report, error) {
	return check.Report{}, nil
}
func (f *fakeBackend) Repair(context.Context) (repair.Report, error) {
	return repair.Report{}, nil
}
func (f *fakeBackend) Forget(context.Context, int, bool) (store.ForgetReport, error) {
	return store.ForgetReport{}, nil
}
func (f *fakeBackend) Sources(context.Context) ([]string, error) { return f.sources, nil }
func (f *fakeBackend) AddSource(context.Context, string) ([]string, error) {
	return f.sources, nil
}
func (f *fakeBackend) RemoveSource(context.Context, string) ([]string, error) {
	return f.sources, nil
}
func (f *fakeBackend) Redundancy(context.Context) (store.Redundancy, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.red.Friends == 0 {
		f.red = store.Redundancy{Target: 1, Auto: true, K: 2, M: 1, Friends: 3, Overhead: 1.5}
	}
	return f.red, nil
}
func (f *fakeBackend) SetRedundancy(_ context.Context, n int) (store.Redundancy, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n >= 3 {
		return f.red, fmt.Errorf("%w: pair with %d more friends", store.ErrTargetTooHigh, n-2)
	}
	f.red = store.Redundancy{Target: max(n, 1), Auto: n == 0, K: 3 - max(n, 1), M: max(n, 1), Friends: 3}
	f.red.Overhead = 3 / float64(f.red.K)
	return f.red, nil
}
func (f *fakeBackend) Timeline(ctx context.Context, q social.TimelineQuery) ([]social.Entry, error) {
	if f.social != nil {
		return f.social.Timeline(ctx, q)
	}
	return f.entries, nil
}
func (f *fakeBackend) Post(context.Context, string, []social.NewImage) (social.Entry, error) {
	return social.Entry{}, nil
}
func (f *fakeBackend) Edit(context.Context, string, string, []social.NewImage) (social.Entry, error) {
	return social.Entry{}, nil
}
func (f *fakeBackend) Delete(context.Context, string) error { return nil }
func (f *fakeBackend) Import(context.Context, string, string, func(int, int)) (social.ImportReport, error) {
	return social.ImportReport{}, nil
}
func (f *fakeBackend) Search(ctx context.Context, query, source string, limit, offset int) ([]social.Entry, uint64, error) {
	if f.social != nil {
		return f.social.Search(ctx, query, source, limit, offset)
	}
	return f.entries, uint64(len(f.entries)), nil
}
func (f *fakeBackend) OpenMedia(string) (*os.File, error) { return nil, fs.ErrNotExist }
func (f *fakeBackend) Health(context.Context) (Health, error) {
	return f.health, nil
}
func (f *fakeBackend) SnapshotTree(_ context.Context, ref, p string) (SnapshotDir, error) {
	if ref != f.dir.Snapshot.ID {
		return SnapshotDir{}, fmt.Errorf("%w: %q", store.ErrNoSnapshot, ref)
	}
	d := f.dir
	d.Path = p
	return d, nil
}
func (f *fakeBackend) OpenSnapshotFile(_ context.Context, ref, p string) (*SnapshotFile, error) {
	c, ok := f.files[p]
	if !ok {
		return nil, fmt.Errorf("%s: %w %s", p, store.ErrNotInSnapshot, ref)
	}
	return &SnapshotFile{ReadCloser: io.NopCloser(strings.NewReader(c)), Name: filepath.Base(p), Size: int64(len(c))}, nil
}

const testToken = "0123456789abcdef0123456789abcdef0123456789abcdef"

// backends serves every area from the fake, and backups started from a
// page as real store.BackupJobs that run the fake's Backup.
func backends(t testing.TB, f *fakeBackend) Backends {
	jobs := store.NewBackupJobs(func(ctx context.Context, paths []string, opt store.BackupOptions) (data.Snapshot, error) {
		res, err := f.Backup(ctx, paths, opt.Progress, opt.Warn)
		if err != nil {
			return data.Snapshot{}, err
		}
		id, err := data.ParseID(res.SnapshotID)
		return data.Snapshot{ID: id, Files: res.Files, Bytes: res.Bytes}, err
	})
	t.Cleanup(jobs.Close)
	return Backends{Status: f, Friends: f, Backups: f, Jobs: jobs, Social: f, Browse: f, Setup: f}
}

// newTestServer serves f with a password file in a temporary folder.
func newTestServer(t testing.TB, f *fakeBackend) (*Server, string) {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "ui.password")
	s, err := New(Config{Token: testToken, PasswordFile: pw, PasswordCost: bcrypt.MinCost, UploadDir: t.TempDir()}, backends(t, f))
	if err != nil {
		t.Fatal(err)
	}
	return s, pw
}

// get does a logged-in (token) request through every protection.
func get(t testing.TB, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", "http://127.0.0.1:7777"+path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

var pagePaths = []string{"/", "/friends", "/backups", "/backups/0123456789abcdef", "/timeline", "/timeline?q=hello", "/import", "/log"}

func TestPagesNeedLogin(t *testing.T) {
	s, _ := newTestServer(t, newFake())
	for _, p := range pagePaths {
		t.Run(p, func(t *testing.T) {
			req := httptest.NewRequest("GET", "http://127.0.0.1:7777"+p, nil)
			w := httptest.NewRecorder()
			s.Handler().ServeHTTP(w, req)
			if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" {
				t.Fatalf("GET %s without login: %d %q, want 303 to /login", p, w.Code, w.Header().Get("Location"))
			}
		})
	}
	for _, p := range []string{"/api/v1/health", "/api/v1/snapshots/x/tree", "/api/v1/snapshots/x/file?path=/a", "/api/v1/events/stream", "/api/v1/backups/jobs/x/events"} {
		t.Run(p, func(t *testing.T) {
			req := httptest.NewRequest("GET", "http://127.0.0.1:7777"+p, nil)
			w := httptest.NewRecorder()
			s.Handler().ServeHTTP(w, req)
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("GET %s without login: %d, want 401", p, w.Code)
			}
		})
	}
}

func TestPagesRender(t *testing.T) {
	f := newFake()
	f.dir = SnapshotDir{Snapshot: SnapshotInfo{ID: "0123456789abcdef"}, Entries: []TreeEntry{{Name: "a.txt", Path: "/a.txt", Type: "file", Size: 3}}}
	s, _ := newTestServer(t, f)
	for _, p := range pagePaths {
		t.Run(p, func(t *testing.T) {
			w := get(t, s.Handler(), p)
			if w.Code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", p, w.Code, w.Body)
			}
			csp := w.Header().Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") {
				t.Fatalf("GET %s: CSP %q", p, csp)
			}
			if regexp.MustCompile(`<script>|<script [^>]*>[^<]`).MatchString(w.Body.String()) || strings.Contains(w.Body.String(), " on") && regexp.MustCompile(`\son[a-z]+=`).MatchString(w.Body.String()) {
				t.Fatalf("GET %s: inline script or handler in the page", p)
			}
		})
	}
	t.Run("unknown snapshot", func(t *testing.T) {
		if w := get(t, s.Handler(), "/backups/ffff"); w.Code != http.StatusNotFound {
			t.Fatalf("browse of an unknown snapshot: %d", w.Code)
		}
	})
}

// xssPayloads are strings a friend or an archive might send to run script
// in the owner's page.
var xssPayloads = []string{
	`<script>alert(1)</script>`,
	`<img src=x onerror=alert(1)>`,
	`"><svg onload=alert(1)>`,
	`'><iframe src=javascript:alert(1)>`,
	`</textarea><script>alert(1)</script>`,
	`javascript:alert(1)`,
	`<a href="javascript:alert(1)">x</a>`,
	`{{.Status}}`,
}

// TestPagesEscapeHostileStrings puts every payload into each string a
// friend or an archive controls and checks that the page carries it as
// text: no tag or attribute of it survives.
func TestPagesEscapeHostileStrings(t *testing.T) {
	f := newFake()
	for i, p := range xssPayloads {
		f.friends = append(f.friends, Friend{Name: p, PeerID: fmt.Sprintf("12D3KooW%d%s", i, p), Online: i%2 == 0})
		f.entries = append(f.entries,
			social.Entry{ID: fmt.Sprintf("post%d", i), Author: p, Source: social.SourcePlug, Text: p, Own: true, Time: time.Now(), Media: []social.MediaRef{{Hash: p, Name: p}}},
			social.Entry{ID: p, Author: p, Source: social.SourceMastodon, Text: p, Summary: p, URL: p, Time: time.Now()})
		f.events = append(f.events, kv.Event{Seq: uint64(i + 1), Level: "WARN", Component: p, Message: p, Attrs: map[string]string{p: p}})
		f.sources = append(f.sources, "/home/"+p)
		f.dir.Entries = append(f.dir.Entries, TreeEntry{Name: p, Path: "/" + p, Type: "file", Target: p})
		f.snaps = append(f.snaps, SnapshotInfo{ID: fmt.Sprintf("%016d", i), Paths: []string{p}, Host: p})
	}
	f.dir.Snapshot = SnapshotInfo{ID: "0123456789abcdef", Host: xssPayloads[1]}
	f.status.Name = xssPayloads[0]
	f.status.Job = xssPayloads[1]
	f.status.Reachability = xssPayloads[2]
	s, _ := newTestServer(t, f)
	bad := regexp.MustCompile(`(?i)<script>alert|<img src=x|<svg onload|<iframe|href="javascript:|onerror=alert\(1\)>`)
	for _, p := range append(pagePaths, "/log?q=alert") {
		t.Run(p, func(t *testing.T) {
			w := get(t, s.Handler(), p)
			if w.Code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", p, w.Code, w.Body)
			}
			body := w.Body.String()
			if m := bad.FindString(body); m != "" {
				i := strings.Index(body, m)
				t.Fatalf("GET %s: a payload survives unescaped: …%s…", p, body[max(0, i-80):min(len(body), i+80)])
			}
			if p != "/import" && !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") && !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
				t.Fatalf("GET %s: the payloads do not show as text", p)
			}
		})
	}
}

func TestPasswordSetupAndLogin(t *testing.T) {
	s, pwFile := newTestServer(t, newFake())
	h := s.Handler()
	do := func(path string, form url.Values, remote string) *httptest.ResponseRecorder {
		t.Helper()
		method := "GET"
		var body io.Reader
		if form != nil {
			method, body = "POST", strings.NewReader(form.Encode())
		}
		req := httptest.NewRequest(method, "http://127.0.0.1:7777"+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	session := sessionOf
	const local, remote = "127.0.0.1:50000", "192.0.2.7:50000"

	if w := do("/login", nil, local); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/setup" {
		t.Fatalf("first visit: %d to %q, want 303 to the setup", w.Code, w.Header().Get("Location"))
	}
	tests := []struct {
		name   string
		form   url.Values
		remote string
		want   int
	}{
		{"too short", url.Values{"password": {"short"}, "confirm": {"short"}}, local, http.StatusBadRequest},
		{"differs", url.Values{"password": {"correct horse"}, "confirm": {"correct house"}}, local, http.StatusBadRequest},
		{"from another machine without the token", url.Values{"password": {"correct horse"}, "confirm": {"correct horse"}}, remote, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do("/login/setup", tt.form, tt.remote)
			if w.Code != tt.want || session(w) != nil {
				t.Fatalf("setup: %d (session %v), want %d", w.Code, session(w), tt.want)
			}
			if _, err := os.Stat(pwFile); err == nil {
				t.Fatal("a refused setup wrote the password file")
			}
		})
	}
	w := do("/login/setup", url.Values{"password": {"correct horse"}, "confirm": {"correct horse"}}, local)
	if w.Code != http.StatusSeeOther || session(w) == nil {
		t.Fatalf("setup: %d, want 303 and a session", w.Code)
	}
	c := session(w)
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict", c)
	}
	stored, _ := os.ReadFile(pwFile)
	if strings.Contains(string(stored), "correct horse") || bcrypt.CompareHashAndPassword([]byte(strings.TrimSpace(string(stored))), []byte("correct horse")) != nil {
		t.Fatalf("the password file holds %q, want a bcrypt hash of the password", stored)
	}
	fi, _ := os.Stat(pwFile)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("password file mode %v, want 0600", fi.Mode().Perm())
	}
	// A second setup changes nothing.
	do("/login/setup", url.Values{"password": {"evil password"}, "confirm": {"evil password"}}, local)
	if again, _ := os.ReadFile(pwFile); string(again) != string(stored) {
		t.Fatal("a second setup replaced the password")
	}
	logins := []struct {
		name   string
		secret string
		ok     bool
	}{
		{"password", "correct horse", true},
		{"token", testToken, true},
		{"wrong", "correct house", false},
		{"empty", "", false},
		{"the refused second password", "evil password", false},
	}
	for _, tt := range logins {
		t.Run("login with "+tt.name, func(t *testing.T) {
			w := do("/login", url.Values{"password": {tt.secret}}, remote)
			if got := session(w) != nil; got != tt.ok {
				t.Fatalf("login with %s: session %v, want %v (Location %s)", tt.name, got, tt.ok, w.Header().Get("Location"))
			}
		})
	}
	if w := do("/login", nil, local); w.Code != http.StatusOK || strings.Contains(w.Body.String(), "/login/setup") {
		t.Fatalf("the login page after the setup: %d, or it still offers to choose a password", w.Code)
	}
	if w := do("/setup", nil, local); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" {
		t.Fatalf("the setup after the password: %d to %q, want 303 to /login", w.Code, w.Header().Get("Location"))
	}
}

func TestSetupFromAnotherMachineTakesTheToken(t *testing.T) {
	s, pwFile := newTestServer(t, newFake())
	req := httptest.NewRequest("POST", "http://192.0.2.1:7777/login/setup", strings.NewReader(url.Values{"password": {"correct horse"}, "confirm": {"correct horse"}, "token": {testToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "192.0.2.7:4000"
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("remote setup with the token: %d", w.Code)
	}
	if _, err := os.Stat(pwFile); err != nil {
		t.Fatal(err)
	}
}

// TestOverviewWeight: the overview page with every asset it references
// weighs at most 200 KB.
func TestOverviewWeight(t *testing.T) {
	f := newFake()
	for i := range 20 {
		f.friends = append(f.friends, Friend{Name: fmt.Sprintf("friend %d", i), PeerID: fmt.Sprintf("12D3KooW%040d", i)})
		f.events = append(f.events, kv.Event{Seq: uint64(i + 1), Level: "INFO", Component: "backup", Message: strings.Repeat("something happened ", 5), Time: time.Now()})
	}
	s, _ := newTestServer(t, f)
	w := get(t, s.Handler(), "/")
	if w.Code != http.StatusOK {
		t.Fatalf("GET /: %d", w.Code)
	}
	total := w.Body.Len()
	refs := regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`).FindAllStringSubmatch(w.Body.String(), -1)
	if len(refs) < 2 {
		t.Fatalf("the overview references %d assets; want its CSS and JS at least", len(refs))
	}
	seen := map[string]bool{}
	for _, m := range refs {
		u := strings.ReplaceAll(m[1], "&amp;", "&")
		if seen[u] {
			continue
		}
		seen[u] = true
		a := get(t, s.Handler(), u)
		if a.Code != http.StatusOK {
			t.Fatalf("GET %s: %d", u, a.Code)
		}
		if cc := a.Header().Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Fatalf("GET %s: Cache-Control %q, want immutable (the URL carries the content hash)", u, cc)
		}
		total += a.Body.Len()
	}
	t.Logf("overview: %d bytes with %d assets", total, len(seen))
	if total > 200_000 {
		t.Fatalf("the overview weighs %d bytes with its assets, want ≤ 200 KB", total)
	}
}

func TestStaticAssets(t *testing.T) {
	s, _ := newTestServer(t, newFake())
	for _, tt := range []struct{ path, ctype string }{
		{"/static/app.js", "text/javascript"},
		{"/static/app.css", "text/css"},
		{"/static/vendor/jsqr/jsQR.js", "text/javascript"},
		{"/static/plug.svg", "image/svg+xml"},
	} {
		w := get(t, s.Handler(), tt.path)
		if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), tt.ctype) || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("GET %s: %d %q", tt.path, w.Code, w.Header().Get("Content-Type"))
		}
	}
	if w := get(t, s.Handler(), "/static/../server.go"); w.Code == http.StatusOK {
		t.Fatal("the static handler serves files outside static/")
	}
	if _, err := fs.Stat(staticEmbed, "static/vendor/jsqr/LICENSE"); err != nil {
		t.Fatal("jsQR is vendored without its LICENSE")
	}
}

// sseEvent is one server-sent event.
type sseEvent struct{ name, data string }

// readSSE reads events from r until stop says so or the stream ends.
func readSSE(t *testing.T, r io.Reader, stop func(sseEvent) bool) []sseEvent {
	t.Helper()
	var out []sseEvent
	sc := bufio.NewScanner(r)
	var cur sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data = strings.TrimPrefix(line, "data: ")
		case line == "" && cur.name != "":
			out = append(out, cur)
			if stop(cur) {
				return out
			}
			cur = sseEvent{}
		}
	}
	return out
}

func TestBackupJobStreamsProgress(t *testing.T) {
	f := newFake()
	f.sources = []string{"/home/ann"}
	release := make(chan struct{})
	f.backup = func(ctx context.Context, paths []string, progress func(archiver.Progress), warn func(string, error)) (BackupResult, error) {
		if len(paths) != 1 || paths[0] != "/home/ann" {
			return BackupResult{}, fmt.Errorf("paths %v, want the sources", paths)
		}
		progress(archiver.Progress{Phase: "backup", Files: 1, FilesTotal: 2, Bytes: 10, BytesTotal: 20, ScanDone: true})
		warn("/home/ann/<b>locked</b>", errors.New("permission denied"))
		<-release
		progress(archiver.Progress{Phase: "done", Files: 2, FilesTotal: 2, Bytes: 20, BytesTotal: 20, ScanDone: true})
		return BackupResult{SnapshotID: "feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface", Files: 2, Bytes: 20}, nil
	}
	s, _ := newTestServer(t, f)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	call := func(method, path, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := call("POST", "/api/v1/backups/jobs", "{}")
	var started struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&started); err != nil {
		t.Fatal(err)
	}
	closeBody(t, resp)
	if resp.StatusCode != http.StatusAccepted || started.ID == "" {
		t.Fatalf("start: %d %+v", resp.StatusCode, started)
	}
	if r := call("POST", "/api/v1/backups/jobs", "{}"); r.StatusCode != http.StatusConflict {
		t.Fatalf("a second backup while one runs: %d, want 409", r.StatusCode)
	}
	ev := call("GET", "/api/v1/backups/jobs/"+started.ID+"/events", "")
	defer closeBody(t, ev)
	if ct := ev.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("events: Content-Type %q", ct)
	}
	got := readSSE(t, ev.Body, func(e sseEvent) bool {
		if e.name == "warning" {
			close(release) // the backup goes on once the page saw the warning
		}
		return e.name == "result" || e.name == "error"
	})
	var names []string
	for _, e := range got {
		names = append(names, e.name)
	}
	last := got[len(got)-1]
	if last.name != "result" || !strings.Contains(last.data, `"snapshot_id":"feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface"`) {
		t.Fatalf("events %v, last %+v: want a result with the snapshot", names, last)
	}
	var done archiver.Progress
	for _, e := range got {
		if e.name == "progress" {
			if err := json.Unmarshal([]byte(e.data), &done); err != nil {
				t.Fatalf("progress %q: %v", e.data, err)
			}
		}
	}
	if done.Phase != "done" || done.Bytes != done.BytesTotal {
		t.Fatalf("events %v: the last progress is %+v, want phase done at 100%%", names, done)
	}
	// A page that comes back later still gets the result.
	again := call("GET", "/api/v1/backups/jobs/"+started.ID+"/events", "")
	defer closeBody(t, again)
	late := readSSE(t, again.Body, func(e sseEvent) bool { return e.name == "result" })
	if late[len(late)-1].name != "result" {
		t.Fatalf("late follower got %v", late)
	}
	if r := call("GET", "/api/v1/backups/jobs/nope/events", ""); r.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown job: %d", r.StatusCode)
	}
}

func TestEventStreamIsLive(t *testing.T) {
	f := newFake()
	f.appendEvent(kv.Event{Level: "INFO", Component: "daemon", Message: "plug is up"})
	s, _ := newTestServer(t, f)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/events/stream?after=0", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer closeBody(t, resp)
	n := 0
	got := readSSE(t, resp.Body, func(e sseEvent) bool {
		n++
		if n == 1 {
			f.appendEvent(kv.Event{Level: "WARN", Component: "p2p", Message: "friend <b>bob</b> is offline"})
		}
		return n == 2
	})
	if len(got) != 2 || !strings.Contains(got[0].data, "plug is up") || !strings.Contains(got[1].data, "offline") {
		t.Fatalf("stream: %+v", got)
	}
}

func TestSnapshotFileDownload(t *testing.T) {
	f := newFake()
	f.files = map[string]string{"/home/ann/<b>.html": "<script>alert(1)</script>"}
	s, _ := newTestServer(t, f)
	w := get(t, s.Handler(), "/api/v1/snapshots/abc/file?path="+url.QueryEscape("/home/ann/<b>.html"))
	if w.Code != http.StatusOK || w.Body.String() != "<script>alert(1)</script>" {
		t.Fatalf("download: %d %q", w.Code, w.Body)
	}
	if ct, cd := w.Header().Get("Content-Type"), w.Header().Get("Content-Disposition"); ct != "application/octet-stream" || !strings.HasPrefix(cd, "attachment") {
		t.Fatalf("download served as %q, %q: want an attachment of octet-stream", ct, cd)
	}
	if w := get(t, s.Handler(), "/api/v1/snapshots/abc/file?path=/nope"); w.Code != http.StatusNotFound {
		t.Fatalf("missing file: %d", w.Code)
	}
}

func TestHealthWords(t *testing.T) {
	for _, tt := range []struct {
		h    Health
		want string
		good bool
	}{
		{Health{Target: 1}, "Nothing is backed up yet", true},
		{Health{CanLose: 1, Target: 1, Packs: 3}, "You can lose 1 friend and keep everything.", true},
		{Health{CanLose: 2, Target: 1, Packs: 3}, "You can lose 2 friends and keep everything.", true},
		{Health{CanLose: 0, Target: 1, Packs: 3}, "You cannot lose any friend", false},
		{Health{CanLose: 1, Target: 2, Packs: 3}, "you aim for 2", false},
		{Health{CanLose: 0, Target: 1, Packs: 3, LostPacks: 1}, "cannot be rebuilt", false},
	} {
		if got := tt.h.Words(); !strings.Contains(got, tt.want) || tt.h.Good() != tt.good {
			t.Errorf("%+v: %q (good %v), want %q (good %v)", tt.h, got, tt.h.Good(), tt.want, tt.good)
		}
	}
}

// TestOverviewSaysReachability: the overview says in words how friends
// reach the plug, naming the friend that relays.
func TestOverviewSaysReachability(t *testing.T) {
	for _, tt := range []struct {
		name string
		st   Status
		want string
	}{
		{"public", Status{Reachability: "public", PublicAddrs: []string{"/ip4/198.51.100.7/tcp/7778"}}, "reachable from the internet (at /ip4/198.51.100.7/tcp/7778)"},
		{"through a friend", Status{Reachability: "relayed", Relays: []Relay{{Name: "Cat", Friend: true}}}, "behind a home router; friends reach it through Cat&#39;s plug."},
		{"through a friend and a stranger", Status{Reachability: "relayed", Relays: []Relay{{Name: "Cat", Friend: true}, {Name: "12D3Ko…abcdef"}}}, "through Cat&#39;s plug and a public plug (12D3Ko…abcdef)."},
		{"no relay yet", Status{Reachability: "private"}, "has no relay yet"},
		{"LAN only", Status{Reachability: "lan"}, "only plugs on this network can reach it"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			tt.st.PeerID, tt.st.Version, tt.st.LastBackupAgeS, tt.st.Sources = "12D3KooWFakePeer", "test", -1, []string{}
			f.status = tt.st
			s, _ := newTestServer(t, f)
			w := get(t, s.Handler(), "/")
			if w.Code != http.StatusOK {
				t.Fatalf("overview: %d", w.Code)
			}
			if !strings.Contains(w.Body.String(), tt.want) {
				t.Fatalf("overview does not say %q:\n%s", tt.want, w.Body.String())
			}
		})
	}
}

func closeBody(t testing.TB, resp *http.Response) {
	t.Helper()
	if err := resp.Body.Close(); err != nil {
		t.Error(err)
	}
}
