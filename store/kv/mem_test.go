package kv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
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
