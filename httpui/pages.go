package httpui

import (
	"cmp"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/plug-net/plug/social"
	"github.com/plug-net/plug/store"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/kv"
)

// BrowseBackend opens the snapshots for the pages that browse them.
type BrowseBackend interface {
	// SnapshotTree lists a folder (an absolute original path; "/" for the
	// top) of a snapshot (ID, prefix or "latest").
	SnapshotTree(ctx context.Context, snapshot, path string) (SnapshotDir, error)
	// OpenSnapshotFile opens one file of a snapshot for download.
	OpenSnapshotFile(ctx context.Context, snapshot, path string) (*SnapshotFile, error)
}

// DirOf lists the folder at p of a snapshot for the pages: folders
// first, then by name; names that are not UTF-8 shown with U+FFFD.
func DirOf(snap SnapshotInfo, p string, nodes []data.Node) SnapshotDir {
	p = path.Clean("/" + p)
	d := SnapshotDir{Snapshot: snap, Path: p, Entries: make([]TreeEntry, 0, len(nodes))}
	for _, c := range nodes {
		name := c.Name
		if name == "" && len(c.RawName) > 0 {
			name = strings.ToValidUTF8(string(c.RawName), "\uFFFD")
		}
		target := c.Target
		if target == "" && len(c.RawTarget) > 0 {
			target = strings.ToValidUTF8(string(c.RawTarget), "\uFFFD")
		}
		d.Entries = append(d.Entries, TreeEntry{
			Name: name, Path: path.Join(p, name), Type: c.Type, Size: c.Size,
			ModTime: time.Unix(0, c.ModTime), Target: target,
		})
	}
	// A tree holds its nodes by name: a stable sort keeps that order.
	rank := func(e TreeEntry) int {
		if e.Type == data.TypeDir {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(d.Entries, func(x, y TreeEntry) int { return cmp.Compare(rank(x), rank(y)) })
	return d
}

// Health is what GET /api/v1/health answers.
type Health struct {
	CanLose   int `json:"can_lose"`   // friends that may vanish without loss
	Target    int `json:"target"`     // what the plug aims for
	Packs     int `json:"packs"`      // packs stored with friends
	LostPacks int `json:"lost_packs"` // packs that cannot be rebuilt
	// SharedHouses names friends who live in one house ("Bob and Cat").
	SharedHouses []string `json:"shared_houses,omitempty"`
}

// Words says the health in plain words, and the houses friends share.
func (h Health) Words() string {
	w := h.words()
	for _, names := range h.SharedHouses {
		w += " " + names + " are in the same house: losing it loses all of them, and it counts as one."
	}
	return w
}

func (h Health) words() string {
	switch {
	case h.Packs == 0:
		return "Nothing is backed up yet, so there is nothing to lose. Add a folder on the Backups page."
	case h.LostPacks > 0:
		return fmt.Sprintf("Some data cannot be rebuilt: %d of %d packs lack shards. Run Verify and Repair on the Backups page.", h.LostPacks, h.Packs)
	case h.CanLose == 0:
		return "You cannot lose any friend without losing data. Run Repair, or pair with more friends."
	case h.CanLose < h.Target:
		return fmt.Sprintf("You can lose %s and keep everything; you aim for %d. Run Repair, or pair with more friends.", friends(h.CanLose), h.Target)
	}
	return fmt.Sprintf("You can lose %s and keep everything.", friends(h.CanLose))
}

// Good reports whether the plug meets its target.
func (h Health) Good() bool { return h.LostPacks == 0 && (h.Packs == 0 || h.CanLose >= h.Target) }

func friends(n int) string {
	if n == 1 {
		return "1 friend"
	}
	return strconv.Itoa(n) + " friends"
}

// TreeEntry is one file, folder or link of a snapshot.
type TreeEntry struct {
	Name    string    `json:"name"`
	Path    string    `json:"path"` // absolute original path
	Type    string    `json:"type"` // file, dir or symlink
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mtime"`
	Target  string    `json:"target,omitempty"`
}

// SnapshotDir is what GET /api/v1/snapshots/{id}/tree answers.
type SnapshotDir struct {
	Snapshot SnapshotInfo `json:"snapshot"`
	Path     string       `json:"path"`
	Entries  []TreeEntry  `json:"entries"`
}

// SnapshotFile is one file of a snapshot, open for reading.
type SnapshotFile struct {
	io.ReadCloser
	Name    string
	Size    int64
	ModTime time.Time
}

// The static assets are plain files, served as they are: no build step.
//
//go:embed static
var staticEmbed embed.FS

var (
	staticFS   fs.FS
	assetHash  = map[string]string{}
	assetBytes = map[string]int{}
)

func init() {
	sub, err := fs.Sub(staticEmbed, "static")
	if err != nil {
		panic(err)
	}
	staticFS = sub
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		assetHash[p] = hex.EncodeToString(h[:6])
		assetBytes[p] = len(b)
		return nil
	})
	if err != nil {
		panic(err) // the files are embedded: only a broken build gets here
	}
}

