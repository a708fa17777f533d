package httpui

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/plug-net/plug/store/kv"
)

// Status is what GET /api/v1/status answers; the JSON keys are the
// command-line contract (DESIGN.md) and are only ever extended.
type Status struct {
	PeerID      string   `json:"peer_id"`
	Name        string   `json:"name,omitempty"`
	ListenAddrs []string `json:"listen_addrs"`
	// Reachability is "public", "relayed" (behind NAT, reachable through a
	// relay), "private" (behind NAT, no relay yet), "lan" (no peer on the
	// internet is connected) or "unknown" (not decided yet); ReachText says
	// it in words.
	Reachability string   `json:"reachability"`
	ReachText    string   `json:"reachability_text"`
	PublicAddrs  []string `json:"public_addrs,omitempty"`
	Relays       []Relay  `json:"relays,omitempty"`
	Friends      int      `json:"friends"`
	Version      string   `json:"version"`
	UptimeS      int64    `json:"uptime_s"`
	DataDir      string   `json:"data_dir"`
	PID          int      `json:"pid"`
	DHT          string   `json:"dht,omitempty"`
	// LastBackup is when the last backup succeeded (zero: never), and
	// LastBackupAgeS its age in seconds (-1: never).
	LastBackup     time.Time     `json:"last_backup,omitzero"`
	LastBackupAgeS int64         `json:"last_backup_age_s"`
	Snapshots      int           `json:"snapshots"`
	CanLose        *int          `json:"can_lose,omitempty"`      // friends that may vanish without loss (store.Repo.Health)
	SharedHouses   []string      `json:"shared_houses,omitempty"` // friends who live in one house: "Bob and Cat"
	LastCheck      time.Time     `json:"last_check,omitzero"`     // when the friends were last checked by schedule
	LastCheckAgeS  int64         `json:"last_check_age_s"`        // seconds since, -1: never
	FriendChecks   []FriendCheck `json:"friend_checks,omitempty"` // what the last check found at each friend
	Job            string        `json:"job,omitempty"`           // what runs now
	Sources        []string      `json:"sources"`
	// LANUI is where the web UI answers on the local network
	// ("https://NAME.local:7443/", with --lan-ui), LANHost its NAME.local,
	// and UICertSHA256 the SHA-256 fingerprint of its self-made
	// certificate, as browsers show it (AB:CD:…).
	LANUI        string `json:"lan_ui,omitempty"`
	LANHost      string `json:"lan_host,omitempty"`
	UICertSHA256 string `json:"ui_cert_sha256,omitempty"`
}

// ReachWords says in a sentence how the internet reaches the plug, for the
// overview page.
func (s Status) ReachWords() string {
	switch s.Reachability {
	case "public":
		w := "Your plug is reachable from the internet"
		if len(s.PublicAddrs) > 0 {
			w += " (at " + s.PublicAddrs[0] + ")"
		}
		return w + "; it relays for friends that live behind home routers."
	case "relayed":
		names := make([]string, len(s.Relays))
		for i, r := range s.Relays {
			if r.Friend {
				names[i] = r.Name + "'s plug"
			} else {
				names[i] = "a public plug (" + r.Name + ")"
			}
		}
		return "Your plug is behind a home router; friends reach it through " + strings.Join(names, " and ") + "."
	case "private":
		return "Your plug is behind a home router and has no relay yet: friends reach it only when a hole punch works. It keeps looking for a relay, a friend with a public address first."
	case "lan":
		return "Your plug sees no one on the internet: only plugs on this network can reach it, found by mDNS."
	case "unknown":
		return "Your plug is finding out whether the internet can reach it."
	}
	return s.ReachText
}

// FriendCheck is what the last check found at one friend.
type FriendCheck struct {
	PeerID  string    `json:"peer_id"`
	Name    string    `json:"name"`
	Checked time.Time `json:"checked"`
	Proved  int       `json:"proved"`
	Failed  int       `json:"failed"`
}

