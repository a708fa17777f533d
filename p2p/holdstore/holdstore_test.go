package holdstore

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/zeebo/blake3"

	"github.com/plug-net/plug/p2p/proof"
	"github.com/plug-net/plug/store/kv"
	"github.com/plug-net/plug/store/storetest"
)

// testStore is a Store on a real badger database and a real directory.
type testStore struct {
	*Store
	dir string
	db  *kv.DB
}

func newStore(t testing.TB) *testStore {
	t.Helper()
	db, err := kv.Open(t.TempDir(), kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close the database: %v", err)
		}
	})
	dir := filepath.Join(t.TempDir(), "shards")
	s, rep, err := Open(dir, db)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Empty() {
		t.Fatalf("Open of a new store repaired %v", rep)
	}
	return &testStore{Store: s, dir: dir, db: db}
}

// reopen opens the store again on the same directory and database, as the
// daemon does after a crash.
func (ts *testStore) reopen(t *testing.T) Repair {
	t.Helper()
	s, rep, err := Open(ts.dir, ts.db)
	if err != nil {
		t.Fatal(err)
	}
	ts.Store = s
	return rep
}

func newOwner(t testing.TB) peer.ID {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := crypto.UnmarshalEd25519PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func newShard(n int) ([32]byte, []byte) {
	b := make([]byte, n)
	rand.Read(b)
	return blake3.Sum256(b), b
}

const noQuota = 1 << 40

func (ts *testStore) put(t testing.TB, owner peer.ID, id [32]byte, b []byte) {
	t.Helper()
	if err := ts.Put(t.Context(), owner, id, int64(len(b)), bytes.NewReader(b), noQuota); err != nil {
		t.Fatalf("Put(%d bytes): %v", len(b), err)
	}
}

func (ts *testStore) wantUsage(t *testing.T, owner peer.ID, used int64, shards int) {
	t.Helper()
	gotUsed, gotShards, err := ts.Usage(owner)
	if err != nil {
		t.Fatal(err)
	}
	if gotUsed != used || gotShards != shards {
		t.Fatalf("Usage = %d bytes in %d shards, want %d in %d", gotUsed, gotShards, used, shards)
	}
}

// files lists the names in owner's directory.
func (ts *testStore) files(t *testing.T, owner peer.ID) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(ts.dir, owner.String()))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// noRead is a reader that fails the test when read.
type noRead struct{ t *testing.T }

func (r noRead) Read([]byte) (int, error) {
	r.t.Error("the reader was read")
	return 0, io.EOF
}

func TestPutOpenHasDelete(t *testing.T) {
	ts := newStore(t)
	owner := newOwner(t)
	for _, n := range []int{1, proof.GroupSize - 1, proof.GroupSize, proof.GroupSize + 1, 1 << 20, 8<<20 + 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ctx := t.Context()
			id, b := newShard(n)
			if ok, err := ts.Has(ctx, owner, id); err != nil || ok {
				t.Fatalf("Has before Put = %v, %v; want false, nil", ok, err)
			}
			ts.put(t, owner, id, b)
			if ok, err := ts.Has(ctx, owner, id); err != nil || !ok {
				t.Fatalf("Has after Put = %v, %v; want true, nil", ok, err)
			}
			ts.wantUsage(t, owner, int64(n), 1)
			r, size, err := ts.Open(ctx, owner, id)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if cerr := r.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			if size != int64(n) || !bytes.Equal(got, b) {
				t.Fatalf("Open gave %d bytes (size %d) differing from the %d put", len(got), size, n)
			}
			if got, want := ts.files(t, owner), []string{fmt.Sprintf("%x", id), fmt.Sprintf("%x.obao", id)}; !slices.Equal(got, want) {
				t.Fatalf("files = %q, want %q", got, want)
			}
			if err := ts.Delete(ctx, owner, id); err != nil {
				t.Fatal(err)
			}
			if ok, err := ts.Has(ctx, owner, id); err != nil || ok {
				t.Fatalf("Has after Delete = %v, %v; want false, nil", ok, err)
			}
			if _, _, err := ts.Open(ctx, owner, id); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Open after Delete: %v, want fs.ErrNotExist", err)
			}
			ts.wantUsage(t, owner, 0, 0)
			if got := ts.files(t, owner); len(got) != 0 {
				t.Fatalf("files left after Delete: %q", got)
			}
		})
	}
}

