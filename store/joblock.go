package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrBusy is returned when another backup, forget, repair or recovery is
// running.
var ErrBusy = errors.New("busy")

// jobLock lets one backup, forget, repair or recovery run at a time. A
// job is refused at once (ErrBusy) while another runs, with one exception:
// background work cut into short steps (a re-coding takes it once per
// pack) yields. A job that finds such a step waits for it to end, and no
// further step starts while a job waits, so a backup the owner asks for is
// never refused because the plug is re-cutting a pack; the step's caller
// gets ErrBusy and goes on later.
type jobLock struct {
	mu      sync.Mutex
	held    bool
	what    string        // what holds the lock, for "busy" errors and status
	step    bool          // the holder is a step that yields
	waiting int           // jobs waiting for a step to end
	freed   chan struct{} // closed when the holder lets go
}

// lock takes the lock for the job what. While a step holds it, lock waits
// for the step's end (or ctx); while a job does, it fails with ErrBusy.
func (l *jobLock) lock(ctx context.Context, what string) (func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.held {
		if !l.step {
			return nil, l.busy()
		}
		freed, cur := l.freed, l.what
		l.waiting++
		l.mu.Unlock()
		var err error
		select {
		case <-freed:
		case <-ctx.Done():
			err = context.Cause(ctx)
		}
		l.mu.Lock()
		l.waiting--
		if err != nil {
			return nil, fmt.Errorf("waiting for the %s to end: %w", cur, err)
		}
	}
	return l.take(what, false), nil
}

// lockStep takes the lock for one step of background work, or fails at
// once with ErrBusy while anything holds it or a job waits for it.
func (l *jobLock) lockStep(what string) (func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held {
		return nil, l.busy()
	}
	if l.waiting > 0 {
		return nil, fmt.Errorf("%w: a job waits to run; the %s goes on after it", ErrBusy, what)
	}
	return l.take(what, true), nil
}

// take takes the free lock; l.mu is held.
func (l *jobLock) take(what string, step bool) func() {
	l.held, l.what, l.step = true, what, step
	freed := make(chan struct{})
	l.freed = freed
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.held, l.what, l.step = false, "", false
			close(freed)
		})
	}
}

// busy is the error for a lock held; l.mu is held.
func (l *jobLock) busy() error {
	return fmt.Errorf("%w: a %s is running; try again when it is done", ErrBusy, l.what)
}

// job returns what holds the lock now, or "".
func (l *jobLock) job() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.what
}

// waiters returns how many jobs wait for a step to end.
func (l *jobLock) waiters() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waiting
}