// Relay is a plug that holds a relay slot for this one.
type Relay struct {
	PeerID string `json:"peer_id"`
	Name   string `json:"name"`
	Friend bool   `json:"friend"`
}

// StatusBackend tells how the running plug is: what GET /api/v1/status
// answers, its health, and its event log.
type StatusBackend interface {
	Status(ctx context.Context) (Status, error)
	// Health tells how many friends may vanish without loss, from where
	// the shards are placed.
	Health(ctx context.Context) (Health, error)
	Events(ctx context.Context, after uint64, limit int) ([]kv.Event, error)
	LastEvents(ctx context.Context, n int) ([]kv.Event, error)
	// EventsChanged returns a channel closed at the next appended event.
	EventsChanged() <-chan struct{}
}

// Backends are the parts of the running plug that the server answers
// from: one small interface per area, each declared beside the handlers
// that use it. All are required. Errors answer with the status that
// statusOf finds for them (errors.go), others with 500.
type Backends struct {
	Status  StatusBackend
	Friends FriendsBackend
	Backups BackupsBackend
	Jobs    JobsBackend
	Social  SocialBackend
	Browse  BrowseBackend
	Setup   SetupBackend
}

// Config configures the server.
type Config struct {
	Token  string       // the API token (DIR/api.token); required
	Logger *slog.Logger // default: discard
	// AllowedHosts are extra Host header names accepted besides IP literals
	// and "localhost" (DNS-rebinding protection).
	AllowedHosts []string
	// PasswordFile keeps the bcrypt hash of the web UI's password, chosen on
	// the first visit; "" allows only the token as a login.
	PasswordFile string
	// RemoteUI says the UI is open to the network (--allow-remote-ui):
	// choosing the first password then always takes the API token.
	RemoteUI bool
	// UploadDir keeps uploaded archives while they are imported; required.
	UploadDir string
	// TokenFile is where the API token is kept, named on the pages.
	TokenFile string
	// SetupCodeFile keeps the one-time code that opens the setup flow from
	// another machine; WordsFile the recovery words the plug kept for its
	// first boot (PLUG_WORDS=file), deleted once three are typed back.
	SetupCodeFile string
	WordsFile     string
	// PasswordCost is bcrypt's cost (default bcrypt.DefaultCost; tests
	// lower it).
	PasswordCost int
}

// Server is the plug's HTTP front: JSON API, login and pages.
type Server struct {
	cfg      Config
	status   StatusBackend
	friends  FriendsBackend
	backups  BackupsBackend
	jobs     JobsBackend
	social   SocialBackend
	browse   BrowseBackend
	log      *slog.Logger
	mux      *http.ServeMux
	handler  http.Handler
	setupB   SetupBackend
	sessions byID[struct{}]    // logged-in browsers
	setup    byID[*setupState] // browsers in the first setup
	loginSem chan struct{}     // bounds concurrent password checks

	hostsMu sync.Mutex
	hosts   []string // Config.AllowedHosts, and names added by AllowHost
}

//go:embed templates
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(templateFuncs).ParseFS(templateFS, "templates/*.html"))

