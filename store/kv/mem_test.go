package kv

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// heapBudget is the most Go heap an idle database may hold. The daemon runs
// on 512 MiB devices next to libp2p, the web UI and backups.
const heapBudget = 48 << 20

// TestIdleHeap writes and reads 50,000 small records, then measures the Go
// heap in use with the database open and idle. With badger's defaults
// (64 MiB memtables, 256 MiB block cache) it is far over budget, as the
// "badger defaults" case shows.
func TestIdleHeap(t *testing.T) {
	t.Run("ours", func(t *testing.T) {
		heap := idleHeap(t, Options{})
		t.Logf("idle heap in use: %.1f MiB (budget %d MiB); %s", mib(heap), heapBudget>>20, vmRSS())
		if heap > heapBudget {
			t.Errorf("idle database holds %.1f MiB of Go heap, budget %d MiB", mib(heap), heapBudget>>20)
		}
	})
	t.Run("badger defaults", func(t *testing.T) {
		if testing.Short() {
			t.Skip("needs ~150 MiB")
		}
		// What a database tuned like badger's DefaultOptions would hold:
		// this check must be able to fail.
		heap := idleHeap(t, Options{MemTableSize: 64 << 20, BlockCacheSize: 256 << 20, IndexCacheSize: -1})
		t.Logf("idle heap in use with badger's defaults: %.1f MiB", mib(heap))
		if heap <= heapBudget {
			t.Errorf("badger's defaults fit the %d MiB budget (%.1f MiB): the budget check proves nothing", heapBudget>>20, mib(heap))
		}
	})
}

// idleHeap opens a database with opt, loads and reads 50,000 records, and
// returns the Go heap in use after a full collection, the database open.
func idleHeap(t *testing.T, opt Options) uint64 {
	db, err := Open(filepath.Join(t.TempDir(), "db"), opt)
	if err != nil {
		t.Fatal(err)
	}
	defer closeDB(t, db)

	const n = 50_000
	err = db.Batch(func(b *Batch) error {
		for i := range n {
			if err := b.Put(Chunks, fmt.Appendf(nil, "chunk-%08d-%s", i, strings.Repeat("k", 16)), make([]byte, 64)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 7 {
		if _, err := db.Get(Chunks, fmt.Appendf(nil, "chunk-%08d-%s", i, strings.Repeat("k", 16))); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := db.Count(Chunks, nil); err != nil || got != n {
		t.Fatalf("Count=%d, %v; want %d", got, err, n)
	}

	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// vmRSS returns the process's resident set size as /proc reports it.
func vmRSS() string {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "VmRSS unknown"
	}
	for line := range strings.Lines(string(status)) {
		if strings.HasPrefix(line, "VmRSS:") {
			return strings.Join(strings.Fields(line), " ")
		}
	}
	return "VmRSS unknown"
}

// TestValueLogLeavesTheResidentSet: badger writes and reads its value log
// through a shared memory map, so what a plug wrote stayed in its RSS (50
// of a restoring owner's 172 MiB). The database gives those pages back
// every trimEvery: after 40 MiB of values written (and read, while more are
// written) the value log's resident pages fall under 2 MiB, and every
// value reads back whole afterwards, the last ones not yet on disk
// included.
func TestValueLogLeavesTheResidentSet(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	val := func(i int) []byte {
		b := make([]byte, 64<<10) // over the value threshold: in the value log
		for j := range b {
			b[j] = byte(i*31 + j*7)
		}
		return b
	}
	const n = 640 // 40 MiB
	peak := 0
	for i := range n {
		if err := db.Put(Trees, fmt.Appendf(nil, "k%04d", i), val(i)); err != nil {
			t.Fatal(err)
		}
		if i%64 == 63 {
			if _, err := db.Get(Trees, fmt.Appendf(nil, "k%04d", i/2)); err != nil {
				t.Fatal(err)
			}
			peak = max(peak, mappedResident(t, dir, ".vlog"))
		}
	}
	t.Logf("value log resident at most %d KiB while 40 MiB were written", peak)
	deadline := time.Now().Add(5 * trimEvery)
	for mappedResident(t, dir, ".vlog") > 2<<10 {
		if time.Now().After(deadline) {
			t.Fatalf("the value log still has %d KiB resident %v after the writes (at most %d KiB while writing): its pages are not given back",
				mappedResident(t, dir, ".vlog"), 5*trimEvery, peak)
		}
		time.Sleep(trimEvery / 10) // polling /proc: the trim has no event to wait for
	}
	for i := range n {
		got, err := db.Get(Trees, fmt.Appendf(nil, "k%04d", i))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, val(i)) {
			t.Fatalf("value %d changed after its pages were given back", i)
		}
	}
}

// TestTablesLeaveTheResidentSet: tables are read with pread and written
// with write, never through their maps (a fault maps a whole large folio,
// so a plug with a million chunks carried 90 MiB of tables in its RSS);
// the memtables' logs are written through maps, and their pages must leave
// the resident set too. Every record reads back whole.
func TestTablesLeaveTheResidentSet(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	val := func(i int) []byte { return fmt.Appendf(nil, "%064d", i*7919) } // under the value threshold: in the tables
	const n, batch = 400_000, 10_000                                       // ~40 MB of records: tables at two levels
	peakTables, peakLogs := 0, 0
	for i := 0; i < n; i += batch {
		err := db.Batch(func(b *Batch) error {
			for j := i; j < i+batch; j++ {
				if err := b.Put(Chunks, fmt.Appendf(nil, "k%08d", j), val(j)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < i; j += 4999 {
			if _, err := db.Get(Chunks, fmt.Appendf(nil, "k%08d", j)); err != nil {
				t.Fatal(err)
			}
		}
		peakTables = max(peakTables, mappedResident(t, dir, ".sst"))
		peakLogs = max(peakLogs, mappedResident(t, dir, ".mem"))
	}
	tables, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil || len(tables) < 10 {
		t.Fatalf("%d tables (%v): the test wrote too little to tell", len(tables), err)
	}
	t.Logf("%d tables resident at most %d KiB, memtable logs %d KiB, while %d records were written and read", len(tables), peakTables, peakLogs, n)
	if peakTables > 1<<10 {
		t.Fatalf("tables had %d KiB resident: they are read or written through their maps", peakTables)
	}
	deadline := time.Now().Add(5 * trimEvery)
	for mappedResident(t, dir, ".mem") > 2<<10 {
		if time.Now().After(deadline) {
			t.Fatalf("the memtable logs still have %d KiB resident %v after the writes (at most %d KiB while writing): their pages are not given back",
				mappedResident(t, dir, ".mem"), 5*trimEvery, peakLogs)
		}
		time.Sleep(trimEvery / 10) // polling /proc: the trim has no event to wait for
	}
	for i := 0; i < n; i += 997 {
		got, err := db.Get(Chunks, fmt.Appendf(nil, "k%08d", i))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, val(i)) {
			t.Fatalf("record %d changed after its pages were given back", i)
		}
	}
}

// mappedResident sums the resident KiB of this process's maps of the files
// in dir whose names end in one of suffixes.
func mappedResident(t *testing.T, dir string, suffixes ...string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	kib, in := 0, false
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			in = len(f) >= 6 && strings.HasPrefix(f[5], dir) && slices.ContainsFunc(suffixes, func(s string) bool { return strings.HasSuffix(f[5], s) })
		case in && len(f) >= 2 && f[0] == "Rss:":
			v, _ := strconv.Atoi(f[1])
			kib += v
		}
	}
	return kib
}
