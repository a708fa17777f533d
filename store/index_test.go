package store

import (
	"errors"
	"reflect"
	"testing"
)

func TestIndexRoundTrip(t *testing.T) {
	in := []PackEntries{
		{Pack: ID{1}, Entries: []BlobEntry{{Type: DataBlob, ID: ID{2}, Offset: 0, Length: 10, RawLength: 10}, {Type: TreeBlob, Compression: Zstd, ID: ID{3}, Offset: 10, Length: 5, RawLength: 50}}},
		{Pack: ID{4}},
	}
	got, err := DecodeIndex(EncodeIndex(in))
	if err != nil {
		t.Fatal(err)
	}
	in[1].Entries = []BlobEntry{}
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, in)
	}
	for _, bad := range [][]byte{nil, []byte("plugidx"), append([]byte(indexMagic), 1, 2, 3), append(EncodeIndex(in[:1]), 9)} {
		if _, err := DecodeIndex(bad); !errors.Is(err, ErrBadIndex) {
			t.Errorf("DecodeIndex(%x) = %v, want ErrBadIndex", bad, err)
		}
	}
}

// FuzzDecodeIndex: index segments come back from friends' disks.
func FuzzDecodeIndex(f *testing.F) {
	f.Add(EncodeIndex([]PackEntries{{Pack: ID{1}, Entries: []BlobEntry{{Type: DataBlob, ID: ID{2}, Length: 10, RawLength: 10}}}}))
	f.Add([]byte(indexMagic + "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		packs, err := DecodeIndex(b)
		if err != nil {
			return
		}
		if !reflect.DeepEqual(EncodeIndex(packs), b) {
			t.Fatal("accepted segment does not re-encode to itself")
		}
	})
}
