package httpui

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/plug-net/plug/store"
	"github.com/plug-net/plug/store/archiver"
	"github.com/plug-net/plug/store/check"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/repair"
	"github.com/plug-net/plug/store/restorer"
)

// BackupResult is the contract's answer of "plug backup --json".
type BackupResult struct {
	SnapshotID string  `json:"snapshot_id"`
	Files      int64   `json:"files"`
	Bytes      int64   `json:"bytes"`
	NewBytes   int64   `json:"new_bytes"`
	DurationS  float64 `json:"duration_s"`
	Errors     int64   `json:"errors"`
}

// ResultOf is the answer for the snapshot a backup made.
func ResultOf(snap data.Snapshot) BackupResult {
	return BackupResult{SnapshotID: snap.ID.String(), Files: snap.Files, Bytes: snap.Bytes, NewBytes: snap.NewBytes, DurationS: snap.Duration, Errors: snap.Errors}
}

// InfoOf is a snapshot as the API lists it.
func InfoOf(s data.Snapshot) SnapshotInfo {
	return SnapshotInfo{ID: s.ID.String(), Time: s.Time, Paths: s.Paths, Files: s.Files, Bytes: s.Bytes, NewBytes: s.NewBytes, Host: s.Host}
}

// SnapshotInfo is one snapshot as "plug snapshots --json" lists it.
type SnapshotInfo struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	Paths    []string  `json:"paths"`
	Files    int64     `json:"files"`
	Bytes    int64     `json:"bytes"`
	NewBytes int64     `json:"new_bytes"`
	Host     string    `json:"host"`
}

// RestoreRequest asks for a restore.
type RestoreRequest struct {
	Snapshot  string `json:"snapshot"` // ID, prefix or "latest"
	To        string `json:"to"`       // absolute directory
	Path      string `json:"path,omitempty"`
	Overwrite bool   `json:"overwrite,omitempty"`
}

// BackupsBackend is the part of the plug that backs up and restores.
type BackupsBackend interface {
	// Backup backs up paths (absolute), telling progress and warnings.
	Backup(ctx context.Context, paths []string, progress func(archiver.Progress), warn func(path string, err error)) (BackupResult, error)
	Snapshots(ctx context.Context) ([]SnapshotInfo, error)
	Restore(ctx context.Context, req RestoreRequest, progress func(restorer.Progress)) (restorer.Stats, error)
	Verify(ctx context.Context, readData bool, progress func(done, total int)) (check.Report, error)
	Repair(ctx context.Context) (repair.Report, error)
	Forget(ctx context.Context, keepLast int, prune bool) (store.ForgetReport, error)
	Sources(ctx context.Context) ([]string, error)
	AddSource(ctx context.Context, path string) ([]string, error)
	RemoveSource(ctx context.Context, path string) ([]string, error)
	// Redundancy tells how many friends the owner can lose and what it
	// costs; SetRedundancy sets the target (0: the default).
	Redundancy(ctx context.Context) (store.Redundancy, error)
	SetRedundancy(ctx context.Context, target int) (store.Redundancy, error)
}

func (s *Server) backupRoutes() {
	s.mux.Handle("POST /api/v1/backups", s.api(s.apiBackup))
	s.mux.Handle("GET /api/v1/snapshots", s.api(s.apiSnapshots))
	s.mux.Handle("POST /api/v1/restore", s.api(s.apiRestore))
	s.mux.Handle("POST /api/v1/verify", s.api(s.apiVerify))
	s.mux.Handle("POST /api/v1/repair", s.api(s.apiRepair))
	s.mux.Handle("POST /api/v1/forget", s.api(s.apiForget))
	s.mux.Handle("GET /api/v1/sources", s.api(s.apiSources))
	s.mux.Handle("POST /api/v1/sources", s.api(s.apiSourceChange(true)))
	s.mux.Handle("DELETE /api/v1/sources", s.api(s.apiSourceChange(false)))
	s.mux.Handle("GET /api/v1/redundancy", s.api(s.apiRedundancy))
	s.mux.Handle("PUT /api/v1/redundancy", s.api(s.apiSetRedundancy))
}

// apiRedundancy answers GET /api/v1/redundancy: {"target", "auto", "k",
// "m", "friends", "overhead"}.
func (s *Server) apiRedundancy(w http.ResponseWriter, r *http.Request) error {
	red, err := s.backups.Redundancy(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, red)
	return nil
}

// apiSetRedundancy answers PUT /api/v1/redundancy {"target": N} (0 or
// "auto": the default) with the new redundancy.
func (s *Server) apiSetRedundancy(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Target json.RawMessage `json:"target"`
	}
	if err := readJSON(w, r, 4096, &body); err != nil {
		return err
	}
	n := 0
	if t := strings.TrimSpace(string(body.Target)); t != `"auto"` {
		if err := json.Unmarshal(body.Target, &n); err != nil || n < 0 {
			return &apiError{code: http.StatusBadRequest, msg: `target must be how many friends you can lose (1, 2, …) or "auto"`}
		}
	}
	red, err := s.backups.SetRedundancy(r.Context(), n)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, red)
	return nil
}

// Stream is a long operation's answer: newline-delimited JSON objects, each
// with one key: "progress", "warning", then "result" or "error" last.
type Stream struct {
	mu sync.Mutex // warnings come from the backup's workers at once
	w  http.ResponseWriter
	rc *http.ResponseController
}

