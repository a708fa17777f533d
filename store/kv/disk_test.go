package kv

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func TestReopenPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, db, Friends, "ann", "v1")
	mustPut(t, db, Chunks, "c1", "p1")
	if err := db.Delete(Chunks, []byte("c1")); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("s", 100<<10) // in the value log
	mustPut(t, db, Held, "shard", big)
	var lastSeq uint64
	for range 5 {
		if lastSeq, err = db.NextSeq("snap"); err != nil {
			t.Fatal(err)
		}
	}
	evSeq, err := db.AppendEvent(Event{Message: "before"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer closeDB(t, db)
	if got := mustGet(t, db, Friends, "ann"); got != "v1" {
		t.Errorf("ann=%q after reopen, want v1", got)
	}
	if ok, _ := db.Has(Chunks, []byte("c1")); ok {
		t.Error("deleted key is back after reopen")
	}
	if got := mustGet(t, db, Held, "shard"); got != big {
		t.Errorf("shard of %d bytes after reopen, want %d", len(got), len(big))
	}
	// Close returned the lease: numbering continues without a gap.
	if n, err := db.NextSeq("snap"); err != nil || n != lastSeq+1 {
		t.Errorf("NextSeq after reopen=%d, %v; want %d", n, err, lastSeq+1)
	}
	if n, err := db.AppendEvent(Event{Message: "after"}); err != nil || n != evSeq+1 {
		t.Errorf("AppendEvent after reopen=%d, %v; want %d", n, err, evSeq+1)
	}
}

func TestOpenLocked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	db := openAt(t, dir)
	_, err := Open(dir, Options{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not name the directory %s", err, dir)
	}
	closeDB(t, db)
	// Once closed, the directory opens again.
	db2, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	closeDB(t, db2)
}

func openAt(t *testing.T, dir string) *DB {
	t.Helper()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestOpenBadOptions(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		dir  string
		opt  Options
	}{
		{"in memory with a directory", dir, Options{InMemory: true}},
		{"tiny memtable", dir, Options{MemTableSize: 1000}},
		{"threshold above the batch size", dir, Options{ValueThreshold: 2 << 20}},
		{"negative threshold", dir, Options{ValueThreshold: -1}},
		{"tiny value log file", dir, Options{ValueLogFileSize: 1000}},
		{"huge value log file", dir, Options{ValueLogFileSize: 4 << 30}},
		{"tiny tables", dir, Options{TableSize: 1000}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(tt.dir, tt.opt)
			if err == nil {
				_ = db.Close() // the test fails anyway: this only frees the database
				t.Fatalf("Open(%q, %+v) succeeded", tt.dir, tt.opt)
			}
			if !strings.HasPrefix(err.Error(), "kv: open ") {
				t.Errorf("error %q lacks context", err)
			}
		})
	}
}

func TestOpenNewerFormat(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	db := openAt(t, dir)
	err := db.bdb.Update(func(txn *badger.Txn) error {
		return txn.Set(metaKey("format"), binary.BigEndian.AppendUint32(nil, formatVersion+1))
	})
	if err != nil {
		t.Fatal(err)
	}
	closeDB(t, db)
	_, err = Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "upgrade plug") {
		t.Fatalf("Open of a newer format: %v, want a refusal", err)
	}
}