func TestPutIdempotent(t *testing.T) {
	ts := newStore(t)
	owner := newOwner(t)
	id, b := newShard(100 << 10)
	ts.put(t, owner, id, b)
	// The second put does not read its reader, nor count the bytes twice,
	// nor check a quota that the shard is already part of.
	if err := ts.Put(t.Context(), owner, id, int64(len(b)), noRead{t}, int64(len(b))); err != nil {
		t.Fatalf("second Put: %v", err)
	}
	ts.wantUsage(t, owner, int64(len(b)), 1)
}

func TestDeleteMissing(t *testing.T) {
	ts := newStore(t)
	owner := newOwner(t)
	id, _ := newShard(10)
	if err := ts.Delete(t.Context(), owner, id); err != nil {
		t.Fatalf("Delete of a shard not held: %v", err)
	}
}

func TestOpenMissing(t *testing.T) {
	ts := newStore(t)
	id, _ := newShard(10)
	if _, _, err := ts.Open(t.Context(), newOwner(t), id); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a shard not held: %v, want fs.ErrNotExist", err)
	}
}

// Shards are kept per owner: the same shard ID of another owner is another
// shard.
func TestOwnersAreSeparate(t *testing.T) {
	ts := newStore(t)
	ann, bob := newOwner(t), newOwner(t)
	id, b := newShard(1000)
	ts.put(t, ann, id, b)
	if ok, err := ts.Has(t.Context(), bob, id); err != nil || ok {
		t.Fatalf("Has for another owner = %v, %v; want false, nil", ok, err)
	}
	ts.put(t, bob, id, b)
	if err := ts.Delete(t.Context(), ann, id); err != nil {
		t.Fatal(err)
	}
	if ok, err := ts.Has(t.Context(), bob, id); err != nil || !ok {
		t.Fatalf("Has after the other owner deleted = %v, %v; want true, nil", ok, err)
	}
	ts.wantUsage(t, ann, 0, 0)
	ts.wantUsage(t, bob, 1000, 1)
}

// refusedCleanly checks that a refused put left nothing behind.
func (ts *testStore) refusedCleanly(t *testing.T, owner peer.ID, id [32]byte) {
	t.Helper()
	if ok, err := ts.Has(t.Context(), owner, id); err != nil || ok {
		t.Fatalf("Has after a refused Put = %v, %v; want false, nil", ok, err)
	}
	ts.wantUsage(t, owner, 0, 0)
	if got := ts.files(t, owner); len(got) != 0 {
		t.Fatalf("files left by a refused Put: %q", got)
	}
}

func TestPutMismatch(t *testing.T) {
	ts := newStore(t)
	owner := newOwner(t)
	for _, n := range []int{1, proof.GroupSize + 1, 1 << 20} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			id, b := newShard(n)
			bad := bytes.Clone(b)
			bad[n/2] ^= 1
			err := ts.Put(t.Context(), owner, id, int64(n), bytes.NewReader(bad), noQuota)
			if !errors.Is(err, ErrMismatch) {
				t.Fatalf("Put of bytes that do not hash to the ID: %v, want ErrMismatch", err)
			}
			ts.refusedCleanly(t, owner, id)
		})
	}
}

func TestPutShortReader(t *testing.T) {
	ts := newStore(t)
	owner := newOwner(t)
	id, b := newShard(3 * proof.GroupSize)
	for _, n := range []int{0, 1, proof.GroupSize, len(b) - 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			err := ts.Put(t.Context(), owner, id, int64(len(b)), bytes.NewReader(b[:n]), noQuota)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("Put with %d of %d bytes: %v, want io.ErrUnexpectedEOF", n, len(b), err)
			}
			ts.refusedCleanly(t, owner, id)
		})
	}
}

// Put reads exactly size bytes: what follows in the reader (the next
// message on a stream) is left to the caller, and a longer body does not
// sneak in.
func TestPutReadsExactlySize(t *testing.T) {
	ts := newStore(t)
	owner := newOwner(t)
	id, b := newShard(proof.GroupSize + 5)
	r := bytes.NewReader(append(bytes.Clone(b), "next message"...))
	if err := ts.Put(t.Context(), owner, id, int64(len(b)), r, noQuota); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "next message" {
		t.Fatalf("Put left %q in the reader, want %q", rest, "next message")
	}

	// A body longer than announced, where the ID is that of the longer
	// body: the announced prefix does not hash to it.
	longID, long := newShard(proof.GroupSize + 5)
	err := ts.Put(t.Context(), owner, longID, int64(len(long)-1), bytes.NewReader(long), noQuota)
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("Put of a longer body: %v, want ErrMismatch", err)
	}
	if ok, _ := ts.Has(t.Context(), owner, longID); ok {
		t.Fatal("the longer body is held")
	}
	ts.wantUsage(t, owner, int64(len(b)), 1)
}

