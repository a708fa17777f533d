package store

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/plug-net/plug/crypto/cryptotest"
	"github.com/plug-net/plug/store/catalog"
	"github.com/plug-net/plug/store/check"
	"github.com/plug-net/plug/store/restorer"
)

// waitWaiters returns once n jobs wait for the lock.
func waitWaiters(t *testing.T, l *jobLock, n int) {
	t.Helper()
	for l.waiters() != n {
		if t.Context().Err() != nil {
			t.Fatalf("no %d jobs came to wait", n)
		}
		runtime.Gosched()
	}
}

// A job is refused while another job runs, as before.
func TestJobLockRefusesAJobWhileAJobRuns(t *testing.T) {
	var l jobLock
	unlock, err := l.lock(t.Context(), "backup")
	mustOK(t, err)
	for _, take := range []func() error{
		func() error { _, err := l.lock(t.Context(), "forget"); return err },
		func() error { _, err := l.lockStep("re-coding (pack 1 of 3)"); return err },
	} {
		if err := take(); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "a backup is running") {
			t.Fatalf("while a backup runs: %v, want busy: a backup is running", err)
		}
	}
	if got := l.job(); got != "backup" {
		t.Fatalf("job() = %q, want backup", got)
	}
	unlock()
	unlock() // twice is harmless
	if got := l.job(); got != "" {
		t.Fatalf("job() = %q after the end, want nothing", got)
	}
	unlock, err = l.lock(t.Context(), "forget")
	mustOK(t, err)
	unlock()
}

// A job that finds a step waits for it, and the next step does not start
// before the job has run.
func TestJobLockStepYieldsToAJob(t *testing.T) {
	var l jobLock
	endStep, err := l.lockStep("re-coding (pack 1 of 3)")
	mustOK(t, err)
	type taken struct {
		unlock func()
		err    error
	}
	got := make(chan taken, 1)
	go func() {
		u, err := l.lock(context.Background(), "backup")
		got <- taken{u, err}
	}()
	waitWaiters(t, &l, 1)
	if l.job() != "re-coding (pack 1 of 3)" {
		t.Fatalf("job() = %q while the step runs", l.job())
	}
	endStep()
	// Whether or not the backup has taken the lock yet, the next step
	// must not start before it.
	if _, err := l.lockStep("re-coding (pack 2 of 3)"); !errors.Is(err, ErrBusy) {
		t.Fatalf("the next step started before the waiting backup: %v", err)
	}
	b := <-got
	mustOK(t, b.err)
	if l.job() != "backup" {
		t.Fatalf("job() = %q, want backup", l.job())
	}
	if _, err := l.lockStep("re-coding (pack 2 of 3)"); !errors.Is(err, ErrBusy) {
		t.Fatalf("a step started while the backup ran: %v", err)
	}
	b.unlock()
	endStep, err = l.lockStep("re-coding (pack 2 of 3)")
	mustOK(t, err)
	endStep()
}

// A job waiting for a step stops waiting when its context ends, and says
// what it waited for.
func TestJobLockWaitEndsWithTheContext(t *testing.T) {
	var l jobLock
	endStep, err := l.lockStep("re-coding (pack 1 of 3)")
	mustOK(t, err)
	defer endStep()
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := l.lock(ctx, "backup")
		errc <- err
	}()
	waitWaiters(t, &l, 1)
	cancel()
	err = <-errc
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "waiting for the re-coding (pack 1 of 3) to end") {
		t.Fatalf("cancelled while waiting: %v", err)
	}
	if l.waiters() != 0 {
		t.Fatalf("%d waiters left after the job gave up", l.waiters())
	}
	endStep()
	// With nobody waiting, steps go on.
	next, err := l.lockStep("re-coding (pack 2 of 3)")
	mustOK(t, err)
	next()
}

// TestBackupDuringRecode: a backup asked for while the plug re-codes its
// packs runs (it is not refused as busy); the re-coding stops for it and,
// run again, finishes; everything restores and verifies.
func TestBackupDuringRecode(t *testing.T) {
	net := newMemNet(6)
	r := newTestRepo(t, cryptotest.FixedKeys(t), net)
	ctx := t.Context()
	mustOK(t, func() error { _, err := r.SetRedundancy(1); return err }())
	src := t.TempDir()
	for i := range 6 {
		makeTree(t, filepath.Join(src, string(rune('a'+i))))
	}
	if _, err := r.Backup(ctx, []string{src}, BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	mustOK(t, func() error { _, err := r.SetRedundancy(2); return err }())
	type recoded struct {
		rep RecodeReport
		err error
	}
	done := make(chan recoded, 1)
	go func() {
		rep, err := r.Recode(ctx)
		done <- recoded{rep, err}
	}()
	for !strings.HasPrefix(r.Job(), "re-coding") {
		select {
		case rc := <-done:
			t.Fatalf("the re-coding ended before its first pack was seen: %+v %v", rc.rep, rc.err)
		default:
			runtime.Gosched()
		}
	}
	makeTree(t, filepath.Join(src, "new"))
	snap, err := r.Backup(ctx, []string{src}, BackupOptions{})
	if err != nil {
		t.Fatalf("a backup during a re-coding: %v", err)
	}
	rc := <-done
	switch {
	case errors.Is(rc.err, ErrBusy):
		if rc.rep.Left == 0 {
			t.Fatalf("the re-coding stopped for the backup with no pack left: %+v", rc.rep)
		}
		t.Logf("the re-coding stopped for the backup after %d packs, %d left", rc.rep.Packs, rc.rep.Left)
	case rc.err != nil:
		t.Fatalf("re-coding: %v", rc.err)
	}
	if _, err := r.Recode(ctx); err != nil {
		t.Fatalf("the re-coding run again: %v", err)
	}
	if r.NeedsRecode() {
		t.Fatal("packs are left in the old shape")
	}
	mustOK(t, r.cat.Packs(func(p catalog.PackRecord) error {
		if p.Shape.K != 4 || p.Shape.M != 2 {
			t.Errorf("pack %s is %d+%d, want 4+2", p.ID.Short(), p.Shape.K, p.Shape.M)
		}
		return nil
	}))
	v, err := r.Verify(ctx, check.Options{ReadData: true})
	if err != nil || !v.OK {
		t.Fatalf("verify: %+v %v", v, err)
	}
	o := t.TempDir()
	if _, err := r.Restore(ctx, snap, o, restorer.Options{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, filepath.Join(o, src))
}