// New returns the server; serve it with Handler.
func New(cfg Config, b Backends) (*Server, error) {
	if len(cfg.Token) < 32 {
		return nil, errors.New("httpui: API token missing or too short")
	}
	if cfg.UploadDir == "" {
		return nil, errors.New("httpui: no upload folder")
	}
	if b.Status == nil || b.Friends == nil || b.Backups == nil || b.Jobs == nil || b.Social == nil || b.Browse == nil || b.Setup == nil {
		return nil, errors.New("httpui: a backend is missing")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PasswordCost == 0 {
		cfg.PasswordCost = bcrypt.DefaultCost
	}
	s := &Server{cfg: cfg, status: b.Status, friends: b.Friends, backups: b.Backups, jobs: b.Jobs, social: b.Social, browse: b.Browse, setupB: b.Setup, log: cfg.Logger, mux: http.NewServeMux(), loginSem: make(chan struct{}, 2), hosts: slices.Clone(cfg.AllowedHosts)}
	s.sessions.ttl, s.setup.ttl = sessionTTL, setupTTL
	s.routes()
	cop := http.NewCrossOriginProtection()
	s.handler = s.checkHost(cop.Handler(s.mux))
	return s, nil
}

// Handler returns the root handler with every protection applied.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() {
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /login/setup", s.setPasswordStep)
	s.mux.HandleFunc("POST /logout", s.logout)
	s.setupRoutes()
	s.pageRoutes()
	s.mux.Handle("GET /api/v1/status", s.api(s.apiStatus))
	s.mux.Handle("GET /api/v1/events", s.api(s.apiEvents))
	s.friendRoutes()
	s.backupRoutes()
	s.socialRoutes()
	s.debugRoutes()
	s.mux.Handle("/api/", s.api(func(w http.ResponseWriter, r *http.Request) error {
		return &apiError{code: http.StatusNotFound, msg: "no such API endpoint: " + r.Method + " " + r.URL.Path}
	}))
}

// checkHost refuses requests whose Host header is a DNS name other than
// localhost or a configured one: a page on evil.example that rebinds its name
// to 127.0.0.1 still sends "Host: evil.example".
func (s *Server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		ok := host == "localhost" || net.ParseIP(host) != nil || s.hostAllowed(host)
		if !ok {
			http.Error(w, "plug: refused: unexpected Host header "+strconv.Quote(r.Host)+" (open the UI at its IP address or localhost)", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// AllowHost accepts name in the Host header from now on (a plug renamed
// answers as NEW.local too).
func (s *Server) AllowHost(name string) {
	s.hostsMu.Lock()
	defer s.hostsMu.Unlock()
	if !slices.ContainsFunc(s.hosts, func(h string) bool { return strings.EqualFold(h, name) }) {
		s.hosts = append(s.hosts, name)
	}
}

func (s *Server) hostAllowed(host string) bool {
	s.hostsMu.Lock()
	defer s.hostsMu.Unlock()
	return slices.ContainsFunc(s.hosts, func(h string) bool { return strings.EqualFold(h, host) })
}

// byID holds values under random 256-bit IDs (cookie values) until they
// expire: the logged-in browsers, and those in the first setup.
type byID[V any] struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]expiringValue[V]
}

type expiringValue[V any] struct {
	v   V
	exp time.Time
}

// add keeps v under a new ID for ttl, and forgets the expired.
func (b *byID[V]) add(v V) string {
	var raw [32]byte
	rand.Read(raw[:])
	id := hex.EncodeToString(raw[:])
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = make(map[string]expiringValue[V])
	}
	for k, e := range b.m {
		if now.After(e.exp) {
			delete(b.m, k)
		}
	}
	b.m[id] = expiringValue[V]{v: v, exp: now.Add(b.ttl)}
	return id
}

// get returns the value of a live ID.
func (b *byID[V]) get(id string) (V, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.m[id]
	if ok && time.Now().After(e.exp) {
		delete(b.m, id)
		ok = false
	}
	return e.v, ok
}

func (b *byID[V]) drop(id string) {
	b.mu.Lock()
	delete(b.m, id)
	b.mu.Unlock()
}

const (
	sessionCookie = "plug_session"
	sessionTTL    = 30 * 24 * time.Hour
)

// authorized reports whether r carries the API token or a live session.
func (s *Server) authorized(r *http.Request) bool {
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		return subtle.ConstantTimeCompare([]byte(strings.TrimPrefix(a, "Bearer ")), []byte(s.cfg.Token)) == 1
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		_, ok := s.sessions.get(c.Value)
		return ok
	}
	return false
}

// apiError is an error with an HTTP status, answered as JSON.
type apiError struct {
	code int
	msg  string
	err  error
}