var templateFuncs = template.FuncMap{
	"since": func(s int64) string { return (time.Duration(s) * time.Second).String() },
	// asset names a static file with its content hash, so it can be cached
	// for good.
	"asset": func(name string) string {
		return "/static/" + name + "?v=" + assetHash[name]
	},
	"bytes": func(n int64) string { return humanize.IBytes(uint64(max(n, 0))) },
	"minus": func(a, b int) int { return a - b },
	"inc":   func(a int) int { return a + 1 },
	// rtt renders a round-trip time in milliseconds.
	"rtt": func(ms float64) string {
		if ms < 10 {
			return fmt.Sprintf("%.1f ms", ms)
		}
		return fmt.Sprintf("%.0f ms", ms)
	},
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return humanize.Time(t)
	},
	"when":  func(t time.Time) string { return t.Local().Format("2006-01-02 15:04") },
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
	"short": func(id string) string { return id[:min(len(id), 8)] },
	// peer shortens a peer ID to its distinctive end (they all begin alike).
	"peer": func(id string) string {
		if len(id) <= 12 {
			return id
		}
		return "…" + id[len(id)-8:]
	},
	"pathEsc": url.PathEscape,
	"pct": func(used, quota int64) int {
		if quota <= 0 {
			return 0
		}
		return int(min(100, used*100/quota))
	},
	"mib": func(n int64) int64 { return n >> 20 },
	"crumbs": func(p string) []TreeEntry {
		out := []TreeEntry{{Name: "/", Path: "/"}}
		acc := ""
		for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
			if part == "" {
				continue
			}
			acc += "/" + part
			out = append(out, TreeEntry{Name: part, Path: acc})
		}
		return out
	},
}

func (s *Server) pageRoutes() {
	s.mux.Handle("GET /{$}", s.page(s.overviewPage))
	s.mux.Handle("GET /friends", s.page(s.friendsPage))
	s.mux.Handle("GET /backups", s.page(s.backupsPage))
	s.mux.Handle("GET /backups/{id}", s.page(s.browsePage))
	s.mux.Handle("GET /timeline", s.page(s.timelinePage))
	s.mux.Handle("GET /import", s.page(s.importPage))
	s.mux.Handle("GET /log", s.page(s.logPage))
	s.mux.HandleFunc("GET /static/", s.static)

	s.mux.Handle("GET /api/v1/health", s.api(s.apiHealth))
	s.mux.Handle("GET /api/v1/snapshots/{id}/tree", s.api(s.apiTree))
	s.mux.Handle("GET /api/v1/snapshots/{id}/file", s.api(s.apiFile))
	s.mux.Handle("GET /api/v1/events/stream", s.api(s.apiEventStream))
	s.mux.Handle("POST /api/v1/backups/jobs", s.api(s.apiStartBackup))
	s.mux.Handle("GET /api/v1/backups/jobs/{id}/events", s.api(s.apiBackupEvents))
	s.mux.Handle("DELETE /api/v1/backups/jobs/{id}", s.api(s.apiCancelBackup))
}

