package holdstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/plug-net/plug/p2p/proof"
)

type proofCase struct{ offset, length uint64 }

// proofCases returns ranges that matter for a shard of size bytes, and some
// random ones.
func proofCases(size uint64, rng *rand.Rand) []proofCase {
	cases := []proofCase{{0, 1}, {size - 1, 1}, {0, min(size, proof.MaxLength)}, {size - min(size, proof.MaxLength), min(size, proof.MaxLength)}}
	if size > proof.GroupSize {
		last := (size - 1) / proof.GroupSize * proof.GroupSize // the last, maybe partial, group
		cases = append(cases,
			proofCase{last, size - last},
			proofCase{proof.GroupSize - 1, 2}, // straddles two groups
			proofCase{proof.GroupSize, 1},
		)
	}
	for range 20 {
		off := rng.Uint64N(size)
		cases = append(cases, proofCase{off, 1 + rng.Uint64N(min(size-off, proof.MaxLength))})
	}
	return cases
}

func TestProveVerify(t *testing.T) {
	ts := newStore(t)
	owner := newOwner(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 1000, proof.GroupSize, proof.GroupSize + 1, 5*proof.GroupSize + 3, 1<<20 + 123, 8<<20 + 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			id, b := newShard(n)
			ts.put(t, owner, id, b)
			treeName, _ := ts.tree(t, owner, id)
			before, err := os.Stat(treeName)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				// Answered from the tree Put wrote, never one made again.
				if after, err := os.Stat(treeName); err != nil || !os.SameFile(before, after) {
					t.Errorf("the outboard tree was replaced (err %v)", err)
				}
			}()
			for _, c := range proofCases(uint64(n), rng) {
				slice, err := ts.Prove(t.Context(), owner, id, c.offset, c.length)
				if err != nil {
					t.Fatalf("Prove(%d, %d): %v", c.offset, c.length, err)
				}
				if got, want := uint64(len(slice)), proof.Size(uint64(n), c.offset, c.length); got != want {
					t.Fatalf("Prove(%d, %d) gave %d bytes, proofSize says %d", c.offset, c.length, got, want)
				}
				got, err := proof.Verify(id, uint64(n), c.offset, c.length, slice)
				if err != nil {
					t.Fatalf("VerifyProof(%d, %d): %v", c.offset, c.length, err)
				}
				if !bytes.Equal(got, b[c.offset:c.offset+c.length]) {
					t.Fatalf("VerifyProof(%d, %d) returned other bytes", c.offset, c.length)
				}
			}
		})
	}
}

func TestProveRange(t *testing.T) {
	ts := newStore(t)
	owner := newOwner(t)
	id, b := newShard(3 * proof.GroupSize)
	ts.put(t, owner, id, b)
	size := uint64(len(b))
	for _, c := range []proofCase{
		{0, 0},
		{0, proof.MaxLength + 1},
		{size, 1},
		{size - 1, 2},
		{math.MaxUint64, 2}, // offset+length overflows
		{1, math.MaxUint64},
	} {
		t.Run(fmt.Sprintf("%d+%d", c.offset, c.length), func(t *testing.T) {
			if _, err := ts.Prove(t.Context(), owner, id, c.offset, c.length); !errors.Is(err, proof.ErrRange) {
				t.Errorf("Prove: %v, want ErrRange", err)
			}
			if _, err := proof.Verify(id, size, c.offset, c.length, make([]byte, 100)); !errors.Is(err, proof.ErrRange) {
				t.Errorf("VerifyProof: %v, want ErrRange", err)
			}
		})
	}
	for _, size := range []uint64{0, proof.MaxShardSize + 1} {
		if _, err := proof.Verify(id, size, 0, 1, make([]byte, 100)); !errors.Is(err, proof.ErrRange) {
			t.Errorf("VerifyProof for a shard of %d bytes: %v, want ErrRange", size, err)
		}
	}
}