func newStream(w http.ResponseWriter) *Stream {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	return &Stream{w: w, rc: http.NewResponseController(w)}
}

func (st *Stream) send(key string, v any) {
	b, err := json.Marshal(map[string]any{key: v})
	if err != nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.w.Write(append(b, '\n'))
	// A client that left ends the operation through the request's context;
	// the lines written meanwhile go nowhere.
	_ = st.rc.Flush()
}

// finish sends the result or the error.
func (st *Stream) finish(v any, err error) {
	if err != nil {
		st.send("error", err.Error())
		return
	}
	st.send("result", v)
}

// throttle calls f at most every d (and always for the last call, through
// flush).
type throttle struct {
	mu   sync.Mutex
	last time.Time
	d    time.Duration
}

func (t *throttle) ok() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if time.Since(t.last) < t.d {
		return false
	}
	t.last = time.Now()
	return true
}

// wantsStream reports whether the client asked for streamed progress.
func wantsStream(r *http.Request) bool { return r.URL.Query().Get("stream") == "1" }

func (s *Server) apiBackup(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Paths []string `json:"paths"`
	}
	if err := readJSON(w, r, 64<<10, &body); err != nil {
		return err
	}
	if len(body.Paths) == 0 {
		return &apiError{code: http.StatusBadRequest, msg: "give at least one path to back up"}
	}
	for _, p := range body.Paths {
		if !filepath.IsAbs(p) {
			return &apiError{code: http.StatusBadRequest, msg: "paths must be absolute: " + p}
		}
	}
	if !wantsStream(r) {
		res, err := s.backups.Backup(r.Context(), body.Paths, nil, nil)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, res)
		return nil
	}
	st := newStream(w)
	th := &throttle{d: 200 * time.Millisecond}
	res, err := s.backups.Backup(r.Context(), body.Paths,
		func(p archiver.Progress) {
			if p.Phase == "done" || th.ok() {
				st.send("progress", p)
			}
		},
		func(path string, err error) {
			st.send("warning", map[string]string{"path": path, "error": err.Error()})
		})
	st.finish(res, err)
	return nil
}

func (s *Server) apiSnapshots(w http.ResponseWriter, r *http.Request) error {
	snaps, err := s.backups.Snapshots(r.Context())
	if err != nil {
		return err
	}
	if snaps == nil {
		snaps = []SnapshotInfo{}
	}
	writeJSON(w, http.StatusOK, snaps)
	return nil
}

func (s *Server) apiRestore(w http.ResponseWriter, r *http.Request) error {
	var req RestoreRequest
	if err := readJSON(w, r, 64<<10, &req); err != nil {
		return err
	}
	if req.Snapshot == "" || !filepath.IsAbs(req.To) {
		return &apiError{code: http.StatusBadRequest, msg: "give a snapshot and an absolute destination directory"}
	}
	if !wantsStream(r) {
		res, err := s.backups.Restore(r.Context(), req, nil)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, res)
		return nil
	}
	st := newStream(w)
	th := &throttle{d: 200 * time.Millisecond}
	res, err := s.backups.Restore(r.Context(), req, func(p restorer.Progress) {
		if th.ok() {
			st.send("progress", p)
		}
	})
	st.finish(res, err)
	return nil
}

func (s *Server) apiVerify(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		ReadData bool `json:"read_data"`
	}
	if err := readJSON(w, r, 1024, &body); err != nil {
		return err
	}
	st := newStream(w)
	th := &throttle{d: 200 * time.Millisecond}
	res, err := s.backups.Verify(r.Context(), body.ReadData, func(done, total int) {
		if th.ok() {
			st.send("progress", map[string]int{"done": done, "total": total})
		}
	})
	st.finish(res, err)
	return nil
}

func (s *Server) apiRepair(w http.ResponseWriter, r *http.Request) error {
	res, err := s.backups.Repair(r.Context())
	if err != nil && len(res.Replaced) == 0 {
		return err
	}
	if err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"report": res, "error": err.Error()})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"report": res})
	return nil
}

func (s *Server) apiForget(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		KeepLast int  `json:"keep_last"`
		Prune    bool `json:"prune"`
	}
	if err := readJSON(w, r, 1024, &body); err != nil {
		return err
	}
	if body.KeepLast < 1 {
		return &apiError{code: http.StatusBadRequest, msg: "keep_last must be at least 1"}
	}
	res, err := s.backups.Forget(r.Context(), body.KeepLast, body.Prune)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) apiSources(w http.ResponseWriter, r *http.Request) error {
	src, err := s.backups.Sources(r.Context())
	if err != nil {
		return err
	}
	if src == nil {
		src = []string{}
	}
	writeJSON(w, http.StatusOK, src)
	return nil
}

func (s *Server) apiSourceChange(add bool) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		var body struct {
			Path string `json:"path"`
		}
		if err := readJSON(w, r, 8192, &body); err != nil {
			return err
		}
		if !filepath.IsAbs(body.Path) {
			return &apiError{code: http.StatusBadRequest, msg: "the folder must be an absolute path"}
		}
		var src []string
		var err error
		if add {
			src, err = s.backups.AddSource(r.Context(), body.Path)
		} else {
			src, err = s.backups.RemoveSource(r.Context(), body.Path)
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, src)
		return nil
	}
}
