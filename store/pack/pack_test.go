package pack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/plug-net/plug/store/data"
)

func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	rand.NewChaCha8(s).Read(b)
	return b
}

func TestPackRoundTrip(t *testing.T) {
	b := NewBuilder(0)
	var want []Entry
	var blobs [][]byte
	for i, n := range []int{1, 0, 1000, 256 << 10} {
		blob := randBytes(uint64(i), n)
		id := data.ID(blake3.Sum256(blob))
		want = append(want, b.Add(data.DataBlob, data.NoCompression, id, blob, n))
		blobs = append(blobs, blob)
	}
	want = append(want, b.Add(data.TreeBlob, data.Zstd, data.ID{9}, []byte("zz"), 100))
	blobs = append(blobs, []byte("zz"))
	plain := b.Finish()
	got, err := Parse(plain)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Parse found %d blobs, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("blob %d: got %+v, want %+v", i, got[i], want[i])
		}
		if e := got[i]; !bytes.Equal(plain[e.Offset:e.Offset+e.Length], blobs[i]) {
			t.Errorf("blob %d: bytes at its offset differ", i)
		}
	}
	b.Reset()
	if b.Len() != 0 || b.Count() != 0 {
		t.Fatal("Reset left blobs behind")
	}
}

func TestPackFits(t *testing.T) {
	b := NewBuilder(0)
	if !b.Fits(MaxBlobSize) {
		t.Fatal("an empty pack refuses a blob")
	}
	b.Add(data.DataBlob, data.NoCompression, data.ID{}, make([]byte, TargetPackSize-10), TargetPackSize-10)
	if b.Fits(11) {
		t.Fatal("pack accepts a blob past TargetPackSize")
	}
	if !b.Fits(10) {
		t.Fatal("pack refuses a blob that reaches TargetPackSize exactly")
	}
}

func TestParsePackRejects(t *testing.T) {
	good := func() []byte {
		b := NewBuilder(0)
		b.Add(data.DataBlob, data.NoCompression, data.ID{1}, []byte("hello"), 5)
		b.Add(data.DataBlob, data.NoCompression, data.ID{2}, []byte("world!"), 6)
		return bytes.Clone(b.Finish())
	}
	countAt := func(p []byte) int { return len(p) - trailerFooter }
	tests := []struct {
		name   string
		mutate func([]byte) []byte
	}{
		{"empty", func([]byte) []byte { return nil }},
		{"no magic", func(p []byte) []byte { p[len(p)-1] ^= 1; return p }},
		{"huge count", func(p []byte) []byte { binary.LittleEndian.PutUint32(p[countAt(p):], 1<<31); return p }},
		{"count off by one", func(p []byte) []byte { binary.LittleEndian.PutUint32(p[countAt(p):], 1); return p }},
		{"length past area", func(p []byte) []byte {
			binary.LittleEndian.PutUint32(p[countAt(p)-trailerEntry+34:], 1<<20)
			return p
		}},
		{"unknown type", func(p []byte) []byte { p[countAt(p)-trailerEntry] = 99; return p }},
		{"unknown compression", func(p []byte) []byte { p[countAt(p)-trailerEntry+1] = 7; return p }},
		{"two lengths uncompressed", func(p []byte) []byte {
			binary.LittleEndian.PutUint32(p[countAt(p)-trailerEntry+38:], 7)
			return p
		}},
		{"truncated", func(p []byte) []byte { return p[3:] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse(tt.mutate(good())); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse = %v, want ErrMalformed", err)
			}
		})
	}
}

// FuzzParsePack feeds arbitrary bytes (a friend's disk is untrusted) to the
// trailer parser: it must never panic, and what it accepts must tile the blob
// area exactly.
func FuzzParsePack(f *testing.F) {
	b := NewBuilder(0)
	b.Add(data.DataBlob, data.NoCompression, data.ID{1}, []byte("hello"), 5)
	b.Add(data.TreeBlob, data.Zstd, data.ID{2}, []byte("xx"), 50)
	f.Add(bytes.Clone(b.Finish()))
	f.Add([]byte(packMagic))
	f.Add(append([]byte{0xff, 0xff, 0xff, 0xff}, packMagic...))
	f.Fuzz(func(t *testing.T, p []byte) {
		entries, err := Parse(p)
		if err != nil {
			return
		}
		end := uint64(0)
		for _, e := range entries {
			if uint64(e.Offset) != end {
				t.Fatalf("entry at %d, want %d", e.Offset, end)
			}
			end += uint64(e.Length)
		}
		if end+uint64(len(entries))*trailerEntry+uint64(trailerFooter) != uint64(len(p)) {
			t.Fatal("accepted entries do not tile the pack")
		}
	})
}

// TestPlainSizeHoldsTheTrailer: a builder made at PlainSize of its blobs
// finishes in the buffer it was made with: the trailer fits, nothing is
// copied to grow it (the writer sizes metadata packs this way).
func TestPlainSizeHoldsTheTrailer(t *testing.T) {
	const blobs, size = 5, 1000
	b := NewBuilder(PlainSize(blobs*size, blobs))
	start := &b.buf[:1][0]
	for i := range blobs {
		b.Add(data.TreeBlob, data.NoCompression, data.ID{byte(i)}, make([]byte, size), size)
	}
	plain := b.Finish()
	if len(plain) != PlainSize(blobs*size, blobs) {
		t.Fatalf("plaintext of %d bytes, PlainSize says %d", len(plain), PlainSize(blobs*size, blobs))
	}
	if &plain[0] != start {
		t.Fatal("the builder's buffer grew: PlainSize left no room for the trailer")
	}
	if es, err := Parse(plain); err != nil || len(es) != blobs {
		t.Fatalf("Parse: %d entries, %v", len(es), err)
	}
}
