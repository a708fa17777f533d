package store

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// BlobType says what a blob in a pack holds.
type BlobType uint8

// Blob types. Stored in packs: never renumber.
const (
	DataBlob  BlobType = 1 // file content
	TreeBlob  BlobType = 2 // a serialized directory listing
	IndexBlob BlobType = 3 // an index segment: where the chunks of some packs are
	StateBlob BlobType = 4 // the plug's own state (friends, posts, settings)
)

func (t BlobType) String() string {
	switch t {
	case DataBlob:
		return "data"
	case TreeBlob:
		return "tree"
	case IndexBlob:
		return "index"
	case StateBlob:
		return "state"
	}
	return fmt.Sprintf("blob-type-%d", uint8(t))
}

// Compression of a blob inside a pack.
type Compression uint8

// Compression methods. Stored in packs: never renumber.
const (
	NoCompression Compression = 0
	Zstd          Compression = 1
)

// Pack layout limits.
const (
	// TargetPackSize is the plaintext size at which a pack is closed. Packs
	// hold whole blobs, so a pack is at most TargetPackSize unless a single
	// blob is larger (it then travels alone).
	TargetPackSize = 8 << 20
	// MaxBlobSize bounds one blob: a chunk is at most 4 MiB, a tree or index
	// blob is chunked the same way.
	MaxBlobSize = 16 << 20
	// MaxPackSize bounds the plaintext of any pack this code will open.
	MaxPackSize = TargetPackSize + MaxBlobSize

	packMagic     = "plugpak1"
	trailerEntry  = 1 + 1 + 32 + 4 + 4 // type, compression, id, stored length, raw length
	trailerFooter = 4 + len(packMagic)
)

// BlobEntry describes one blob of a pack.
type BlobEntry struct {
	Type        BlobType
	Compression Compression
	ID          ID     // chunk ID of the raw (uncompressed) bytes
	Offset      uint32 // where the stored bytes start in the pack plaintext
	Length      uint32 // stored length
	RawLength   uint32 // length once decompressed
}

// PackBuilder gathers blobs into the plaintext of one pack. It is not safe for
// concurrent use. Reset reuses its buffer.
type PackBuilder struct {
	buf     []byte
	entries []BlobEntry
}

// NewPackBuilder returns a builder whose buffer holds sizeHint bytes before it
// grows.
func NewPackBuilder(sizeHint int) *PackBuilder {
	return &PackBuilder{buf: make([]byte, 0, sizeHint)}
}

// Add appends a blob's stored bytes and returns its entry. raw is the length
// of the blob once decompressed.
func (b *PackBuilder) Add(t BlobType, c Compression, id ID, stored []byte, raw int) BlobEntry {
	e := BlobEntry{Type: t, Compression: c, ID: id, Offset: uint32(len(b.buf)), Length: uint32(len(stored)), RawLength: uint32(raw)}
	b.buf = append(b.buf, stored...)
	b.entries = append(b.entries, e)
	return e
}

// Len returns the size of the blobs added so far.
func (b *PackBuilder) Len() int { return len(b.buf) }

// Count returns the number of blobs added so far.
func (b *PackBuilder) Count() int { return len(b.entries) }

// Entries returns the entries added so far. The slice is reused by Reset.
func (b *PackBuilder) Entries() []BlobEntry { return b.entries }

// Fits reports whether a blob of n stored bytes fits the pack without passing
// TargetPackSize. An empty pack takes any blob.
func (b *PackBuilder) Fits(n int) bool {
	return len(b.entries) == 0 || len(b.buf)+n <= TargetPackSize
}

// Finish appends the trailer and returns the whole plaintext. The returned
// slice aliases the builder's buffer until Reset.
func (b *PackBuilder) Finish() []byte {
	for _, e := range b.entries {
		var ent [trailerEntry]byte
		ent[0] = byte(e.Type)
		ent[1] = byte(e.Compression)
		copy(ent[2:34], e.ID[:])
		binary.LittleEndian.PutUint32(ent[34:], e.Length)
		binary.LittleEndian.PutUint32(ent[38:], e.RawLength)
		b.buf = append(b.buf, ent[:]...)
	}
	b.buf = binary.LittleEndian.AppendUint32(b.buf, uint32(len(b.entries)))
	b.buf = append(b.buf, packMagic...)
	return b.buf
}

// Reset empties the builder for the next pack, keeping its buffer.
func (b *PackBuilder) Reset() {
	b.buf = b.buf[:0]
	b.entries = b.entries[:0]
}

// ErrBadPack is wrapped by every error about a malformed pack plaintext.
var ErrBadPack = errors.New("malformed pack")

// ParsePack reads the trailer of a pack plaintext and returns its entries.
// The plaintext comes from friends' disks: every length is checked before it
// is used, and the entries must tile the blob area exactly.
func ParsePack(plain []byte) ([]BlobEntry, error) {
	if len(plain) > MaxPackSize+1<<20 {
		return nil, fmt.Errorf("%w: %d bytes, more than the %d a pack may hold", ErrBadPack, len(plain), MaxPackSize)
	}
	if len(plain) < trailerFooter || string(plain[len(plain)-len(packMagic):]) != packMagic {
		return nil, fmt.Errorf("%w: no pack trailer", ErrBadPack)
	}
	n := binary.LittleEndian.Uint32(plain[len(plain)-trailerFooter:])
	body := len(plain) - trailerFooter
	if uint64(n)*trailerEntry > uint64(body) {
		return nil, fmt.Errorf("%w: trailer claims %d blobs, more than fit in %d bytes", ErrBadPack, n, len(plain))
	}
	tstart := body - int(n)*trailerEntry
	entries := make([]BlobEntry, n)
	off := uint64(0)
	for i := range entries {
		ent := plain[tstart+i*trailerEntry : tstart+(i+1)*trailerEntry]
		e := BlobEntry{
			Type:        BlobType(ent[0]),
			Compression: Compression(ent[1]),
			Offset:      uint32(off),
			Length:      binary.LittleEndian.Uint32(ent[34:]),
			RawLength:   binary.LittleEndian.Uint32(ent[38:]),
		}
		copy(e.ID[:], ent[2:34])
		if e.Type < DataBlob || e.Type > StateBlob {
			return nil, fmt.Errorf("%w: blob %d has unknown type %d", ErrBadPack, i, ent[0])
		}
		if e.Compression > Zstd {
			return nil, fmt.Errorf("%w: blob %d has unknown compression %d", ErrBadPack, i, ent[1])
		}
		if e.RawLength > MaxBlobSize || e.Length > MaxBlobSize {
			return nil, fmt.Errorf("%w: blob %d claims %d bytes, more than %d", ErrBadPack, i, max(e.RawLength, e.Length), MaxBlobSize)
		}
		if e.Compression == NoCompression && e.Length != e.RawLength {
			return nil, fmt.Errorf("%w: blob %d is stored uncompressed with two lengths", ErrBadPack, i)
		}
		off += uint64(e.Length)
		if off > uint64(tstart) {
			return nil, fmt.Errorf("%w: blob %d runs past the blob area", ErrBadPack, i)
		}
		entries[i] = e
	}
	if off != uint64(tstart) {
		return nil, fmt.Errorf("%w: blobs cover %d bytes of a %d-byte blob area", ErrBadPack, off, tstart)
	}
	return entries, nil
}