// static serves the embedded assets (no login: they hold no data).
func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/static/")
	b, err := fs.ReadFile(staticFS, name)
	if err != nil || name == "" {
		http.NotFound(w, r)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.URL.Query().Get("v") == assetHash[name] {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.Write(b)
}

// pageData is what every page template gets.
type pageData struct {
	Title string
	Nav   string // the menu entry to mark
	D     any
}

func (s *Server) show(w http.ResponseWriter, name, title, nav string, d any) error {
	return s.render(w, name, pageData{Title: title, Nav: nav, D: d})
}

type overviewData struct {
	Status        Status
	Health        Health
	FriendsOnline int
	FriendsTotal  int
	Given         int64 // quota given to friends, summed
	GivenUsed     int64
	Taken         int64 // quota friends give this plug
	TakenUsed     int64
	Events        []kv.Event
}

func (s *Server) overviewPage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var d overviewData
	var err error
	if d.Status, err = s.status.Status(ctx); err != nil {
		return err
	}
	if d.Health, err = s.status.Health(ctx); err != nil {
		return err
	}
	fs, err := s.friends.Friends(ctx)
	if err != nil {
		return err
	}
	d.FriendsTotal = len(fs)
	for _, f := range fs {
		if f.Online {
			d.FriendsOnline++
		}
		d.Given += f.QuotaGiven
		d.GivenUsed += f.UsedGiven
		d.Taken += f.QuotaTaken
		d.TakenUsed += f.UsedTaken
	}
	if d.Events, err = s.status.LastEvents(ctx, 8); err != nil {
		return err
	}
	slices.Reverse(d.Events)
	return s.show(w, "overview.html", "Overview", "overview", d)
}

func (s *Server) friendsPage(w http.ResponseWriter, r *http.Request) error {
	fs, err := s.friends.Friends(r.Context())
	if err != nil {
		return err
	}
	slices.SortFunc(fs, func(a, b Friend) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return s.show(w, "friends.html", "Friends", "friends", fs)
}

type backupsData struct {
	Job        string // a backup started from the page that still runs
	Status     Status
	Redundancy store.Redundancy
	Sources    []string
	Snapshots  []SnapshotInfo // newest first
}

func (s *Server) backupsPage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var d backupsData
	var err error
	if d.Status, err = s.status.Status(ctx); err != nil {
		return err
	}
	if d.Redundancy, err = s.backups.Redundancy(ctx); err != nil {
		return err
	}
	if d.Sources, err = s.backups.Sources(ctx); err != nil {
		return err
	}
	if d.Snapshots, err = s.backups.Snapshots(ctx); err != nil {
		return err
	}
	slices.SortFunc(d.Snapshots, func(a, b SnapshotInfo) int { return b.Time.Compare(a.Time) })
	if j := s.jobs.Running(); j != nil {
		d.Job = j.ID
	}
	return s.show(w, "backups.html", "Backups", "backups", d)
}

// cleanTreePath makes a browsed path absolute and clean.
func cleanTreePath(p string) string {
	return path.Clean("/" + p)
}

func (s *Server) browsePage(w http.ResponseWriter, r *http.Request) error {
	p := cleanTreePath(r.URL.Query().Get("path"))
	dir, err := s.browse.SnapshotTree(r.Context(), r.PathValue("id"), p)
	if err != nil {
		if code := statusOf(err); code != 0 && code < 500 {
			http.Error(w, "plug: "+err.Error(), code)
			return nil
		}
		return err
	}
	return s.show(w, "browse.html", "Snapshot "+dir.Snapshot.ID[:min(8, len(dir.Snapshot.ID))], "backups", dir)
}

type timelineData struct {
	Query   string
	Source  string
	Total   uint64 // of a search
	Items   []social.Entry
	Older   string // the "before" of the next page, "" at the end
	Offset  int    // of a search
	NextOff int    // of a search, 0 at the end
}

const timelinePage = 50

