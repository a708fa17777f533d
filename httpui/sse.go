package httpui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/plug-net/plug/store"
)

// Server-sent events: the live log and the progress of a backup started
// from the page. A backup runs as a job that outlives the request that
// started it, so a page reloaded mid-way follows it again.

// sse writes one text/event-stream.
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func newSSE(w http.ResponseWriter) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream lives as long as the page; a writer without deadlines needs none
	return &sse{w: w, rc: rc}
}

// send writes one event; JSON never holds a raw newline, so data is one line.
func (e *sse) send(event, id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if id != "" {
		if _, err := fmt.Fprintf(e.w, "id: %s\n", id); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", event, b); err != nil {
		return err
	}
	return e.rc.Flush()
}

// ping keeps proxies and the browser from closing an idle stream.
func (e *sse) ping() error {
	if _, err := e.w.Write([]byte(": ping\n\n")); err != nil {
		return err
	}
	return e.rc.Flush()
}

const ssePing = 25 * time.Second

// apiEventStream answers GET /api/v1/events/stream?after=SEQ: every event
// after SEQ (or after the Last-Event-ID the browser sends when it
// reconnects), then each new one as it is logged, as "log" events.
func (s *Server) apiEventStream(w http.ResponseWriter, r *http.Request) error {
	from := r.Header.Get("Last-Event-ID")
	if from == "" {
		from = r.URL.Query().Get("after")
	}
	var after uint64
	if from != "" {
		n, err := strconv.ParseUint(from, 10, 64)
		if err != nil {
			return &apiError{code: http.StatusBadRequest, msg: "after must be an event sequence number"}
		}
		after = n
	} else {
		last, err := s.status.LastEvents(r.Context(), 1)
		if err != nil {
			return err
		}
		if len(last) > 0 {
			after = last[0].Seq
		}
	}
	out := newSSE(w)
	ping := time.NewTicker(ssePing)
	defer ping.Stop()
	for {
		changed := s.status.EventsChanged()
		ev, err := s.status.Events(r.Context(), after, 500)
		if err != nil {
			_ = out.send("error", "", err.Error()) // the last word: the stream ends either way
			return nil
		}
		for _, e := range ev {
			j := EventJSON{Seq: e.Seq, Time: e.Time, Level: e.Level, Component: e.Component, Message: e.Message, Attrs: e.Attrs}
			if err := out.send("log", strconv.FormatUint(e.Seq, 10), j); err != nil {
				return nil
			}
			after = e.Seq
		}
		if len(ev) == 500 {
			continue
		}
		select {
		case <-changed:
		case <-ping.C:
			if out.ping() != nil {
				return nil
			}
		case <-r.Context().Done():
			return nil
		}
	}
}

// JobsBackend runs backups that outlive the request that started them
// (store.BackupJobs): a page reloaded mid-way follows its backup again.
type JobsBackend interface {
	// Start starts a backup of paths; when one still runs it is returned
	// instead, with started false.
	Start(paths []string) (j *store.BackupJob, started bool, err error)
	// Get returns the job with the given ID, or nil.
	Get(id string) *store.BackupJob
	// Running returns the job that still runs, or nil.
	Running() *store.BackupJob
}

// apiStartBackup answers POST /api/v1/backups/jobs {"paths": [...]}: it
// starts a backup of the paths (none: the sources) and answers 202 with
// the job's ID; GET /api/v1/backups/jobs/{id}/events follows it.
func (s *Server) apiStartBackup(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Paths []string `json:"paths"`
	}
	if err := readJSON(w, r, 64<<10, &body); err != nil {
		return err
	}
	for _, p := range body.Paths {
		if !filepath.IsAbs(p) {
			return &apiError{code: http.StatusBadRequest, msg: "paths must be absolute: " + p}
		}
	}
	if len(body.Paths) == 0 {
		src, err := s.backups.Sources(r.Context())
		if err != nil {
			return err
		}
		if len(src) == 0 {
			return &apiError{code: http.StatusBadRequest, msg: "there are no folders to back up: add one to the sources first"}
		}
		body.Paths = src
	}
	j, started, err := s.jobs.Start(body.Paths)
	if err != nil {
		return withStatus(err, http.StatusInternalServerError)
	}
	if !started {
		return &apiError{code: http.StatusConflict, msg: "a backup started from this page still runs (job " + j.ID + ")"}
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"id": j.ID, "paths": j.Paths})
	return nil
}

// apiBackupEvents answers GET /api/v1/backups/jobs/{id}/events: a stream
// of "progress" and "warning" events, then one "result" or "error".
func (s *Server) apiBackupEvents(w http.ResponseWriter, r *http.Request) error {
	j := s.jobs.Get(r.PathValue("id"))
	if j == nil {
		return &apiError{code: http.StatusNotFound, msg: "no such backup job (the plug restarted, or it is long done)"}
	}
	out := newSSE(w)
	sentWarn, sentVersion := 0, 0
	th := throttle{d: 200 * time.Millisecond}
	ping := time.NewTicker(ssePing)
	defer ping.Stop()
	for {
		st, changed := j.State()
		for _, wn := range st.Warnings[sentWarn:] {
			if out.send("warning", "", wn) != nil {
				return nil
			}
			sentWarn++
		}
		prog, version := st.Progress, st.Version
		if prog != nil && version != sentVersion && (st.Done || prog.Phase == "done" || th.ok()) {
			if out.send("progress", "", prog) != nil {
				return nil
			}
			sentVersion = version
		}
		if st.Done {
			if st.Err != nil {
				_ = out.send("error", "", st.Err.Error()) // the last word: the stream ends either way
			} else {
				_ = out.send("result", "", ResultOf(st.Snapshot)) // as above
			}
			return nil
		}
		var later <-chan time.Time
		if prog != nil && version != sentVersion {
			later = time.After(200 * time.Millisecond) // the throttled update
		}
		select {
		case <-changed:
		case <-later:
		case <-ping.C:
			if out.ping() != nil {
				return nil
			}
		case <-r.Context().Done():
			return nil
		}
	}
}

// apiCancelBackup answers DELETE /api/v1/backups/jobs/{id}.
func (s *Server) apiCancelBackup(w http.ResponseWriter, r *http.Request) error {
	j := s.jobs.Get(r.PathValue("id"))
	if j == nil {
		return &apiError{code: http.StatusNotFound, msg: "no such backup job"}
	}
	j.Cancel()
	writeJSON(w, http.StatusOK, map[string]string{"cancelled": j.ID})
	return nil
}
