package store

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plug-net/plug/crypto/cryptotest"
	"github.com/plug-net/plug/store/restorer"
)

// TestRestoreMemoryBounded: a restore does not hold a plan of every file
// in memory. While 60,000 tiny files are restored, what the restorer
// itself allocated and still holds (its plan, the places of chunks, paths;
// not the pack buffers, one per pack in flight) stays under 8 MiB at every
// collection: the plan is made a part at a time (5 MiB here). A plan of
// every file held 14.5 MiB for these 60,000, and would hold about 250 MB
// for a million.
func TestRestoreMemoryBounded(t *testing.T) {
	const files = 60_000 // fewer would not tell: a whole plan of 30,000 held about 7 MiB
	if testing.Short() {
		t.Skip("-short: 60,000 files backed up and restored take minutes under emulation")
	}
	r := newTestRepo(t, cryptotest.FixedKeys(t), newMemNet(4))
	src := t.TempDir()
	for i := range files {
		dir := filepath.Join(src, fmt.Sprintf("d%03d", i/1000))
		if i%1000 == 0 {
			mustOK(t, os.MkdirAll(dir, 0o755))
		}
		n := 1 + i*37%128 // tiny files: many files, few packs
		mustOK(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", i%1000)), randBytes(uint64(i), n), 0o644))
	}
	snap, err := r.Backup(t.Context(), []string{src}, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Every allocation is recorded from here on, with its stack.
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = 1
	runtime.GC()
	out := t.TempDir()
	stop := restorerPeak()
	st, err := r.Restore(t.Context(), snap, out, restorer.Options{})
	held := stop()
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != files {
		t.Fatalf("restored %d files, want %d", st.Files, files)
	}
	t.Logf("restoring %d files, the restorer held at most %.1f MiB (%.0f bytes a file)", files, float64(held)/(1<<20), float64(held)/float64(files))
	if held > 8<<20 {
		t.Fatalf("the restorer held %.1f MiB while restoring %d tiny files; want ≤ 8 MiB, whatever the number of files",
			float64(held)/(1<<20), files)
	}
	sameTree(t, src, filepath.Join(out, src))
}

// restorerPeak collects garbage every 50 ms until stop is called, and
// returns the most that allocations made under the restorer (and not in
// the fetcher or the sealer, which make the pack buffers) held at a
// collection. It needs runtime.MemProfileRate 1 to count every byte.
func restorerPeak() (stop func() int64) {
	var peak int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.GC()
			runtime.GC() // the profile is a cycle behind
			peak = max(peak, restorerHeld())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() int64 { close(done); wg.Wait(); return peak }
}

// restorerHeld sums the heap profile's bytes in use that were allocated
// with the restorer on the stack, not below the fetcher or the sealer.
func restorerHeld() int64 {
	n, _ := runtime.MemProfile(nil, true)
	var recs []runtime.MemProfileRecord
	for {
		recs = make([]runtime.MemProfileRecord, n+100)
		var ok bool
		if n, ok = runtime.MemProfile(recs, true); ok {
			recs = recs[:n]
			break
		}
	}
	var held int64
	for _, r := range recs {
		mine, packs := false, false
		frames := runtime.CallersFrames(r.Stack())
		for {
			f, more := frames.Next()
			switch {
			case strings.Contains(f.Function, "/store/fetch.") || strings.Contains(f.Function, "/store/seal."):
				packs = true
			case strings.Contains(f.Function, "/store/restorer."):
				mine = true
			}
			if !more {
				break
			}
		}
		if mine && !packs {
			held += r.InUseBytes()
		}
	}
	return held
}