func TestProveNotHeld(t *testing.T) {
	ts := newStore(t)
	id, _ := newShard(100)
	if _, err := ts.Prove(t.Context(), newOwner(t), id, 0, 1); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Prove of a shard not held: %v, want fs.ErrNotExist", err)
	}
}

// A flipped bit on the friend's disk: proofs of other groups still verify;
// the first proof of a range in its group fails at the friend, which says
// the shard is damaged, with why, and drops it (as Open would).
func TestProofDetectsFlippedBit(t *testing.T) {
	for _, c := range []proofCase{
		{4*proof.GroupSize + 1000, 1},
		{4 * proof.GroupSize, 1}, // same group, other byte
		{4*proof.GroupSize - 4000, proof.MaxLength},
	} {
		ts := newStore(t)
		owner := newOwner(t)
		const n = 10*proof.GroupSize + 100
		id, b := newShard(n)
		ts.put(t, owner, id, b)
		const bad = 4*proof.GroupSize + 1000 // in group 4
		f, err := os.OpenFile(ts.Path(owner, id), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte{b[bad] ^ 0x10}, bad); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}

		for _, away := range []proofCase{{0, proof.GroupSize}, {5 * proof.GroupSize, 10}, {n - 1, 1}} {
			slice, err := ts.Prove(t.Context(), owner, id, away.offset, away.length)
			if err != nil {
				t.Fatalf("Prove(%d, %d) away from the damage: %v", away.offset, away.length, err)
			}
			if _, err := proof.Verify(id, n, away.offset, away.length, slice); err != nil {
				t.Errorf("VerifyProof(%d, %d) away from the damage: %v", away.offset, away.length, err)
			}
		}
		_, err = ts.Prove(t.Context(), owner, id, c.offset, c.length)
		if !errors.Is(err, proof.ErrCorrupt) || !strings.Contains(err.Error(), "now hash to") {
			t.Errorf("Prove(%d, %d) over the damage: %v, want ErrCorrupt (the bytes no longer hash to the ID)", c.offset, c.length, err)
		}
		if _, err := ts.Prove(t.Context(), owner, id, 0, 1); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Prove after the damage was found: %v, want fs.ErrNotExist (the shard dropped)", err)
		}
		ts.wantUsage(t, owner, 0, 0)
		if got := ts.files(t, owner); len(got) != 0 {
			t.Errorf("files left of the damaged shard: %q", got)
		}
	}
}