func TestPutSizeLimits(t *testing.T) {
	ts := newStore(t)
	owner := newOwner(t)
	id, _ := newShard(1)
	for _, tc := range []struct {
		size int64
		want error
	}{
		{proof.MaxShardSize + 1, ErrTooLarge},
		{1 << 40, ErrTooLarge},
		{0, proof.ErrRange},
		{-1, proof.ErrRange},
	} {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			err := ts.Put(t.Context(), owner, id, tc.size, noRead{t}, noQuota)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Put of %d bytes: %v, want %v", tc.size, err, tc.want)
			}
			ts.refusedCleanly(t, owner, id)
		})
	}
}

func TestPutMaxShardSize(t *testing.T) {
	if testing.Short() {
		t.Skip("32 MiB shard")
	}
	ts := newStore(t)
	owner := newOwner(t)
	id, b := newShard(proof.MaxShardSize)
	ts.put(t, owner, id, b)
	ts.wantUsage(t, owner, proof.MaxShardSize, 1)
}

func TestPutCanceled(t *testing.T) {
	ts := newStore(t)
	owner := newOwner(t)
	id, b := newShard(1 << 20)
	ctx, cancel := context.WithCancel(t.Context())
	// The reader cancels the put halfway through the body.
	r := &cancelAfter{r: bytes.NewReader(b), n: len(b) / 2, cancel: cancel}
	err := ts.Put(ctx, owner, id, int64(len(b)), r, noQuota)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put canceled halfway: %v, want context.Canceled", err)
	}
	ts.refusedCleanly(t, owner, id)
}

type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestQuota(t *testing.T) {
	ts := newStore(t)
	owner := newOwner(t)
	ctx := t.Context()
	id1, b1 := newShard(600 << 10)
	id2, b2 := newShard(424 << 10)
	const quota = 1 << 20 // b1 + b2 exactly

	if err := ts.Put(ctx, owner, id1, int64(len(b1)), bytes.NewReader(b1), quota); err != nil {
		t.Fatal(err)
	}
	// One byte over: refused before a byte is read, nothing written.
	before := ts.files(t, owner)
	err := ts.Put(ctx, owner, id2, int64(len(b2)), noRead{t}, quota-1)
	if !errors.Is(err, ErrQuota) {
		t.Fatalf("Put one byte over the quota: %v, want ErrQuota", err)
	}
	for _, want := range []string{"holding 600 KiB of your 1024 KiB", "this shard needs 424 KiB more"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("quota error %q does not say %q", err, want)
		}
	}
	if after := ts.files(t, owner); !slices.Equal(before, after) {
		t.Fatalf("a refused Put changed the directory from %q to %q", before, after)
	}
	ts.wantUsage(t, owner, int64(len(b1)), 1)

	// Exactly fits.
	if err := ts.Put(ctx, owner, id2, int64(len(b2)), bytes.NewReader(b2), quota); err != nil {
		t.Fatalf("Put that exactly fits the quota: %v", err)
	}
	ts.wantUsage(t, owner, quota, 2)

	// Deleting frees the room.
	if err := ts.Delete(ctx, owner, id1); err != nil {
		t.Fatal(err)
	}
	id3, b3 := newShard(600 << 10)
	if err := ts.Put(ctx, owner, id3, int64(len(b3)), bytes.NewReader(b3), quota); err != nil {
		t.Fatalf("Put after a delete made room: %v", err)
	}
}