// TestSyncAcrossMemtables writes enough to switch memtables between a write
// and Sync: every write-ahead log must be synced, not only the current one.
func TestSyncAcrossMemtables(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	db, err := Open(dir, Options{MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer closeDB(t, db)
	val := make([]byte, 1000) // below the value threshold: in the WAL
	for i := range 5000 {
		if err := db.Put(Chunks, fmt.Appendf(nil, "%06d", i), val); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// TestKillAfterSync kills (SIGKILL) a process that writes with PutSync, and
// checks that every write it acknowledged is there when the database opens
// again. (A power cut cannot be simulated here; this covers recovery from
// the write-ahead log without a Close.)
func TestKillAfterSync(t *testing.T) {
	if os.Getenv("KV_CRASH_DIR") != "" {
		t.Skip("in the child")
	}
	if testing.Short() {
		t.Skip("starts a process")
	}
	dir := filepath.Join(t.TempDir(), "db")
	name, args := os.Args[0], []string{"-test.run=^TestCrashChild$", "-test.count=1"}
	if emu := os.Getenv("PLUG_TEST_EXEC"); emu != "" {
		// Under an emulator (.ci/arm: go test -exec qemu-arm-static) the
		// child is emulated too: without binfmt_misc the kernel cannot run
		// an ARM binary by itself.
		name, args = emu, append([]string{os.Args[0]}, args...)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "KV_CRASH_DIR="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := -1
	sc := bufio.NewScanner(out)
	for sc.Scan() && acked < 500 {
		if n, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
			if acked, err = strconv.Atoi(n); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if acked < 500 {
		t.Fatalf("child acknowledged only %d writes", acked)
	}

	db := openAt(t, dir)
	for i := 0; i <= acked; i++ {
		if _, err := db.Get(Held, fmt.Appendf(nil, "%08d", i)); err != nil {
			t.Fatalf("acknowledged write %d of %d: %v", i, acked, err)
		}
	}
	t.Logf("%d acknowledged writes survived SIGKILL", acked+1)
}

// TestCrashChild is the process that TestKillAfterSync kills.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("KV_CRASH_DIR")
	if dir == "" {
		t.Skip("run by TestKillAfterSync")
	}
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	val := make([]byte, 6100) // every other one in the value log
	for i := 0; ; i++ {
		if err := db.PutSync(Held, fmt.Appendf(nil, "%08d", i), val[:i%2*6000+100]); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("acked %d\n", i)
	}
}

// TestCloseStopsGoroutines checks that Close stops what Open started.
func TestCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, opt := range []Options{{}, {InMemory: true}} {
		dir := ""
		if !opt.InMemory {
			dir = filepath.Join(t.TempDir(), "db")
		}
		db, err := Open(dir, opt)
		if err != nil {
			t.Fatal(err)
		}
		mustPut(t, db, Posts, "k", "v")
		if _, err := db.NextSeq("x"); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before Open, %d after Close:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

// TestDiskFullRefusesWrites: below the reserve, writes fail with
// ErrDiskFull saying what to do, reads go on, and writes resume by
// themselves once there is room (with some margin).
func TestDiskFullRefusesWrites(t *testing.T) {
	var free atomic.Int64
	free.Store(1 << 40)
	db, err := Open(filepath.Join(t.TempDir(), "db"), Options{FreeSpace: func(string) (int64, error) { return free.Load(), nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	mustPut(t, db, Friends, "ann", "v1")
	reserve := db.room.reserve
	wait := func() { // the free space is asked at most once a second: ask now
		db.room.mu.Lock()
		db.room.checked = time.Time{}
		db.room.mu.Unlock()
	}

	free.Store(reserve - 1)
	wait()
	err = db.Put(Friends, []byte("bob"), []byte("v"))
	if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "free some space") {
		t.Fatalf("write on a full disk: %v, want ErrDiskFull saying what to do", err)
	}
	if err := db.Batch(func(b *Batch) error { return b.Put(Friends, []byte("cat"), []byte("v")) }); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("batch on a full disk: %v", err)
	}
	if v, err := db.Get(Friends, []byte("ann")); err != nil || string(v) != "v1" {
		t.Fatalf("read on a full disk: %q %v", v, err)
	}
	free.Store(reserve + 1) // not yet the margin
	wait()
	if err := db.Put(Friends, []byte("bob"), []byte("v")); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("write just above the reserve after a full disk: %v, want still refused", err)
	}
	free.Store(2 * reserve)
	wait()
	mustPut(t, db, Friends, "bob", "v2")
}

// TestOpenDamagedTable: a table file overwritten with garbage or cut short
// (a bad disk, a stray tool) makes Open fail with an error, instead of a
// panic in one of badger's goroutines that ends the plug, and the failed
// Open leaves no goroutine behind. This rests on two changes to the
// vendored badger (third_party/badger/PLUG-PATCH.md).
func TestOpenDamagedTable(t *testing.T) {
	for _, tt := range []struct {
		name   string
		damage func(path string) error
	}{
		{"garbage", func(path string) error {
			fi, err := os.Stat(path)
			if err != nil {
				return err
			}
			junk := make([]byte, fi.Size())
			for i := range junk {
				junk[i] = byte(i*7 + 3)
			}
			return os.WriteFile(path, junk, 0o600)
		}},
		{"truncated", func(path string) error { return os.Truncate(path, 10) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "db")
			db, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 100 {
				mustPut(t, db, Posts, fmt.Sprintf("post-%03d", i), "text")
			}
			if err := db.Close(); err != nil { // flushes the memtable to a table
				t.Fatal(err)
			}
			tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
			if len(tables) == 0 {
				t.Fatalf("no table file in %s to damage", dir)
			}
			for _, f := range tables {
				if err := tt.damage(f); err != nil {
					t.Fatal(err)
				}
			}

			before := runtime.NumGoroutine()
			db, err = Open(dir, Options{})
			if err == nil {
				_ = db.Close() // the test fails anyway
				t.Fatal("Open of a database with a damaged table: no error")
			}
			if !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not say that a table of %s is corrupt", err, dir)
			}
			deadline := time.Now().Add(5 * time.Second)
			for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if after := runtime.NumGoroutine(); after > before {
				buf := make([]byte, 1<<20)
				t.Fatalf("%d goroutines before the failed Open, %d after:\n%s", before, after, buf[:runtime.Stack(buf, true)])
			}
		})
	}
}
