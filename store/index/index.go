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
	// HeaderSize and EntrySize are the sizes of a pack's header and of one
	// of its entries.
	HeaderSize = 32 + 4
	EntrySize  = indexEntrySize
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
	b = AppendHeader(b, pe.Pack, len(pe.Entries))
	for _, e := range pe.Entries {
		b = AppendEntry(b, e)
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
	sg := Segmenter{Max: max, Emit: func(seg []byte) error {
		segs = append(segs, append([]byte(nil), seg...))
		return nil
	}}
	var b []byte
	for _, pe := range packs {
		b = AppendPacked(b[:0], pe)
		_ = sg.AddPacked(b) // Emit never fails here
	}
	_ = sg.Flush()
	return segs
}

// A Segmenter cuts a stream of packs into segments of at most Max bytes (a
// pack with more entries than fit gets a segment of its own), holding one
// segment at a time: a million chunks' index is written in 4 MiB, not
// 46 MB.
type Segmenter struct {
	Max int
	// Emit is given each segment. The bytes are reused once it returns.
	Emit func(seg []byte) error

	buf     []byte
	packs   int // packs in buf
	emitted int
}

// AddPacked adds one pack, in the form AppendPacked gives.
func (s *Segmenter) AddPacked(b []byte) error {
	if s.buf == nil {
		s.buf = append(make([]byte, 0, min(s.Max, 1<<20)), indexMagic...)
	}
	if len(s.buf)+len(b) > s.Max && s.packs > 0 {
		if err := s.emit(); err != nil {
			return err
		}
	}
	s.buf = append(s.buf, b...)
	s.packs++
	return nil
}

// Flush emits the segment being filled, or an empty one if none was ever
// emitted (an index always has a segment).
func (s *Segmenter) Flush() error {
	if s.packs == 0 && s.emitted > 0 {
		return nil
	}
	if s.buf == nil {
		s.buf = []byte(indexMagic)
	}
	return s.emit()
}

func (s *Segmenter) emit() error {
	err := s.Emit(s.buf)
	s.buf, s.packs = s.buf[:len(indexMagic)], 0
	s.emitted++
	return err
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

// DecodePacked parses packs in the form AppendPacked gives, checking every
// length.
func DecodePacked(b []byte) ([]Packed, error) {
	var out []Packed
	for len(b) > 0 {
		id, n, err := packHeader(b)
		if err != nil {
			return nil, err
		}
		pe := Packed{Pack: id, Entries: make([]pack.Entry, n)}
		b = b[36:]
		for i := range pe.Entries {
			if pe.Entries[i], err = entry(b, i, id); err != nil {
				return nil, err
			}
			b = b[indexEntrySize:]
		}
		out = append(out, pe)
	}
	return out, nil
}

// CheckPacked checks one pack in the form AppendPacked gives, as
// DecodePacked would, without keeping anything, and returns its ID.
func CheckPacked(b []byte) (data.ID, error) {
	id, n, err := packHeader(b)
	if err != nil {
		return id, err
	}
	if b = b[36:]; len(b) != n*indexEntrySize {
		return id, fmt.Errorf("%w: pack %s: %d bytes after %d entries", ErrMalformed, id.Short(), len(b)-n*indexEntrySize, n)
	}
	for i := range n {
		if _, err := entry(b[i*indexEntrySize:], i, id); err != nil {
			return id, err
		}
	}
	return id, nil
}

// packHeader reads a pack's ID and entry count, and checks that the count
// fits both b and a pack.
func packHeader(b []byte) (data.ID, int, error) {
	var id data.ID
	if len(b) < 36 {
		return id, 0, fmt.Errorf("%w: truncated pack header", ErrMalformed)
	}
	copy(id[:], b)
	n := binary.LittleEndian.Uint32(b[32:])
	if uint64(n) > uint64(len(b)-36)/indexEntrySize || n > pack.MaxBlobsPerPack {
		return id, 0, fmt.Errorf("%w: pack %s claims %d blobs", ErrMalformed, id.Short(), n)
	}
	return id, int(n), nil
}

// entry decodes and checks entry i of pack id at the start of b (at least
// indexEntrySize bytes).
func entry(b []byte, i int, id data.ID) (pack.Entry, error) {
	var e pack.Entry
	e.Type, e.Compression = data.BlobType(b[0]), data.Compression(b[1])
	copy(e.ID[:], b[2:34])
	e.Offset = binary.LittleEndian.Uint32(b[34:])
	e.Length = binary.LittleEndian.Uint32(b[38:])
	e.RawLength = binary.LittleEndian.Uint32(b[42:])
	if e.Type < data.DataBlob || e.Type > data.StateBlob || e.Compression > data.Zstd ||
		e.Length > pack.MaxBlobSize || e.RawLength > pack.MaxBlobSize || uint64(e.Offset)+uint64(e.Length) > uint64(pack.MaxPackSize) {
		return e, fmt.Errorf("%w: bad entry %d of pack %s", ErrMalformed, i, id.Short())
	}
	return e, nil
}

// AppendHeader serializes a pack's header: its ID and how many entries
// follow.
func AppendHeader(b []byte, id data.ID, n int) []byte {
	b = append(b, id[:]...)
	return binary.LittleEndian.AppendUint32(b, uint32(n))
}

// AppendEntry serializes one entry, as AppendPacked does after a pack's
// header.
func AppendEntry(b []byte, e pack.Entry) []byte {
	b = append(b, byte(e.Type), byte(e.Compression))
	b = append(b, e.ID[:]...)
	b = binary.LittleEndian.AppendUint32(b, e.Offset)
	b = binary.LittleEndian.AppendUint32(b, e.Length)
	return binary.LittleEndian.AppendUint32(b, e.RawLength)
}