func (e *apiError) Error() string { return e.msg }
func (e *apiError) Unwrap() error { return e.err }

// api wraps a JSON handler: authentication, then errors answered as
// {"error": "..."} with their status.
func (s *Server) api(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "not logged in: send the token of " + s.tokenFile() + " as \"Authorization: Bearer TOKEN\", or log in at /login"})
			return
		}
		if err := h(w, r); err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				if errors.Is(err, context.Canceled) {
					return
				}
				errors.As(withStatus(err, http.StatusInternalServerError), &ae)
			}
			writeJSON(w, ae.code, map[string]string{"error": ae.msg})
		}
	})
}

// page wraps an HTML handler: a browser without a session goes to /login.
func (s *Server) page(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if err := h(w, r); err != nil {
			s.log.Warn("page failed", "path", r.URL.Path, "err", err)
			http.Error(w, "plug: "+err.Error(), http.StatusInternalServerError)
		}
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the status is sent: a failed write means the client left
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// render executes the template into a buffer first, so a failure answers a
// clean error instead of half a page.
// renderOr500 renders a page outside the page handlers: a template that
// fails is logged and answered 500.
func (s *Server) renderOr500(w http.ResponseWriter, code int, name string, data any) {
	if err := s.renderCode(w, code, name, data); err != nil {
		s.log.Error("page failed", "page", name, "err", err)
		http.Error(w, "plug: "+err.Error(), http.StatusInternalServerError)
	}
}

func (s *Server) render(w http.ResponseWriter, name string, data any) error {
	return s.renderCode(w, http.StatusOK, name, data)
}

func (s *Server) renderCode(w http.ResponseWriter, code int, name string, data any) error {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := pages.ExecuteTemplate(buf, name, data); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, err := w.Write(buf.Bytes())
	return err
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.sessions.drop(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secureCookie(r), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) error {
	st, err := s.status.Status(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// EventJSON is one event as the API answers it.
type EventJSON struct {
	Seq       uint64            `json:"seq"`
	Time      time.Time         `json:"time"`
	Level     string            `json:"level"`
	Component string            `json:"component,omitempty"`
	Message   string            `json:"message"`
	Attrs     map[string]string `json:"attrs,omitempty"`
}

// apiEvents answers GET /api/v1/events?after=SEQ&limit=N&wait=DURATION: the
// events after SEQ, oldest first. With wait, it holds the request until an
// event arrives or the wait ends (long polling for "plug log --follow").
// Without after, it answers the last N events.
func (s *Server) apiEvents(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return &apiError{code: http.StatusBadRequest, msg: "limit must be a number from 1 to 10000"}
		}
		limit = n
	}
	var wait time.Duration
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > 5*time.Minute {
			return &apiError{code: http.StatusBadRequest, msg: "wait must be a duration up to 5m"}
		}
		wait = d
	}
	var (
		ev  []kv.Event
		err error
	)
	if !q.Has("after") {
		ev, err = s.status.LastEvents(r.Context(), limit)
	} else {
		after, perr := strconv.ParseUint(q.Get("after"), 10, 64)
		if perr != nil {
			return &apiError{code: http.StatusBadRequest, msg: "after must be an event sequence number"}
		}
		deadline := time.NewTimer(wait)
		defer deadline.Stop()
		for {
			changed := s.status.EventsChanged()
			ev, err = s.status.Events(r.Context(), after, limit)
			if err != nil || len(ev) > 0 || wait == 0 {
				break
			}
			select {
			case <-changed:
				continue
			case <-deadline.C:
			case <-r.Context().Done():
				return r.Context().Err()
			}
			break
		}
	}
	if err != nil {
		return fmt.Errorf("read event log: %w", err)
	}
	out := make([]EventJSON, len(ev))
	for i, e := range ev {
		out[i] = EventJSON{Seq: e.Seq, Time: e.Time, Level: e.Level, Component: e.Component, Message: e.Message, Attrs: e.Attrs}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