// Concurrent puts race for a quota that fits only some of them: the ones
// accepted add up to the usage, which never exceeds the quota.
func TestQuotaConcurrent(t *testing.T) {
	ts := newStore(t)
	owner := newOwner(t)
	const (
		n     = 8
		size  = 300 << 10
		quota = 3*size + size/2 // room for 3
	)
	ids := make([][32]byte, n)
	bodies := make([][]byte, n)
	for i := range n {
		ids[i], bodies[i] = newShard(size)
	}
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = ts.Put(t.Context(), owner, ids[i], size, bytes.NewReader(bodies[i]), quota)
		})
	}
	close(start)
	wg.Wait()

	accepted := 0
	for i, err := range errs {
		switch {
		case err == nil:
			accepted++
			if ok, _ := ts.Has(t.Context(), owner, ids[i]); !ok {
				t.Errorf("put %d was accepted but the shard is not held", i)
			}
		case !errors.Is(err, ErrQuota):
			t.Errorf("put %d: %v, want nil or ErrQuota", i, err)
		}
	}
	if accepted != 3 {
		t.Errorf("%d puts accepted, want 3", accepted)
	}
	ts.wantUsage(t, owner, int64(accepted*size), accepted)
	if got := len(ts.files(t, owner)); got != 2*accepted {
		t.Errorf("%d files for %d shards, want %d", got, accepted, 2*accepted)
	}
}

// Concurrent puts of the same shard store it once.
func TestPutSameShardConcurrently(t *testing.T) {
	ts := newStore(t)
	owner := newOwner(t)
	id, b := newShard(200 << 10)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := ts.Put(t.Context(), owner, id, int64(len(b)), bytes.NewReader(b), noQuota); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	ts.wantUsage(t, owner, int64(len(b)), 1)
	if got := len(ts.files(t, owner)); got != 2 {
		t.Fatalf("%d files, want 2", got)
	}
}

func TestDeleteOwner(t *testing.T) {
	ts := newStore(t)
	ctx := t.Context()
	ann, bob := newOwner(t), newOwner(t)
	var annBytes int64
	for _, n := range []int{1, 5000, 70000} {
		id, b := newShard(n)
		ts.put(t, ann, id, b)
		annBytes += int64(n)
	}
	bobID, bobShard := newShard(1234)
	ts.put(t, bob, bobID, bobShard)

	freed, err := ts.DeleteOwner(ctx, ann)
	if err != nil {
		t.Fatal(err)
	}
	if freed != annBytes {
		t.Errorf("DeleteOwner freed %d bytes, want %d", freed, annBytes)
	}
	ts.wantUsage(t, ann, 0, 0)
	if _, err := os.Stat(filepath.Join(ts.dir, ann.String())); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the owner's directory is still there: %v", err)
	}
	ts.wantUsage(t, bob, 1234, 1)
	if r, _, err := ts.Open(ctx, bob, bobID); err != nil {
		t.Errorf("the other owner's shard: %v", err)
	} else if err := r.Close(); err != nil {
		t.Errorf("close the other owner's shard: %v", err)
	}
	owners, err := ts.Owners()
	if err != nil {
		t.Fatal(err)
	}
	if want := []OwnerUsage{{Owner: bob, Used: 1234, Shards: 1}}; !slices.Equal(owners, want) {
		t.Errorf("Owners = %v, want %v", owners, want)
	}
	if freed, err := ts.DeleteOwner(ctx, ann); err != nil || freed != 0 {
		t.Errorf("second DeleteOwner = %d, %v; want 0, nil", freed, err)
	}
}

func TestOwnersAndList(t *testing.T) {
	ts := newStore(t)
	ann, bob := newOwner(t), newOwner(t)
	want := make(map[[32]byte]int64)
	for i := range 5 {
		id, b := newShard(100 + i)
		ts.put(t, ann, id, b)
		want[id] = int64(len(b))
	}
	id, b := newShard(7)
	ts.put(t, bob, id, b)

	got := make(map[[32]byte]int64)
	var order [][32]byte
	err := ts.List(t.Context(), ann, func(id [32]byte, size int64) error {
		got[id] = size
		order = append(order, id)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("List gave %d shards, want %d", len(got), len(want))
	}
	for id, size := range want {
		if got[id] != size {
			t.Errorf("List: shard %x has size %d, want %d", id[:4], got[id], size)
		}
	}
	if !slices.IsSortedFunc(order, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) }) {
		t.Error("List is not in ID order")
	}

	stop := errors.New("stop")
	calls := 0
	err = ts.List(t.Context(), ann, func([32]byte, int64) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Errorf("List with a failing fn = %v after %d calls, want the fn's error after 1", err, calls)
	}

	owners, err := ts.Owners()
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[peer.ID]OwnerUsage)
	for _, o := range owners {
		m[o.Owner] = o
	}
	if len(owners) != 2 || m[ann].Shards != 5 || m[ann].Used != 510 || m[bob].Used != 7 {
		t.Errorf("Owners = %v", owners)
	}
}

