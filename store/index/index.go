package index

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/pack"
)

// Index segments. The chunk index of a recovered plug is rebuilt from
// segments named by the head record. A segment lists packs and their blobs:
//
//	"plugidx1" | repeated: pack ID (32) | blob count u32 | count × entry
//	entry: type u8 | compression u8 | chunk ID (32) | offset u32 | length u32 | raw length u32
//
// integers little-endian. A segment is stored as index blobs (cut by the
// chunker like any metadata) in a metadata pack.
const (
	indexMagic     = "plugidx1"
	indexEntrySize = 1 + 1 + 32 + 4 + 4 + 4
	// MaxSegment bounds one serialized segment.
	MaxSegment = 64 << 20
)

// ErrMalformed is wrapped by every error about a malformed index segment.
var ErrMalformed = errors.New("malformed index segment")

// Packed are the blobs of one pack.
type Packed struct {
	Pack    data.ID
	Entries []pack.Entry
}

// AppendPacked serializes one pack's entries (no magic), for pending
// storage and segments alike.
func AppendPacked(b []byte, pe Packed) []byte {
	b = append(b, pe.Pack[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(pe.Entries)))
	for _, e := range pe.Entries {
		b = append(b, byte(e.Type), byte(e.Compression))
		b = append(b, e.ID[:]...)
		b = binary.LittleEndian.AppendUint32(b, e.Offset)
		b = binary.LittleEndian.AppendUint32(b, e.Length)
		b = binary.LittleEndian.AppendUint32(b, e.RawLength)
	}
	return b
}

// Encode serializes a segment.
func Encode(packs []Packed) []byte {
	b := []byte(indexMagic)
	for _, pe := range packs {
		b = AppendPacked(b, pe)
	}
	return b
}

// Segments encodes packs as segments of at most max bytes each (a pack
// with more entries than fit gets a segment of its own). There is always at
// least one segment, if empty.
func Segments(packs []Packed, max int) [][]byte {
	var segs [][]byte
	var cur []Packed
	size := len(indexMagic)
	for _, pe := range packs {
		n := 36 + len(pe.Entries)*indexEntrySize
		if size+n > max && len(cur) > 0 {
			segs = append(segs, Encode(cur))
			cur, size = nil, len(indexMagic)
		}
		cur = append(cur, pe)
		size += n
	}
	return append(segs, Encode(cur))
}

// Decode parses a segment, checking every length.
func Decode(b []byte) ([]Packed, error) {
	if len(b) > MaxSegment {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	if len(b) < len(indexMagic) || string(b[:len(indexMagic)]) != indexMagic {
		return nil, fmt.Errorf("%w: no magic", ErrMalformed)
	}
	return DecodePacked(b[len(indexMagic):])
}

func DecodePacked(b []byte) ([]Packed, error) {
	var out []Packed
	for len(b) > 0 {
		if len(b) < 36 {
			return nil, fmt.Errorf("%w: truncated pack header", ErrMalformed)
		}
		var pe Packed
		copy(pe.Pack[:], b)
		n := binary.LittleEndian.Uint32(b[32:])
		b = b[36:]
		if uint64(n) > uint64(len(b))/indexEntrySize || n > pack.MaxBlobsPerPack {
			return nil, fmt.Errorf("%w: pack %s claims %d blobs", ErrMalformed, pe.Pack.Short(), n)
		}
		pe.Entries = make([]pack.Entry, n)
		for i := range pe.Entries {
			e := &pe.Entries[i]
			e.Type, e.Compression = data.BlobType(b[0]), data.Compression(b[1])
			copy(e.ID[:], b[2:34])
			e.Offset = binary.LittleEndian.Uint32(b[34:])
			e.Length = binary.LittleEndian.Uint32(b[38:])
			e.RawLength = binary.LittleEndian.Uint32(b[42:])
			if e.Type < data.DataBlob || e.Type > data.StateBlob || e.Compression > data.Zstd ||
				e.Length > pack.MaxBlobSize || e.RawLength > pack.MaxBlobSize || uint64(e.Offset)+uint64(e.Length) > uint64(pack.MaxPackSize) {
				return nil, fmt.Errorf("%w: bad entry %d of pack %s", ErrMalformed, i, pe.Pack.Short())
			}
			b = b[indexEntrySize:]
		}
		out = append(out, pe)
	}
	return out, nil
}
