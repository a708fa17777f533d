package index

import (
	"errors"
	"reflect"
	"testing"

	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/pack"
)

func TestIndexRoundTrip(t *testing.T) {
	in := []Packed{
		{Pack: data.ID{1}, Entries: []pack.Entry{{Type: data.DataBlob, ID: data.ID{2}, Offset: 0, Length: 10, RawLength: 10}, {Type: data.TreeBlob, Compression: data.Zstd, ID: data.ID{3}, Offset: 10, Length: 5, RawLength: 50}}},
		{Pack: data.ID{4}},
	}
	got, err := Decode(Encode(in))
	if err != nil {
		t.Fatal(err)
	}
	in[1].Entries = []pack.Entry{}
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, in)
	}
	for _, bad := range [][]byte{nil, []byte("plugidx"), append([]byte(indexMagic), 1, 2, 3), append(Encode(in[:1]), 9)} {
		if _, err := Decode(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%x) = %v, want ErrMalformed", bad, err)
		}
	}
}

// FuzzDecodeIndex: index segments come back from friends' disks.
func FuzzDecodeIndex(f *testing.F) {
	f.Add(Encode([]Packed{{Pack: data.ID{1}, Entries: []pack.Entry{{Type: data.DataBlob, ID: data.ID{2}, Length: 10, RawLength: 10}}}}))
	f.Add([]byte(indexMagic + "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// CheckPacked accepts exactly what DecodePacked reads as one pack.
		if len(b) >= len(indexMagic) {
			one, err := DecodePacked(b[len(indexMagic):])
			id, cerr := CheckPacked(b[len(indexMagic):])
			if (cerr == nil) != (err == nil && len(one) == 1) {
				t.Fatalf("CheckPacked: %v; DecodePacked: %d packs, %v", cerr, len(one), err)
			}
			if cerr == nil && id != one[0].Pack {
				t.Fatalf("CheckPacked gave pack %s, DecodePacked %s", id.Short(), one[0].Pack.Short())
			}
		}
		packs, err := Decode(b)
		if err != nil {
			return
		}
		if !reflect.DeepEqual(Encode(packs), b) {
			t.Fatal("accepted segment does not re-encode to itself")
		}
	})
}

func TestSegments(t *testing.T) {
	var packs []Packed
	for i := range 100 {
		packs = append(packs, Packed{Pack: data.ID{byte(i)}, Entries: make([]pack.Entry, 10)})
	}
	for i := range packs {
		for j := range packs[i].Entries {
			packs[i].Entries[j] = pack.Entry{Type: data.DataBlob, ID: data.ID{byte(i), byte(j)}, Offset: uint32(j), Length: 1, RawLength: 1}
		}
	}
	const max = 2000
	segs := Segments(packs, max)
	var back []Packed
	for _, s := range segs {
		if len(s) > max {
			t.Fatalf("segment of %d bytes, over %d", len(s), max)
		}
		got, err := Decode(s)
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, got...)
	}
	if len(segs) < 2 || !reflect.DeepEqual(back, packs) {
		t.Fatalf("%d segments gave back %d packs, want the %d given", len(segs), len(back), len(packs))
	}
	if segs := Segments(nil, max); len(segs) != 1 {
		t.Fatalf("no packs gave %d segments, want one empty one", len(segs))
	}
}