// List pages through more shards than it reads at once, and fn may delete.
func TestListManyAndDeleteWhileListing(t *testing.T) {
	ts := newStore(t)
	owner := newOwner(t)
	const n = listPage + 10
	for i := range n {
		id, b := newShard(16 + i%3)
		ts.put(t, owner, id, b)
	}
	seen := 0
	err := ts.List(t.Context(), owner, func(id [32]byte, size int64) error {
		seen++
		return ts.Delete(t.Context(), owner, id)
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != n {
		t.Fatalf("List visited %d shards, want %d", seen, n)
	}
	ts.wantUsage(t, owner, 0, 0)
}

func TestOpenDamaged(t *testing.T) {
	ts := newStore(t)
	owner := newOwner(t)
	id, b := newShard(50000)
	ts.put(t, owner, id, b)
	if err := os.Truncate(ts.Path(owner, id), 49999); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.Open(t.Context(), owner, id); !errors.Is(err, proof.ErrCorrupt) {
		t.Fatalf("Open of a truncated shard: %v, want ErrCorrupt", err)
	}
	if err := os.Remove(ts.Path(owner, id)); err != nil {
		t.Fatal(err)
	}
	_, _, err := ts.Open(t.Context(), owner, id)
	if !errors.Is(err, proof.ErrCorrupt) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a shard whose file is gone: %v, want ErrCorrupt and fs.ErrNotExist", err)
	}
}

// A crash leaves a temporary file, files without a record, a record without
// its file and a wrong usage record: Open repairs them all.
func TestOpenRepairs(t *testing.T) {
	ts := newStore(t)
	ctx := t.Context()
	ann, bob := newOwner(t), newOwner(t)
	keepID, keep := newShard(20000)
	ts.put(t, ann, keepID, keep)
	lostID, lost := newShard(30000)
	ts.put(t, ann, lostID, lost)
	truncID, trunc := newShard(40000)
	ts.put(t, bob, truncID, trunc)
	bobDir := filepath.Join(ts.dir, bob.String())

	// An interrupted put.
	if err := os.WriteFile(filepath.Join(bobDir, tmpPrefix+"123"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A put that crashed after the rename, before the record.
	orphanID, orphan := newShard(5000)
	orphanPath := ts.Path(ann, orphanID)
	if err := os.WriteFile(orphanPath, orphan, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(orphanPath+obaoExt, make([]byte, 8), 0o600); err != nil {
		t.Fatal(err)
	}
	// A record whose file is gone, and one whose file is cut short.
	if err := os.Remove(ts.Path(ann, lostID)); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(ts.Path(bob, truncID), 100); err != nil {
		t.Fatal(err)
	}
	// Trees a crash left behind (Put does not sync them): one empty, one
	// gone; and one short whose shard's bytes were damaged as well.
	emptyTreeID, emptyTree := newShard(70000)
	ts.put(t, ann, emptyTreeID, emptyTree)
	noTreeID, noTree := newShard(16384)
	ts.put(t, ann, noTreeID, noTree)
	rotID, rot := newShard(60000)
	ts.put(t, bob, rotID, rot)
	trees := map[[32]byte][]byte{}
	for _, id := range [][32]byte{emptyTreeID, noTreeID} {
		_, trees[id] = ts.tree(t, ann, id)
	}
	if err := os.Truncate(ts.Path(ann, emptyTreeID)+obaoExt, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(ts.Path(ann, noTreeID) + obaoExt); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(ts.Path(bob, rotID)+obaoExt, 64); err != nil {
		t.Fatal(err)
	}
	rot[777] ^= 4
	if err := os.WriteFile(ts.Path(bob, rotID), rot, 0o600); err != nil {
		t.Fatal(err)
	}
	// A usage record that does not add up.
	if err := ts.db.Put(kv.Held, usageKey(ann), encodeUsage(1, 99)); err != nil {
		t.Fatal(err)
	}
	// Something this package does not know is left alone.
	unknown := filepath.Join(ts.dir, "README")
	if err := os.WriteFile(unknown, []byte("hi"), 0o600); err != nil {
		t.Fatal(err)
	}

	rep := ts.reopen(t)
	if rep.TempFiles != 1 || rep.Orphans != 2 || rep.OrphanBytes != 5008 || rep.UsageFixed != 2 || len(rep.Lost) != 3 || rep.Trees != 2 {
		t.Fatalf("Repair = %+v, want 1 temp file, 2 orphans of 5008 bytes, 3 lost shards, 2 usage records fixed, 2 trees made again", rep)
	}
	lostIDs := map[[32]byte]string{}
	for _, l := range rep.Lost {
		lostIDs[l.ID] = l.Why
	}
	if lostIDs[lostID] != "shard file missing" || !strings.Contains(lostIDs[truncID], "shard file of 100 bytes") ||
		!strings.Contains(lostIDs[rotID], "outboard tree of 64 bytes") || !strings.Contains(lostIDs[rotID], "now hash to") {
		t.Errorf("Lost = %+v", rep.Lost)
	}
	if rep.Empty() || !strings.Contains(rep.String(), "dropped 3 damaged shards") || !strings.Contains(rep.String(), "made 2 outboard trees again") {
		t.Errorf("Repair.String() = %q", rep)
	}

	ts.wantUsage(t, ann, int64(len(keep)+len(emptyTree)+len(noTree)), 3)
	ts.wantUsage(t, bob, 0, 0)
	var want []string
	for _, id := range [][32]byte{keepID, emptyTreeID, noTreeID} {
		want = append(want, fmt.Sprintf("%x", id), fmt.Sprintf("%x.obao", id))
	}
	slices.Sort(want)
	if got := ts.files(t, ann); !slices.Equal(got, want) {
		t.Errorf("ann's files = %q, want %q", got, want)
	}
	for id, tree := range trees {
		if got, err := os.ReadFile(ts.Path(ann, id) + obaoExt); err != nil || !bytes.Equal(got, tree) {
			t.Errorf("the tree of shard %x made again differs from the one Put wrote (err %v)", id[:4], err)
		}
	}
	if _, err := os.Stat(bobDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("bob's empty directory is still there: %v", err)
	}
	if _, err := os.Stat(unknown); err != nil {
		t.Errorf("a file of unknown purpose was removed: %v", err)
	}
	for _, id := range [][32]byte{lostID, orphanID} {
		if ok, _ := ts.Has(ctx, ann, id); ok {
			t.Errorf("shard %x is still held", id[:4])
		}
	}
	slice, err := ts.Prove(ctx, ann, keepID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := proof.Verify(keepID, uint64(len(keep)), 0, 100, slice); err != nil {
		t.Fatalf("the shard kept no longer proves: %v", err)
	}

	if rep := ts.reopen(t); !rep.Empty() {
		t.Fatalf("second Open repaired %v, want nothing", rep)
	}
}

// A Store serves as a shard target for one owner: the suite every
// store.ShardTarget passes.
func TestAsShardTarget(t *testing.T) {
	storetest.TestTarget(t, func(t *testing.T) storetest.Target {
		return &target{s: newStore(t).Store, owner: newOwner(t)}
	})
	storetest.TestTruncated(t, func(t *testing.T) (storetest.Target, func(id [32]byte, n int)) {
		tg := &target{s: newStore(t).Store, owner: newOwner(t)}
		return tg, func(id [32]byte, n int) {
			if err := os.Truncate(tg.s.Path(tg.owner, id), int64(n)); err != nil {
				t.Fatal(err)
			}
		}
	})
}

type target struct {
	s     *Store
	owner peer.ID
}

func (tg *target) Name() string { return "holdstore" }

func (tg *target) PutShard(ctx context.Context, id [32]byte, data []byte) error {
	return tg.s.Put(ctx, tg.owner, id, int64(len(data)), bytes.NewReader(data), noQuota)
}

func (tg *target) GetShard(ctx context.Context, id [32]byte) ([]byte, error) {
	r, _, err := tg.s.Open(ctx, tg.owner, id)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	return b, err
}

func (tg *target) HasShard(ctx context.Context, id [32]byte) (bool, error) {
	return tg.s.Has(ctx, tg.owner, id)
}

func (tg *target) DeleteShard(ctx context.Context, id [32]byte) error {
	return tg.s.Delete(ctx, tg.owner, id)
}
