package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"

	"github.com/plug-net/plug/store/archiver"
	"github.com/plug-net/plug/store/data"
)

// Limits of the backup jobs.
const (
	maxJobWarnings = 200
	jobsKept       = 8
)

// ErrClosing is returned when a job is started while the plug stops.
var ErrClosing = errors.New("the plug is stopping")

// BackupJobs are the backups started to run on their own (from a web page):
// each has an ID, and its progress, warnings and result stay for a page
// that comes back later; it can be cancelled. One runs at a time.
type BackupJobs struct {
	run BackupFunc

	mu     sync.Mutex
	list   []*BackupJob // newest last
	closed bool
	wg     sync.WaitGroup // running jobs
}

// BackupFunc runs one backup: Repo.BackupNow.
type BackupFunc func(ctx context.Context, paths []string, opt BackupOptions) (data.Snapshot, error)

// NewBackupJobs returns jobs that run backups with run (Repo.BackupNow).
func NewBackupJobs(run BackupFunc) *BackupJobs { return &BackupJobs{run: run} }

// BackupJob is one backup started on its own.
type BackupJob struct {
	ID     string
	Paths  []string
	cancel context.CancelFunc

	mu      sync.Mutex
	changed chan struct{} // closed and replaced at every change
	state   JobState
}

// JobState is what a job has done so far.
type JobState struct {
	Progress *archiver.Progress
	Version  int // of Progress: it moves at every update
	Warnings []JobWarning
	Dropped  int // warnings beyond the first 200
	Done     bool
	Snapshot data.Snapshot
	Err      error
}

// JobWarning is a file the backup skipped.
type JobWarning struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// State returns what the job has done so far, and a channel closed at its
// next change.
func (j *BackupJob) State() (JobState, <-chan struct{}) {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := j.state
	st.Warnings = st.Warnings[:len(st.Warnings):len(st.Warnings)]
	return st, j.changed
}

// Cancel stops the job.
func (j *BackupJob) Cancel() { j.cancel() }

func (j *BackupJob) update(f func(*JobState)) {
	j.mu.Lock()
	f(&j.state)
	close(j.changed)
	j.changed = make(chan struct{})
	j.mu.Unlock()
}

// Start starts a backup of paths. When one still runs it is returned
// instead, with started false.
func (js *BackupJobs) Start(paths []string) (j *BackupJob, started bool, err error) {
	var b [8]byte
	rand.Read(b[:])
	ctx, cancel := context.WithCancel(context.Background())
	j = &BackupJob{ID: hex.EncodeToString(b[:]), Paths: paths, cancel: cancel, changed: make(chan struct{})}
	js.mu.Lock()
	if js.closed {
		js.mu.Unlock()
		cancel()
		return nil, false, ErrClosing
	}
	if r := js.runningLocked(); r != nil {
		js.mu.Unlock()
		cancel()
		return r, false, nil
	}
	js.list = append(js.list, j)
	if len(js.list) > jobsKept {
		js.list = js.list[len(js.list)-jobsKept:]
	}
	js.wg.Add(1)
	js.mu.Unlock()
	go js.runJob(ctx, j)
	return j, true, nil
}

func (js *BackupJobs) runJob(ctx context.Context, j *BackupJob) {
	defer js.wg.Done()
	defer j.cancel()
	snap, err := js.run(ctx, j.Paths, BackupOptions{
		Progress: func(p archiver.Progress) { j.update(func(s *JobState) { s.Progress = &p; s.Version++ }) },
		Warn: func(path string, err error) {
			j.update(func(s *JobState) {
				if len(s.Warnings) < maxJobWarnings {
					s.Warnings = append(s.Warnings, JobWarning{Path: path, Error: err.Error()})
				} else {
					s.Dropped++
				}
			})
		},
	})
	j.update(func(s *JobState) { s.Done, s.Snapshot, s.Err = true, snap, err })
}

// Get returns the job with the given ID, or nil.
func (js *BackupJobs) Get(id string) *BackupJob {
	js.mu.Lock()
	defer js.mu.Unlock()
	for _, j := range js.list {
		if j.ID == id {
			return j
		}
	}
	return nil
}

// Running returns the job that still runs, or nil.
func (js *BackupJobs) Running() *BackupJob {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.runningLocked()
}

func (js *BackupJobs) runningLocked() *BackupJob {
	for _, j := range js.list {
		j.mu.Lock()
		done := j.state.Done
		j.mu.Unlock()
		if !done {
			return j
		}
	}
	return nil
}

// Close cancels the running job and waits for it to stop; later Starts
// fail with ErrClosing. Call it before the store closes.
func (js *BackupJobs) Close() {
	js.mu.Lock()
	js.closed = true
	for _, j := range js.list {
		j.cancel()
	}
	js.mu.Unlock()
	js.wg.Wait()
}
