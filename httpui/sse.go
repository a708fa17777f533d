package httpui

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/plug-net/plug/store/archiver"
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
	rc.SetWriteDeadline(time.Time{}) // a stream lives as long as the page
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
		last, err := s.backend.LastEvents(r.Context(), 1)
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
		changed := s.backend.EventsChanged()
		ev, err := s.backend.Events(r.Context(), after, 500)
		if err != nil {
			out.send("error", "", err.Error())
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

// job is a backup started from the page.
type job struct {
	id     string
	paths  []string
	cancel context.CancelFunc

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced at every change
	progress *archiver.Progress
	version  int // of progress
	warnings []map[string]string
	dropped  int // warnings beyond maxJobWarnings
	done     bool
	result   BackupResult
	err      string
}

const (
	maxJobWarnings = 200
	jobsKept       = 8
)

func (j *job) update(f func()) {
	j.mu.Lock()
	f()
	close(j.changed)
	j.changed = make(chan struct{})
	j.mu.Unlock()
}

// jobs are the backups started from the page, newest last.
type jobs struct {
	mu     sync.Mutex
	list   []*job
	closed bool
	wg     sync.WaitGroup // running jobs
}

// Close cancels the backups started from the page and waits for them to
// stop. Call it before the backend closes.
func (s *Server) Close() error {
	s.jobs.mu.Lock()
	s.jobs.closed = true
	for _, j := range s.jobs.list {
		j.cancel()
	}
	s.jobs.mu.Unlock()
	s.jobs.wg.Wait()
	return nil
}

// errClosing is answered when a job is started while the plug stops.
var errClosing = &apiError{code: http.StatusServiceUnavailable, msg: "the plug is stopping"}

// start records j as running, unless one still runs (returned) or the
// server is closing; the caller runs j and calls wg.Done when it ends.
func (js *jobs) start(j *job) (*job, error) {
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.closed {
		return nil, errClosing
	}
	if r := js.runningLocked(); r != nil {
		return r, nil
	}
	js.list = append(js.list, j)
	if len(js.list) > jobsKept {
		js.list = js.list[len(js.list)-jobsKept:]
	}
	js.wg.Add(1)
	return j, nil
}

func (js *jobs) get(id string) *job {
	js.mu.Lock()
	defer js.mu.Unlock()
	for _, j := range js.list {
		if j.id == id {
			return j
		}
	}
	return nil
}

// running returns the job that still runs, if any.
func (js *jobs) running() *job {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.runningLocked()
}

func (js *jobs) runningLocked() *job {
	for _, j := range js.list {
		j.mu.Lock()
		done := j.done
		j.mu.Unlock()
		if !done {
			return j
		}
	}
	return nil
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
		src, err := s.backend.Sources(r.Context())
		if err != nil {
			return err
		}
		if len(src) == 0 {
			return &apiError{code: http.StatusBadRequest, msg: "there are no folders to back up: add one to the sources first"}
		}
		body.Paths = src
	}
	var b [8]byte
	rand.Read(b[:])
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	j := &job{id: hex.EncodeToString(b[:]), paths: body.Paths, cancel: cancel, changed: make(chan struct{})}
	if got, err := s.jobs.start(j); err != nil || got != j {
		cancel()
		if err != nil {
			return err
		}
		return &apiError{code: http.StatusConflict, msg: "a backup started from this page still runs (job " + got.id + ")"}
	}
	go func() {
		defer s.jobs.wg.Done()
		defer cancel()
		res, err := s.backend.Backup(ctx, j.paths,
			func(p archiver.Progress) { j.update(func() { j.progress = &p; j.version++ }) },
			func(path string, err error) {
				j.update(func() {
					if len(j.warnings) < maxJobWarnings {
						j.warnings = append(j.warnings, map[string]string{"path": path, "error": err.Error()})
					} else {
						j.dropped++
					}
				})
			})
		j.update(func() {
			j.done, j.result = true, res
			if err != nil {
				j.err = err.Error()
			}
		})
	}()
	writeJSON(w, http.StatusAccepted, map[string]any{"id": j.id, "paths": j.paths})
	return nil
}

// apiBackupEvents answers GET /api/v1/backups/jobs/{id}/events: a stream
// of "progress" and "warning" events, then one "result" or "error".
func (s *Server) apiBackupEvents(w http.ResponseWriter, r *http.Request) error {
	j := s.jobs.get(r.PathValue("id"))
	if j == nil {
		return &apiError{code: http.StatusNotFound, msg: "no such backup job (the plug restarted, or it is long done)"}
	}
	out := newSSE(w)
	sentWarn, sentVersion := 0, 0
	th := throttle{d: 200 * time.Millisecond}
	ping := time.NewTicker(ssePing)
	defer ping.Stop()
	for {
		j.mu.Lock()
		changed := j.changed
		warns := j.warnings[sentWarn:]
		prog, version := j.progress, j.version
		done, res, errText := j.done, j.result, j.err
		j.mu.Unlock()
		for _, wn := range warns {
			if out.send("warning", "", wn) != nil {
				return nil
			}
			sentWarn++
		}
		if prog != nil && version != sentVersion && (done || prog.Phase == "done" || th.ok()) {
			if out.send("progress", "", prog) != nil {
				return nil
			}
			sentVersion = version
		}
		if done {
			if errText != "" {
				out.send("error", "", errText)
			} else {
				out.send("result", "", res)
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
	j := s.jobs.get(r.PathValue("id"))
	if j == nil {
		return &apiError{code: http.StatusNotFound, msg: "no such backup job"}
	}
	j.cancel()
	writeJSON(w, http.StatusOK, map[string]string{"cancelled": j.id})
	return nil
}
