package kv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// openDisk opens a database in a fresh directory, closed at the end of the
// test.
func openDisk(t testing.TB) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "db"), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { closeDB(t, db) })
	return db
}

// openMemory opens an in-memory database, closed at the end of the test.
func openMemory(t testing.TB) *DB {
	t.Helper()
	db, err := Open("", Options{InMemory: true})
	if err != nil {
		t.Fatalf("Open in memory: %v", err)
	}
	t.Cleanup(func() { closeDB(t, db) })
	return db
}

func closeDB(t testing.TB, db *DB) {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestSuite(t *testing.T) {
	t.Run("disk", func(t *testing.T) { testSuite(t, func(t *testing.T) *DB { return openDisk(t) }) })
	t.Run("memory", func(t *testing.T) { testSuite(t, func(t *testing.T) *DB { return openMemory(t) }) })
}

// testSuite is what every database, on disk or in memory, must do.
func testSuite(t *testing.T, open func(t *testing.T) *DB) {
	tests := []struct {
		name string
		run  func(t *testing.T, db *DB)
	}{
		{"PutGetDelete", testPutGetDelete},
		{"NotFound", testNotFound},
		{"Lookup", testLookup},
		{"SpacesIsolated", testSpacesIsolated},
		{"BadSpace", testBadSpace},
		{"Iterate", testIterate},
		{"IterateEarlyStop", testIterateEarlyStop},
		{"IterateError", testIterateError},
		{"Count", testCount},
		{"UpdateAtomic", testUpdateAtomic},
		{"UpdateSeesOwnWrites", testUpdateSeesOwnWrites},
		{"UpdateRetriesConflict", testUpdateRetriesConflict},
		{"UpdateTooBig", testUpdateTooBig},
		{"ViewReadOnly", testViewReadOnly},
		{"TxAfterReturn", testTxAfterReturn},
		{"ValuesAreCopies", testValuesAreCopies},
		{"LargeValues", testLargeValues},
		{"Batch", testBatch},
		{"BatchError", testBatchError},
		{"NextSeq", testNextSeq},
		{"Events", testEvents},
		{"TrimEvents", testTrimEvents},
		{"Sync", testSync},
		{"GC", testGC},
		{"Closed", testClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
}

func mustPut(t *testing.T, db *DB, s Space, key, val string) {
	t.Helper()
	if err := db.Put(s, []byte(key), []byte(val)); err != nil {
		t.Fatalf("Put(%s, %q): %v", s, key, err)
	}
}

func mustGet(t *testing.T, db *DB, s Space, key string) string {
	t.Helper()
	val, err := db.Get(s, []byte(key))
	if err != nil {
		t.Fatalf("Get(%s, %q): %v", s, key, err)
	}
	return string(val)
}

func testPutGetDelete(t *testing.T, db *DB) {
	mustPut(t, db, Chunks, "a", "1")
	if got, want := mustGet(t, db, Chunks, "a"), "1"; got != want {
		t.Fatalf("Get=%q, want %q", got, want)
	}
	mustPut(t, db, Chunks, "a", "2")
	if got, want := mustGet(t, db, Chunks, "a"), "2"; got != want {
		t.Fatalf("Get after overwrite=%q, want %q", got, want)
	}
	if ok, err := db.Has(Chunks, []byte("a")); err != nil || !ok {
		t.Fatalf("Has=%v, %v; want true, nil", ok, err)
	}
	if err := db.Delete(Chunks, []byte("a")); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := db.Get(Chunks, []byte("a")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	// An empty key and an empty value are both allowed.
	mustPut(t, db, Settings, "", "")
	if got := mustGet(t, db, Settings, ""); got != "" {
		t.Fatalf("Get(empty)=%q, want empty", got)
	}
}

func testNotFound(t *testing.T, db *DB) {
	_, err := db.Get(Packs, []byte{0xab, 0xcd})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get missing: %v, want ErrNotFound", err)
	}
	if got, want := err.Error(), "kv: get packs abcd: not found"; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
	if ok, err := db.Has(Packs, []byte("x")); err != nil || ok {
		t.Fatalf("Has missing=%v, %v; want false, nil", ok, err)
	}
	if err := db.Delete(Packs, []byte("x")); err != nil {
		t.Fatalf("Delete missing: %v", err)
	}
}

func testLookup(t *testing.T, db *DB) {
	mustPut(t, db, Search, "k", "value")
	err := db.View(func(tx *Tx) error {
		buf := []byte("x")
		v, ok, err := tx.Lookup(Search, []byte("k"), buf)
		if err != nil || !ok || string(v) != "xvalue" {
			t.Errorf("Lookup(k) = %q, %v, %v; want the value appended to the buffer", v, ok, err)
		}
		v, ok, err = tx.Lookup(Search, []byte("missing"), buf[:0])
		if err != nil || ok || len(v) != 0 {
			t.Errorf("Lookup(missing) = %q, %v, %v; want not found and no error", v, ok, err)
		}
		if _, _, err := tx.Lookup(Space(0xff), []byte("k"), nil); !errors.Is(err, ErrBadSpace) {
			t.Errorf("Lookup in an unknown space: %v, want ErrBadSpace", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testSpacesIsolated(t *testing.T, db *DB) {
	mustPut(t, db, Friends, "k", "friend")
	mustPut(t, db, Held, "k", "held")
	if got := mustGet(t, db, Friends, "k"); got != "friend" {
		t.Errorf("Friends k=%q, want friend", got)
	}
	if got := mustGet(t, db, Held, "k"); got != "held" {
		t.Errorf("Held k=%q, want held", got)
	}
	if err := db.Delete(Held, []byte("k")); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, db, Friends, "k"); got != "friend" {
		t.Errorf("Friends k after deleting Held k=%q, want friend", got)
	}
	// Keys of neighbouring spaces never show in an iteration.
	mustPut(t, db, Posts, "p", "")
	mustPut(t, db, Invites, "i", "")
	for _, reverse := range []bool{false, true} {
		var keys []string
		err := db.Iterate(Friends, IterOptions{Reverse: reverse}, func(key, _ []byte) error {
			keys = append(keys, string(key))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"k"}; !slices.Equal(keys, want) {
			t.Errorf("reverse=%v: Friends keys=%q, want %q", reverse, keys, want)
		}
	}
}

func testBadSpace(t *testing.T, db *DB) {
	for _, s := range []Space{0, lastSpace + 1, 0x21, 0xff} {
		if _, err := db.Get(s, []byte("k")); !errors.Is(err, ErrBadSpace) {
			t.Errorf("Get(%s): %v, want ErrBadSpace", s, err)
		}
		if err := db.Put(s, []byte("k"), nil); !errors.Is(err, ErrBadSpace) {
			t.Errorf("Put(%s): %v, want ErrBadSpace", s, err)
		}
	}
	if err := db.Put(Meta, []byte("format"), []byte("x")); !errors.Is(err, ErrBadSpace) {
		t.Errorf("Put(meta): %v, want ErrBadSpace", err)
	}
	if err := db.Delete(Meta, []byte("format")); !errors.Is(err, ErrBadSpace) {
		t.Errorf("Delete(meta): %v, want ErrBadSpace", err)
	}
	if ok, err := db.Has(Meta, []byte("format")); err != nil || !ok {
		t.Errorf("Has(meta, format)=%v, %v; want true, nil", ok, err)
	}
}

// collect returns the keys that Iterate visits, checking each value.
func collect(t *testing.T, db *DB, s Space, opt IterOptions) []string {
	t.Helper()
	keys := []string{}
	err := db.Iterate(s, opt, func(key, val []byte) error {
		switch {
		case opt.KeysOnly && val != nil:
			return fmt.Errorf("key %q: KeysOnly gave value %q", key, val)
		case !opt.KeysOnly && string(val) != "v"+string(key):
			return fmt.Errorf("key %q: value %q, want %q", key, val, "v"+string(key))
		}
		keys = append(keys, string(key))
		return nil
	})
	if err != nil {
		t.Fatalf("Iterate(%s, %+v): %v", s, opt, err)
	}
	return keys
}

func testIterate(t *testing.T, db *DB) {
	keys := []string{"a", "ab", "a\xff", "a\xff\xff", "b", "ba", "bb", "c", "\xff", "\xff\xff"}
	for _, k := range keys {
		mustPut(t, db, Packs, k, "v"+k)
	}
	// Neighbours on both sides, that must never show.
	mustPut(t, db, Chunks, "zzz", "")
	mustPut(t, db, Snapshots, "", "")

	tests := []struct {
		name string
		opt  IterOptions
		want []string
	}{
		{"all", IterOptions{}, keys},
		{"all reverse", IterOptions{Reverse: true}, reversed(keys)},
		{"keys only", IterOptions{KeysOnly: true}, keys},
		{"prefix", IterOptions{Prefix: []byte("b")}, []string{"b", "ba", "bb"}},
		{"prefix reverse", IterOptions{Prefix: []byte("b"), Reverse: true}, []string{"bb", "ba", "b"}},
		{"prefix ff", IterOptions{Prefix: []byte("a\xff")}, []string{"a\xff", "a\xff\xff"}},
		{"prefix ff reverse", IterOptions{Prefix: []byte("a\xff"), Reverse: true}, []string{"a\xff\xff", "a\xff"}},
		{"prefix all ff reverse", IterOptions{Prefix: []byte("\xff"), Reverse: true}, []string{"\xff\xff", "\xff"}},
		{"prefix none", IterOptions{Prefix: []byte("d")}, []string{}},
		{"prefix none reverse", IterOptions{Prefix: []byte("d"), Reverse: true}, []string{}},
		{"start", IterOptions{Start: []byte("b")}, []string{"b", "ba", "bb", "c", "\xff", "\xff\xff"}},
		{"start between", IterOptions{Start: []byte("bab")}, []string{"bb", "c", "\xff", "\xff\xff"}},
		{"start reverse", IterOptions{Start: []byte("b"), Reverse: true}, []string{"b", "a\xff\xff", "a\xff", "ab", "a"}},
		{"start between reverse", IterOptions{Start: []byte("bab"), Reverse: true}, []string{"ba", "b", "a\xff\xff", "a\xff", "ab", "a"}},
		{"prefix start", IterOptions{Prefix: []byte("b"), Start: []byte("ba")}, []string{"ba", "bb"}},
		{"prefix start before", IterOptions{Prefix: []byte("b"), Start: []byte("a")}, []string{"b", "ba", "bb"}},
		{"prefix start after", IterOptions{Prefix: []byte("b"), Start: []byte("c")}, []string{}},
		{"prefix start reverse", IterOptions{Prefix: []byte("b"), Start: []byte("ba"), Reverse: true}, []string{"ba", "b"}},
		{"prefix start after reverse", IterOptions{Prefix: []byte("b"), Start: []byte("c"), Reverse: true}, []string{"bb", "ba", "b"}},
		{"prefix start before reverse", IterOptions{Prefix: []byte("b"), Start: []byte("a"), Reverse: true}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := collect(t, db, Packs, tt.opt); !slices.Equal(got, tt.want) {
				t.Errorf("keys=%q, want %q", got, tt.want)
			}
		})
	}

	t.Run("empty space", func(t *testing.T) {
		for _, reverse := range []bool{false, true} {
			if got := collect(t, db, Invites, IterOptions{Reverse: reverse}); len(got) != 0 {
				t.Errorf("reverse=%v: keys=%q, want none", reverse, got)
			}
		}
	})
}

func reversed(s []string) []string {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}

func testIterateEarlyStop(t *testing.T, db *DB) {
	for i := range 10 {
		mustPut(t, db, Posts, fmt.Sprint(i), "")
	}
	var seen []string
	err := db.Iterate(Posts, IterOptions{}, func(key, _ []byte) error {
		seen = append(seen, string(key))
		if len(seen) == 3 {
			return ErrStop
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Iterate stopped with ErrStop: %v, want nil", err)
	}
	if want := []string{"0", "1", "2"}; !slices.Equal(seen, want) {
		t.Errorf("seen %q, want %q", seen, want)
	}
}

func testIterateError(t *testing.T, db *DB) {
	mustPut(t, db, Posts, "a", "")
	boom := errors.New("boom")
	err := db.Iterate(Posts, IterOptions{}, func(_, _ []byte) error { return boom })
	if err != boom {
		t.Fatalf("Iterate=%v, want the callback's error unchanged", err)
	}
}

func testCount(t *testing.T, db *DB) {
	for _, k := range []string{"x1", "x2", "x3", "y1"} {
		mustPut(t, db, Snapshots, k, "")
	}
	mustPut(t, db, Packs, "x9", "")
	for _, tt := range []struct {
		prefix string
		want   int
	}{{"", 4}, {"x", 3}, {"y", 1}, {"z", 0}} {
		n, err := db.Count(Snapshots, []byte(tt.prefix))
		if err != nil {
			t.Fatal(err)
		}
		if n != tt.want {
			t.Errorf("Count(%q)=%d, want %d", tt.prefix, n, tt.want)
		}
	}
}

func testUpdateAtomic(t *testing.T, db *DB) {
	mustPut(t, db, Held, "used", "10")
	boom := errors.New("boom")
	err := db.Update(func(tx *Tx) error {
		if err := tx.Put(Held, []byte("used"), []byte("20")); err != nil {
			return err
		}
		if err := tx.Put(Held, []byte("shard"), []byte("x")); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("Update=%v, want fn's error unchanged", err)
	}
	if got := mustGet(t, db, Held, "used"); got != "10" {
		t.Errorf("used=%q after a failed Update, want 10", got)
	}
	if ok, _ := db.Has(Held, []byte("shard")); ok {
		t.Errorf("shard written by a failed Update")
	}

	err = db.Update(func(tx *Tx) error {
		if err := tx.Put(Held, []byte("used"), []byte("20")); err != nil {
			return err
		}
		return tx.Put(Held, []byte("shard"), []byte("x"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, db, Held, "used"); got != "20" {
		t.Errorf("used=%q, want 20", got)
	}
	if got := mustGet(t, db, Held, "shard"); got != "x" {
		t.Errorf("shard=%q, want x", got)
	}
}

func testUpdateSeesOwnWrites(t *testing.T, db *DB) {
	err := db.Update(func(tx *Tx) error {
		if err := tx.Put(Friends, []byte("b"), []byte("vb")); err != nil {
			return err
		}
		val, err := tx.Get(Friends, []byte("b"))
		if err != nil || string(val) != "vb" {
			return fmt.Errorf("Get own write=%q, %v", val, err)
		}
		var keys []string
		err = tx.Iterate(Friends, IterOptions{}, func(key, _ []byte) error {
			keys = append(keys, string(key))
			return nil
		})
		if err != nil || !slices.Equal(keys, []string{"b"}) {
			return fmt.Errorf("Iterate own writes=%q, %v", keys, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// testUpdateRetriesConflict makes the first run of fn conflict with a write
// committed meanwhile: Update must run fn again and commit on fresh data.
func testUpdateRetriesConflict(t *testing.T, db *DB) {
	mustPut(t, db, Held, "used", "1")
	runs := 0
	err := db.Update(func(tx *Tx) error {
		runs++
		val, err := tx.Get(Held, []byte("used"))
		if err != nil {
			return err
		}
		if runs == 1 {
			// Another writer changes what we read.
			if err := db.Put(Held, []byte("used"), []byte("5")); err != nil {
				return err
			}
		}
		return tx.Put(Held, []byte("used"), append(val, '0'))
	})
	if err != nil {
		t.Fatal(err)
	}
	if runs != 2 {
		t.Errorf("fn ran %d times, want 2", runs)
	}
	if got := mustGet(t, db, Held, "used"); got != "50" {
		t.Errorf("used=%q, want 50 (computed from the concurrent write)", got)
	}
}

func testUpdateTooBig(t *testing.T, db *DB) {
	err := db.Update(func(tx *Tx) error {
		for i := range 100_000 {
			if err := tx.Put(Chunks, fmt.Appendf(nil, "%08d", i), make([]byte, 100)); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, ErrTxTooBig) {
		t.Fatalf("Update of 100,000 entries: %v, want ErrTxTooBig", err)
	}
	if n, err := db.Count(Chunks, nil); err != nil || n != 0 {
		t.Errorf("Count after a too big Update=%d, %v; want 0", n, err)
	}
}

func testViewReadOnly(t *testing.T, db *DB) {
	err := db.View(func(tx *Tx) error { return tx.Put(Posts, []byte("k"), nil) })
	if err == nil {
		t.Fatal("Put in View succeeded")
	}
}

func testTxAfterReturn(t *testing.T, db *DB) {
	var kept *Tx
	if err := db.View(func(tx *Tx) error { kept = tx; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := kept.Get(Posts, []byte("k")); err == nil {
		t.Error("Get on a finished Tx succeeded")
	}
	if err := kept.Iterate(Posts, IterOptions{}, func(_, _ []byte) error { return nil }); err == nil {
		t.Error("Iterate on a finished Tx succeeded")
	}
}

func testValuesAreCopies(t *testing.T, db *DB) {
	buf := []byte("original")
	if err := db.Put(Posts, []byte("p"), buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "CHANGED!") // the caller reuses its buffer
	got, err := db.Get(Posts, []byte("p"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "original" {
		t.Fatalf("Get=%q, want original: Put kept the caller's buffer", got)
	}
	copy(got, "XXXXXXXX")
	if got := mustGet(t, db, Posts, "p"); got != "original" {
		t.Fatalf("Get=%q after changing a returned value, want original", got)
	}

	// A value read in a transaction stays valid after it, and after more
	// writes have gone by.
	var kept []byte
	err = db.View(func(tx *Tx) error {
		kept, err = tx.Get(Posts, []byte("p"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		mustPut(t, db, Posts, fmt.Sprint(i), strings.Repeat("z", 100))
	}
	if string(kept) != "original" {
		t.Fatalf("value read in a finished View=%q, want original", kept)
	}
}

func testLargeValues(t *testing.T, db *DB) {
	size := min(db.MaxValueSize(), 3<<20)
	val := bytes.Repeat([]byte{0xa5}, int(size))
	if err := db.Put(Held, []byte("big"), val); err != nil {
		t.Fatalf("Put of %d bytes: %v", size, err)
	}
	got, err := db.Get(Held, []byte("big"))
	if err != nil || !bytes.Equal(got, val) {
		t.Fatalf("Get of %d bytes: %d bytes, %v", size, len(got), err)
	}
	if db.MaxValueSize() < 3<<20 {
		over := make([]byte, db.MaxValueSize()+1)
		if err := db.Put(Held, []byte("over"), over); !errors.Is(err, ErrTooLarge) {
			t.Errorf("Put of MaxValueSize+1 bytes: %v, want ErrTooLarge", err)
		}
	}
	if err := db.Put(Held, make([]byte, MaxKeySize+1), nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Put with a key of MaxKeySize+1 bytes: %v, want ErrTooLarge", err)
	}
	if err := db.Put(Held, make([]byte, MaxKeySize), nil); err != nil {
		t.Errorf("Put with a key of MaxKeySize bytes: %v", err)
	}
}

func testBatch(t *testing.T, db *DB) {
	const n = 30_000 // more than one transaction holds
	err := db.Batch(func(b *Batch) error {
		key := make([]byte, 8)
		for i := range n {
			// Reusing the key buffer must be safe.
			copy(key, fmt.Sprintf("%08d", i))
			if err := b.Put(Chunks, key, key); err != nil {
				return err
			}
		}
		return b.Delete(Chunks, []byte("00000007"))
	})
	if err != nil {
		t.Fatalf("Batch: %v", err)
	}
	if got, err := db.Count(Chunks, nil); err != nil || got != n-1 {
		t.Fatalf("Count=%d, %v; want %d", got, err, n-1)
	}
	for _, i := range []int{0, 1, n / 2, n - 1} {
		k := fmt.Sprintf("%08d", i)
		if got := mustGet(t, db, Chunks, k); got != k {
			t.Errorf("Get(%s)=%q", k, got)
		}
	}
	if ok, _ := db.Has(Chunks, []byte("00000007")); ok {
		t.Error("key deleted in the batch is still there")
	}
	if err := db.Batch(func(b *Batch) error { return b.Put(Meta, []byte("x"), nil) }); !errors.Is(err, ErrBadSpace) {
		t.Errorf("Batch Put(meta): %v, want ErrBadSpace", err)
	}
}

func testBatchError(t *testing.T, db *DB) {
	boom := errors.New("boom")
	err := db.Batch(func(b *Batch) error {
		if err := b.Put(Posts, []byte("a"), nil); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("Batch=%v, want fn's error unchanged", err)
	}
	// The uncommitted tail of a failed batch is dropped.
	if ok, _ := db.Has(Posts, []byte("a")); ok {
		t.Error("write of a failed batch committed")
	}
}

func testNextSeq(t *testing.T, db *DB) {
	var last uint64
	for i := range 3 * seqLease {
		n, err := db.NextSeq("a")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && n != 1 {
			t.Errorf("first NextSeq=%d, want 1", n)
		}
		if n <= last {
			t.Fatalf("NextSeq=%d after %d, want increasing", n, last)
		}
		last = n
	}
	if n, err := db.NextSeq("b"); err != nil || n != 1 {
		t.Errorf("first NextSeq(b)=%d, %v; want 1, sequences are independent", n, err)
	}
	if _, err := db.NextSeq(""); err == nil {
		t.Error("NextSeq(\"\") succeeded")
	}

	// Concurrent callers never get the same number.
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				n, err := db.NextSeq("c")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[n] {
					t.Errorf("NextSeq gave %d twice", n)
				}
				seen[n] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func testEvents(t *testing.T, db *DB) {
	if evs, err := db.LastEvents(5); err != nil || len(evs) != 0 {
		t.Fatalf("LastEvents on an empty log=%v, %v", evs, err)
	}
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	for i := range 10 {
		seq, err := db.AppendEvent(Event{
			Seq:       999, // ignored
			Time:      t0.Add(time.Duration(i) * time.Second),
			Level:     "INFO",
			Component: "test",
			Message:   fmt.Sprintf("event %d", i),
			Attrs:     map[string]string{"i": fmt.Sprint(i)},
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := uint64(i + 1); seq != want {
			t.Fatalf("AppendEvent #%d: seq %d, want %d", i, seq, want)
		}
	}
	all, err := db.Events(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 10 {
		t.Fatalf("Events(0, 0): %d events, want 10", len(all))
	}
	for i, e := range all {
		if e.Seq != uint64(i+1) || e.Message != fmt.Sprintf("event %d", i) ||
			!e.Time.Equal(t0.Add(time.Duration(i)*time.Second)) ||
			e.Level != "INFO" || e.Component != "test" || e.Attrs["i"] != fmt.Sprint(i) {
			t.Errorf("event %d = %+v", i, e)
		}
	}
	page, err := db.Events(3, 4)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(page); !slices.Equal(got, []uint64{4, 5, 6, 7}) {
		t.Errorf("Events(3, 4) seqs=%v, want 4..7", got)
	}
	if evs, err := db.Events(10, 0); err != nil || len(evs) != 0 {
		t.Errorf("Events after the last=%v, %v; want none", evs, err)
	}
	last, err := db.LastEvents(3)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(last); !slices.Equal(got, []uint64{8, 9, 10}) {
		t.Errorf("LastEvents(3) seqs=%v, want 8, 9, 10 (oldest first)", got)
	}
	if evs, _ := db.LastEvents(100); len(evs) != 10 {
		t.Errorf("LastEvents(100): %d events, want 10", len(evs))
	}

	// A zero time becomes now.
	before := time.Now()
	seq, err := db.AppendEvent(Event{Message: "now"})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := db.Events(seq-1, 1)
	if err != nil || len(evs) != 1 {
		t.Fatalf("Events(%d, 1)=%v, %v", seq-1, evs, err)
	}
	if evs[0].Time.Before(before.Add(-time.Second)) || evs[0].Attrs != nil {
		t.Errorf("event with zero time = %+v", evs[0])
	}

	// Concurrent appends give distinct numbers, and the log is gap-free in
	// number order.
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 25 {
				if _, err := db.AppendEvent(Event{Message: fmt.Sprint(g, i)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	all, err = db.Events(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 111 {
		t.Fatalf("%d events, want 111", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Fatalf("events out of order: %d after %d", all[i].Seq, all[i-1].Seq)
		}
	}
}

func seqs(evs []Event) []uint64 {
	var s []uint64
	for _, e := range evs {
		s = append(s, e.Seq)
	}
	return s
}

func testTrimEvents(t *testing.T, db *DB) {
	if err := db.TrimEvents(5); err != nil {
		t.Fatalf("TrimEvents on an empty log: %v", err)
	}
	for i := range 300 {
		if _, err := db.AppendEvent(Event{Message: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.TrimEvents(500); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.Count(Events, nil); n != 300 {
		t.Fatalf("TrimEvents(500) of 300 left %d", n)
	}
	if err := db.TrimEvents(50); err != nil {
		t.Fatal(err)
	}
	all, err := db.Events(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 50 || all[0].Seq != 251 || all[49].Seq != 300 {
		t.Fatalf("after TrimEvents(50): %d events, seqs %v", len(all), seqs(all))
	}
	// Numbering goes on after a trim.
	if seq, err := db.AppendEvent(Event{Message: "next"}); err != nil || seq != 301 {
		t.Errorf("AppendEvent after trim=%d, %v; want 301", seq, err)
	}
	if err := db.TrimEvents(0); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.Count(Events, nil); n != 0 {
		t.Errorf("TrimEvents(0) left %d events", n)
	}
	if err := db.TrimEvents(-1); err == nil {
		t.Error("TrimEvents(-1) succeeded")
	}
}

func testSync(t *testing.T, db *DB) {
	if err := db.PutSync(Held, []byte("ack"), []byte("1")); err != nil {
		t.Fatalf("PutSync: %v", err)
	}
	if err := db.UpdateSync(func(tx *Tx) error { return tx.Put(Held, []byte("ack2"), []byte("2")) }); err != nil {
		t.Fatalf("UpdateSync: %v", err)
	}
	if err := db.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if got := mustGet(t, db, Held, "ack2"); got != "2" {
		t.Errorf("ack2=%q", got)
	}
	boom := errors.New("boom")
	if err := db.UpdateSync(func(*Tx) error { return boom }); err != boom {
		t.Errorf("UpdateSync=%v, want fn's error unchanged", err)
	}
}

func testGC(t *testing.T, db *DB) {
	big := make([]byte, 64<<10)
	for i := range 50 {
		mustPut(t, db, Held, fmt.Sprint(i%5), string(big))
	}
	if err := db.GC(); err != nil {
		t.Fatalf("GC: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := db.RunGC(ctx, time.Millisecond); err != nil {
		t.Fatalf("RunGC after cancel: %v, want nil", err)
	}
}

func testClosed(t *testing.T, db *DB) {
	mustPut(t, db, Posts, "k", "v")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	checks := map[string]error{}
	_, checks["Get"] = db.Get(Posts, []byte("k"))
	checks["Put"] = db.Put(Posts, []byte("k"), nil)
	checks["Iterate"] = db.Iterate(Posts, IterOptions{}, func(_, _ []byte) error { return nil })
	checks["Batch"] = db.Batch(func(*Batch) error { return nil })
	_, checks["NextSeq"] = db.NextSeq("a")
	_, checks["AppendEvent"] = db.AppendEvent(Event{})
	checks["Sync"] = db.Sync()
	checks["GC"] = db.GC()
	for name, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

func TestSpaceString(t *testing.T) {
	for _, tt := range []struct {
		s    Space
		want string
	}{
		{Meta, "meta"}, {Settings, "settings"}, {Chunks, "chunks"}, {Packs, "packs"},
		{Snapshots, "snapshots"}, {Friends, "friends"}, {Held, "held"}, {Posts, "posts"},
		{Events, "events"}, {Invites, "invites"}, {0, "space(0x00)"}, {0x42, "space(0x42)"},
	} {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("Space(%d).String()=%q, want %q", byte(tt.s), got, tt.want)
		}
	}
	// Every space is a known one, and names are distinct.
	names := map[string]bool{}
	for s := Meta; s <= lastSpace; s++ {
		if strings.HasPrefix(s.String(), "space(") || names[s.String()] {
			t.Errorf("space 0x%02x has no name of its own: %q", byte(s), s)
		}
		names[s.String()] = true
	}
}