// Put does not sync the outboard tree, so a crash can leave it garbled,
// short, missing or zeroed: Prove makes it again from the shard's bytes and
// answers with a proof that verifies.
func TestProveMakesTheTreeAgain(t *testing.T) {
	for _, c := range []struct {
		name   string
		damage func(tree []byte) []byte // nil: remove the file
	}{
		{"garbled", func(tree []byte) []byte { tree[8] ^= 1; return tree }}, // the root's left child
		{"garbled leaf", func(tree []byte) []byte { tree[len(tree)-1] ^= 1; return tree }},
		{"zeroed", func(tree []byte) []byte { return make([]byte, len(tree)) }},
		{"short", func(tree []byte) []byte { return tree[:8] }},
		{"empty", func([]byte) []byte { return nil }},
		{"missing", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts := newStore(t)
			owner := newOwner(t)
			const n = 8*proof.GroupSize + 7
			id, b := newShard(n)
			ts.put(t, owner, id, b)
			treeName, tree := ts.tree(t, owner, id)
			var err error
			if c.damage == nil {
				err = os.Remove(treeName)
			} else {
				err = os.WriteFile(treeName, c.damage(slices.Clone(tree)), 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			// A proof of each group: together their paths cover the tree.
			var cases []proofCase
			for off := uint64(0); off < n; off += proof.GroupSize {
				cases = append(cases, proofCase{off, min(proof.GroupSize, n-off)})
			}
			for _, pc := range cases {
				slice, err := ts.Prove(t.Context(), owner, id, pc.offset, pc.length)
				if err != nil {
					t.Fatalf("Prove(%d, %d): %v", pc.offset, pc.length, err)
				}
				if _, err := proof.Verify(id, n, pc.offset, pc.length, slice); err != nil {
					t.Fatalf("VerifyProof(%d, %d): %v", pc.offset, pc.length, err)
				}
			}
			if got, err := os.ReadFile(treeName); err != nil || !bytes.Equal(got, tree) {
				t.Errorf("the tree made again differs from the one Put wrote (err %v)", err)
			}
			if rep := ts.reopen(t); !rep.Empty() {
				t.Errorf("Open after the tree was made again repaired %v, want nothing", rep)
			}
		})
	}
}

// A tree that cannot be put in place again (here a directory in its way;
// a full disk does the same) does not stop the proof: it is answered from
// the tree made in memory, and Open keeps the shard for a proof to make its
// tree.
func TestProveWhenTheTreeCannotBeWritten(t *testing.T) {
	ts := newStore(t)
	owner := newOwner(t)
	const n = 3*proof.GroupSize + 5
	id, b := newShard(n)
	ts.put(t, owner, id, b)
	treeName, _ := ts.tree(t, owner, id)
	if err := os.Remove(treeName); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(treeName, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		slice, err := ts.Prove(t.Context(), owner, id, n-1, 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := proof.Verify(id, n, n-1, 1, slice); err != nil {
			t.Fatal(err)
		}
	}
	rep := ts.reopen(t)
	if rep.Kept != 1 || rep.Trees != 0 || len(rep.Lost) != 0 || !strings.Contains(rep.String(), "kept 1 shards whose files could not be checked or mended") {
		t.Fatalf("Repair = %+v (%s), want 1 tree left to make, the shard kept", rep, rep)
	}
	if ok, err := ts.Has(t.Context(), owner, id); err != nil || !ok {
		t.Fatalf("Has after Open: %v, %v; want the shard kept", ok, err)
	}
	if err := os.RemoveAll(treeName); err != nil {
		t.Fatal(err)
	}
	if rep := ts.reopen(t); rep.Trees != 1 || rep.Kept != 0 {
		t.Fatalf("Repair once the way is clear = %+v, want 1 tree made again", rep)
	}
}

// tree returns the name and bytes of a held shard's outboard tree.
func (ts *testStore) tree(t *testing.T, owner peer.ID, id [32]byte) (string, []byte) {
	t.Helper()
	name := ts.Path(owner, id) + obaoExt
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return name, b
}

// A shard file cut short is damaged: its owner rebuilds it.
func TestProveTruncated(t *testing.T) {
	ts := newStore(t)
	owner := newOwner(t)
	const n = 4 * proof.GroupSize
	id, b := newShard(n)
	ts.put(t, owner, id, b)
	if err := os.Truncate(ts.Path(owner, id), n-proof.GroupSize); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Prove(t.Context(), owner, id, n-1, 1); !errors.Is(err, proof.ErrCorrupt) {
		t.Fatalf("Prove of a truncated shard: %v, want ErrCorrupt", err)
	}
	if ok, err := ts.Has(t.Context(), owner, id); err != nil || ok {
		t.Fatalf("Has after a proof found the shard cut short: %v, %v; want it dropped", ok, err)
	}
	ts.wantUsage(t, owner, 0, 0)
}

// A shard shown damaged through a file that was since deleted and put
// again is not dropped: the new file is whole.
func TestDropDamagedKeepsAShardPutAgain(t *testing.T) {
	ts := newStore(t)
	owner := newOwner(t)
	id, b := newShard(3 * proof.GroupSize)
	ts.put(t, owner, id, b)
	old, err := os.Open(ts.Path(owner, id))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = old.Close() }()
	if err := ts.Delete(t.Context(), owner, id); err != nil {
		t.Fatal(err)
	}
	ts.put(t, owner, id, b)
	if err := ts.dropDamaged(owner, id, old); err != nil {
		t.Fatal(err)
	}
	if ok, err := ts.Has(t.Context(), owner, id); err != nil || !ok {
		t.Fatalf("Has: %v, %v; want the shard put again kept", ok, err)
	}
	if err := ts.dropDamaged(owner, id, mustOpen(t, ts.Path(owner, id))); err != nil {
		t.Fatal(err)
	}
	if ok, err := ts.Has(t.Context(), owner, id); err != nil || ok {
		t.Fatalf("Has: %v, %v; want the shard dropped through its own file", ok, err)
	}
}

// Making a tree stops with its context, which is not damage.
func TestMakeTreeStopsWithItsContext(t *testing.T) {
	id, b := newShard(4 << 20)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := makeTree(ctx, bytes.NewReader(b), id, int64(len(b)))
	if !errors.Is(err, context.Canceled) || errors.Is(err, errDamaged) || errors.Is(err, proof.ErrCorrupt) {
		t.Fatalf("makeTree with its context done: %v, want context.Canceled alone", err)
	}
	tree, err := makeTree(t.Context(), bytes.NewReader(b), id, int64(len(b)))
	if err != nil || int64(len(tree)) != treeSize(int64(len(b))) {
		t.Fatalf("makeTree: %d bytes, %v", len(tree), err)
	}
	_, err = makeTree(t.Context(), bytes.NewReader(b[:len(b)-1]), id, int64(len(b)))
	if !errors.Is(err, errDamaged) || !errors.Is(err, proof.ErrCorrupt) {
		t.Fatalf("makeTree of a short body: %v, want errDamaged and ErrCorrupt", err)
	}
}

func mustOpen(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// A friend that answers with a proof of something else fails.
func TestVerifyProofRejects(t *testing.T) {
	ts := newStore(t)
	owner := newOwner(t)
	const n = 6*proof.GroupSize + 77
	id, b := newShard(n)
	ts.put(t, owner, id, b)
	otherID, other := newShard(n)
	ts.put(t, owner, otherID, other)
	const off, length = 2*proof.GroupSize + 5, 3000
	slice, err := ts.Prove(t.Context(), owner, id, off, length)
	if err != nil {
		t.Fatal(err)
	}
	otherSlice, err := ts.Prove(t.Context(), owner, otherID, off, length)
	if err != nil {
		t.Fatal(err)
	}
	sliceAt := func(off uint64) []byte {
		s, err := ts.Prove(t.Context(), owner, id, off, length)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	withSize := func(size uint64) []byte {
		s := bytes.Clone(slice)
		binary.LittleEndian.PutUint64(s, size)
		return s
	}
	flip := func(i int) []byte {
		s := bytes.Clone(slice)
		s[i] ^= 1
		return s
	}
	for _, tc := range []struct {
		name   string
		id     [32]byte
		size   uint64
		offset uint64
		slice  []byte
	}{
		{"another shard's ID", otherID, n, off, slice},
		{"another shard's proof", id, n, off, otherSlice},
		{"declared size larger", id, n, off, withSize(n + 1)},
		{"declared size smaller", id, n, off, withSize(n - 1)},
		{"owner's size larger", id, n + proof.GroupSize, off, slice},
		{"owner's size smaller", id, n - 1, off, slice},
		// (A proof of a range in the same groups carries the same bytes,
		// and rightly verifies.)
		{"proof of other groups", id, n, off, sliceAt(off + proof.GroupSize)},
		{"proof of earlier groups", id, n, off, sliceAt(off - proof.GroupSize)},
		{"truncated", id, n, off, slice[:len(slice)-1]},
		{"extended", id, n, off, append(bytes.Clone(slice), 0)},
		{"empty", id, n, off, nil},
		{"flipped hash", id, n, off, flip(8)},
		{"flipped data", id, n, off, flip(len(slice) - 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := proof.Verify(tc.id, tc.size, tc.offset, length, tc.slice)
			if !errors.Is(err, proof.ErrBad) || data != nil {
				t.Fatalf("VerifyProof = %d bytes, %v; want ErrBadProof", len(data), err)
			}
		})
	}
}
