package holdstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"testing"

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

// A flipped bit on the friend's disk fails every proof of a range in its
// group, at the owner; other groups still prove.
func TestProofDetectsFlippedBit(t *testing.T) {
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

	for _, c := range []struct {
		proofCase
		ok bool
	}{
		{proofCase{bad, 1}, false},
		{proofCase{4 * proof.GroupSize, 1}, false}, // same group, other byte
		{proofCase{bad - 5000, proof.MaxLength}, false},
		{proofCase{0, proof.GroupSize}, true},
		{proofCase{5 * proof.GroupSize, 10}, true},
		{proofCase{n - 1, 1}, true},
	} {
		slice, err := ts.Prove(t.Context(), owner, id, c.offset, c.length)
		if err != nil {
			t.Fatalf("Prove(%d, %d): %v", c.offset, c.length, err)
		}
		_, err = proof.Verify(id, n, c.offset, c.length, slice)
		switch {
		case c.ok && err != nil:
			t.Errorf("VerifyProof(%d, %d) away from the damage: %v", c.offset, c.length, err)
		case !c.ok && !errors.Is(err, proof.ErrBad):
			t.Errorf("VerifyProof(%d, %d) over the damage: %v, want ErrBadProof", c.offset, c.length, err)
		}
	}
}

// A damaged outboard tree fails the proofs whose path it is on.
func TestProofDetectsDamagedTree(t *testing.T) {
	ts := newStore(t)
	owner := newOwner(t)
	const n = 8 * proof.GroupSize
	id, b := newShard(n)
	ts.put(t, owner, id, b)
	tree := ts.Path(owner, id) + obaoExt
	enc, err := os.ReadFile(tree)
	if err != nil {
		t.Fatal(err)
	}
	enc[8] ^= 1 // the root's left child
	if err := os.WriteFile(tree, enc, 0o600); err != nil {
		t.Fatal(err)
	}
	slice, err := ts.Prove(t.Context(), owner, id, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := proof.Verify(id, n, 0, 10, slice); !errors.Is(err, proof.ErrBad) {
		t.Fatalf("VerifyProof with a damaged tree: %v, want ErrBadProof", err)
	}
}

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

	id2, b2 := newShard(n)
	ts.put(t, owner, id2, b2)
	if err := os.Truncate(ts.Path(owner, id2)+obaoExt, 8); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Prove(t.Context(), owner, id2, 0, 1); !errors.Is(err, proof.ErrCorrupt) {
		t.Fatalf("Prove with a truncated tree: %v, want ErrCorrupt", err)
	}
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
