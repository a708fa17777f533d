package store

import (
	"encoding/binary"
	"errors"
	"fmt"
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
	// MaxIndexSegment bounds one serialized segment.
	MaxIndexSegment = 64 << 20
)

// ErrBadIndex is wrapped by every error about a malformed index segment.
var ErrBadIndex = errors.New("malformed index segment")

// PackEntries are the blobs of one pack.
type PackEntries struct {
	Pack    ID
	Entries []BlobEntry
}

// encodeEntries serializes one pack's entries (no magic), for pending
// storage and segments alike.
func appendPackEntries(b []byte, pe PackEntries) []byte {
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

// EncodeIndex serializes a segment.
func EncodeIndex(packs []PackEntries) []byte {
	b := []byte(indexMagic)
	for _, pe := range packs {
		b = appendPackEntries(b, pe)
	}
	return b
}

// DecodeIndex parses a segment, checking every length.
func DecodeIndex(b []byte) ([]PackEntries, error) {
	if len(b) > MaxIndexSegment {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadIndex, len(b))
	}
	if len(b) < len(indexMagic) || string(b[:len(indexMagic)]) != indexMagic {
		return nil, fmt.Errorf("%w: no magic", ErrBadIndex)
	}
	return decodePackEntries(b[len(indexMagic):])
}

func decodePackEntries(b []byte) ([]PackEntries, error) {
	var out []PackEntries
	for len(b) > 0 {
		if len(b) < 36 {
			return nil, fmt.Errorf("%w: truncated pack header", ErrBadIndex)
		}
		var pe PackEntries
		copy(pe.Pack[:], b)
		n := binary.LittleEndian.Uint32(b[32:])
		b = b[36:]
		if uint64(n) > uint64(len(b))/indexEntrySize || n > MaxBlobsPerPack {
			return nil, fmt.Errorf("%w: pack %s claims %d blobs", ErrBadIndex, pe.Pack.Short(), n)
		}
		pe.Entries = make([]BlobEntry, n)
		for i := range pe.Entries {
			e := &pe.Entries[i]
			e.Type, e.Compression = BlobType(b[0]), Compression(b[1])
			copy(e.ID[:], b[2:34])
			e.Offset = binary.LittleEndian.Uint32(b[34:])
			e.Length = binary.LittleEndian.Uint32(b[38:])
			e.RawLength = binary.LittleEndian.Uint32(b[42:])
			if e.Type < DataBlob || e.Type > StateBlob || e.Compression > Zstd ||
				e.Length > MaxBlobSize || e.RawLength > MaxBlobSize || uint64(e.Offset)+uint64(e.Length) > MaxPackSize {
				return nil, fmt.Errorf("%w: bad entry %d of pack %s", ErrBadIndex, i, pe.Pack.Short())
			}
			b = b[indexEntrySize:]
		}
		out = append(out, pe)
	}
	return out, nil
}