func (s *Server) timelinePage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	d := timelineData{Query: strings.TrimSpace(q.Get("q")), Source: q.Get("source")}
	if social.CheckSource(d.Source) != nil {
		d.Source = ""
	}
	var err error
	if d.Query != "" {
		if len(d.Query) > 1000 {
			d.Query = strings.ToValidUTF8(d.Query[:1000], "")
		}
		d.Offset, _ = strconv.Atoi(q.Get("offset"))
		d.Offset = min(max(d.Offset, 0), 100000)
		d.Items, d.Total, err = s.social.Search(r.Context(), d.Query, d.Source, timelinePage, d.Offset)
		if err != nil {
			return err
		}
		if uint64(d.Offset+len(d.Items)) < d.Total {
			d.NextOff = d.Offset + len(d.Items)
		}
	} else {
		tq := social.TimelineQuery{Source: d.Source, Limit: timelinePage}
		if t, err := time.Parse(time.RFC3339Nano, q.Get("before")); err == nil {
			tq.Before = t
		}
		if d.Items, err = s.social.Timeline(r.Context(), tq); err != nil {
			return err
		}
		if len(d.Items) == timelinePage {
			d.Older = d.Items[len(d.Items)-1].Time.UTC().Format(time.RFC3339Nano)
		}
	}
	return s.show(w, "timeline.html", "Timeline", "timeline", d)
}

func (s *Server) importPage(w http.ResponseWriter, r *http.Request) error {
	return s.show(w, "import.html", "Import", "import", nil)
}

type logData struct {
	Level     string // the lowest level shown: debug, info, warn, error
	Component string
	Query     string
	Events    []kv.Event // newest first
	Last      uint64     // the newest event's sequence number
}

// levelRank orders slog's level names.
func levelRank(l string) int {
	switch strings.ToUpper(l) {
	case "DEBUG":
		return 0
	case "WARN", "WARNING":
		return 2
	case "ERROR":
		return 3
	}
	return 1
}

const (
	logScan  = 5000 // events read for one page
	logShown = 300  // events shown
)

func (s *Server) logPage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	d := logData{Level: strings.ToLower(q.Get("level")), Component: q.Get("component"), Query: strings.TrimSpace(q.Get("q"))}
	switch d.Level {
	case "debug", "info", "warn", "error":
	default:
		d.Level = "debug"
	}
	ev, err := s.status.LastEvents(r.Context(), logScan)
	if err != nil {
		return err
	}
	if len(ev) > 0 {
		d.Last = ev[len(ev)-1].Seq
	}
	min := levelRank(d.Level)
	needle := strings.ToLower(d.Query)
	for i := len(ev) - 1; i >= 0 && len(d.Events) < logShown; i-- {
		e := ev[i]
		if levelRank(e.Level) < min || (d.Component != "" && e.Component != d.Component) {
			continue
		}
		if needle != "" && !strings.Contains(strings.ToLower(eventText(e)), needle) {
			continue
		}
		d.Events = append(d.Events, e)
	}
	return s.show(w, "log.html", "Log", "log", d)
}

// eventText is what the log's filter searches: the message and attributes.
func eventText(e kv.Event) string {
	var b strings.Builder
	b.WriteString(e.Component)
	b.WriteByte(' ')
	b.WriteString(e.Message)
	for k, v := range e.Attrs {
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	return b.String()
}

// ---- API for the pages ----

func (s *Server) apiHealth(w http.ResponseWriter, r *http.Request) error {
	h, err := s.status.Health(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

func (s *Server) apiTree(w http.ResponseWriter, r *http.Request) error {
	dir, err := s.browse.SnapshotTree(r.Context(), r.PathValue("id"), cleanTreePath(r.URL.Query().Get("path")))
	if err != nil {
		return err
	}
	if dir.Entries == nil {
		dir.Entries = []TreeEntry{}
	}
	writeJSON(w, http.StatusOK, dir)
	return nil
}

// apiFile answers GET /api/v1/snapshots/{id}/file?path=P: one file of a
// snapshot, always as a download (the bytes are the owner's, but a browser
// must never run them as a page of the plug).
func (s *Server) apiFile(w http.ResponseWriter, r *http.Request) error {
	p := r.URL.Query().Get("path")
	if p == "" {
		return &apiError{code: http.StatusBadRequest, msg: "give the file's path (path)"}
	}
	f, err := s.browse.OpenSnapshotFile(r.Context(), r.PathValue("id"), cleanTreePath(p))
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // read only; closing frees the download slot
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.Name}))
	h.Set("Content-Length", strconv.FormatInt(f.Size, 10))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "no-store")
	if _, err := io.Copy(w, f); err != nil {
		s.log.Warn("download cut short", "path", p, "err", err)
	}
	return nil
}
