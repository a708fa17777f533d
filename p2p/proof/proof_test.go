package proof

import (
	"bytes"
	"errors"
	"testing"

	"github.com/zeebo/blake3"
	"lukechampine.com/blake3/bao"
)

// The Bao root with our group size is the plain BLAKE3-256 hash, which is
// the shard ID: Put checks IDs with it and proofs verify against it.
func TestBaoRootIsBLAKE3(t *testing.T) {
	for _, n := range []int{0, 1, 1023, 1024, 1025, GroupSize - 1, GroupSize, GroupSize + 1,
		2 * GroupSize, 3*GroupSize + 7, 64 * GroupSize, 100*GroupSize + 1} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + i>>8)
		}
		tree, root := bao.EncodeBuf(b, Group, true)
		if want := blake3.Sum256(b); root != want {
			t.Errorf("%d bytes: Bao root %x, BLAKE3 %x", n, root[:8], want[:8])
		}
		if len(tree) != bao.EncodedSize(n, Group, true) {
			t.Errorf("%d bytes: tree of %d bytes, want %d", n, len(tree), bao.EncodedSize(n, Group, true))
		}
	}
}

// A proof is small: the range's groups and one Merkle path.
func TestProofSizeBound(t *testing.T) {
	const bound = MaxLength + 2*GroupSize + 8 + 64*2*16
	for _, size := range []uint64{MaxShardSize, MaxShardSize - 1, 3 << 20} {
		for _, off := range []uint64{0, 1, GroupSize - 1, size / 3, size - MaxLength} {
			if n := Size(size, off, MaxLength); n > bound {
				t.Errorf("proof of %d bytes at %d of %d takes %d bytes, more than %d", MaxLength, off, size, n, bound)
			}
		}
	}
}

// FuzzVerify checks that no slice, range or size panics Verify,
// and that it never vouches for bytes other than the shard's. The seeds are
// small proofs, from the shard's last, partial group, at the end of a Merkle
// path three nodes deep (whole-group proofs make the fuzzer crawl: every
// input it keeps, it minimizes byte by byte).
func FuzzVerify(f *testing.F) {
	const n = 7*GroupSize + 50
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 31 >> 3)
	}
	id := blake3.Sum256(b)
	tree, _ := bao.EncodeBuf(b, Group, true)
	prove := func(off, length uint64) []byte {
		var buf bytes.Buffer
		start := off / GroupSize * GroupSize
		end := min((off+length+GroupSize-1)/GroupSize*GroupSize, n)
		if err := bao.ExtractSlice(&buf, bytes.NewReader(b[start:end]), bytes.NewReader(tree), Group, off, length); err != nil {
			f.Fatal(err)
		}
		return buf.Bytes()
	}
	for _, c := range []struct{ offset, length uint64 }{{n - 1, 1}, {n - 50, 50}, {n - 20, 7}} {
		f.Add(prove(c.offset, c.length), uint64(n), c.offset, c.length)
	}
	f.Add([]byte{}, uint64(0), uint64(0), uint64(0))
	f.Add(make([]byte, 8), uint64(1), uint64(0), uint64(1))
	f.Fuzz(func(t *testing.T, slice []byte, size, offset, length uint64) {
		data, err := Verify(id, size, offset, length, slice)
		if err != nil {
			if data != nil {
				t.Fatal("Verify returned bytes with an error")
			}
			if !errors.Is(err, ErrBad) && !errors.Is(err, ErrRange) {
				t.Fatalf("Verify: %v, want ErrBad or ErrRange", err)
			}
			return
		}
		if size != n {
			t.Fatalf("Verify accepted a proof for a shard of %d bytes, not %d", size, n)
		}
		if !bytes.Equal(data, b[offset:offset+length]) {
			t.Fatalf("Verify vouched for bytes %d+%d that are not the shard's", offset, length)
		}
	})
}
