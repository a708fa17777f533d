package pack

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"

	"github.com/plug-net/plug/chunker"
	"github.com/plug-net/plug/store/data"
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
	// MaxPackSize bounds the plaintext of any pack this code will make or
	// open: blobs short of TargetPackSize, one more blob of up to
	// MaxBlobSize that closes it, and a full trailer.
	MaxPackSize = TargetPackSize + MaxBlobSize + MaxBlobsPerPack*trailerEntry + trailerFooter

	// MaxBlobsPerPack bounds the blobs of one pack, so that indexing a pack
	// fits one transaction (trees of small directories are small blobs).
	MaxBlobsPerPack = 4096
	// MaxPlainSize bounds the plaintext a Builder fills before the pack is
	// closed at TargetPackSize: the blobs and a full trailer.
	MaxPlainSize = TargetPackSize + MaxBlobsPerPack*trailerEntry + trailerFooter

	packMagic     = "plugpak1"
	trailerEntry  = 1 + 1 + 32 + 4 + 4 // type, compression, id, stored length, raw length
	trailerFooter = 4 + len(packMagic)
)

// PlainSize is the size of a pack's plaintext holding blobs of n stored
// bytes in all, count of them: the blobs and the trailer.
func PlainSize(n, count int) int { return n + count*trailerEntry + trailerFooter }

// Entry describes one blob of a pack.
type Entry struct {
	Type        data.BlobType
	Compression data.Compression
	ID          data.ID // chunk ID of the raw (uncompressed) bytes
	Offset      uint32  // where the stored bytes start in the pack plaintext
	Length      uint32  // stored length
	RawLength   uint32  // length once decompressed
}

// Builder gathers blobs into the plaintext of one pack. It is not safe for
// concurrent use. Reset reuses its buffer.
type Builder struct {
	buf     []byte
	entries []Entry
}

// NewBuilder returns a builder whose buffer holds sizeHint bytes before it
// grows.
func NewBuilder(sizeHint int) *Builder {
	return &Builder{buf: make([]byte, 0, sizeHint)}
}

// Add appends a blob's stored bytes and returns its entry. raw is the length
// of the blob once decompressed.
func (b *Builder) Add(t data.BlobType, c data.Compression, id data.ID, stored []byte, raw int) Entry {
	e := Entry{Type: t, Compression: c, ID: id, Offset: uint32(len(b.buf)), Length: uint32(len(stored)), RawLength: uint32(raw)}
	b.buf = append(b.buf, stored...)
	b.entries = append(b.entries, e)
	return e
}

// Len returns the size of the blobs added so far.
func (b *Builder) Len() int { return len(b.buf) }

// Count returns the number of blobs added so far.
func (b *Builder) Count() int { return len(b.entries) }

// Entries returns the entries added so far. The slice is reused by Reset.
func (b *Builder) Entries() []Entry { return b.entries }

// Fits reports whether a blob of n stored bytes fits the pack without passing
// TargetPackSize. An empty pack takes any blob.
func (b *Builder) Fits(n int) bool {
	return len(b.entries) == 0 || len(b.buf)+n <= TargetPackSize
}

// Finish appends the trailer and returns the whole plaintext. The returned
// slice aliases the builder's buffer until Reset.
func (b *Builder) Finish() []byte {
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

// NewBuilderOn returns a Builder that fills buf (from its start, within its
// capacity as long as the pack fits): a Sealer gives it room in the buffer
// it encrypts in place.
func NewBuilderOn(buf []byte) *Builder {
	return &Builder{buf: buf[:0]}
}

// Reset empties the builder for the next pack, keeping its buffer.
func (b *Builder) Reset() {
	b.buf = b.buf[:0]
	b.entries = b.entries[:0]
}

// ErrMalformed is wrapped by every error about a malformed pack plaintext.
var ErrMalformed = errors.New("malformed pack")

// Parse reads the trailer of a pack plaintext and returns its entries.
// The plaintext comes from friends' disks: every length is checked before it
// is used, and the entries must tile the blob area exactly.
func Parse(plain []byte) ([]Entry, error) {
	if len(plain) > MaxPackSize {
		return nil, fmt.Errorf("%w: %d bytes, more than the %d a pack may hold", ErrMalformed, len(plain), MaxPackSize)
	}
	if len(plain) < trailerFooter || string(plain[len(plain)-len(packMagic):]) != packMagic {
		return nil, fmt.Errorf("%w: no pack trailer", ErrMalformed)
	}
	n := binary.LittleEndian.Uint32(plain[len(plain)-trailerFooter:])
	body := len(plain) - trailerFooter
	if uint64(n)*trailerEntry > uint64(body) {
		return nil, fmt.Errorf("%w: trailer claims %d blobs, more than fit in %d bytes", ErrMalformed, n, len(plain))
	}
	tstart := body - int(n)*trailerEntry
	entries := make([]Entry, n)
	off := uint64(0)
	for i := range entries {
		ent := plain[tstart+i*trailerEntry : tstart+(i+1)*trailerEntry]
		e := Entry{
			Type:        data.BlobType(ent[0]),
			Compression: data.Compression(ent[1]),
			Offset:      uint32(off),
			Length:      binary.LittleEndian.Uint32(ent[34:]),
			RawLength:   binary.LittleEndian.Uint32(ent[38:]),
		}
		copy(e.ID[:], ent[2:34])
		if e.Type < data.DataBlob || e.Type > data.StateBlob {
			return nil, fmt.Errorf("%w: blob %d has unknown type %d", ErrMalformed, i, ent[0])
		}
		if e.Compression > data.Zstd {
			return nil, fmt.Errorf("%w: blob %d has unknown compression %d", ErrMalformed, i, ent[1])
		}
		if e.RawLength > MaxBlobSize || e.Length > MaxBlobSize {
			return nil, fmt.Errorf("%w: blob %d claims %d bytes, more than %d", ErrMalformed, i, max(e.RawLength, e.Length), MaxBlobSize)
		}
		if e.Compression == data.NoCompression && e.Length != e.RawLength {
			return nil, fmt.Errorf("%w: blob %d is stored uncompressed with two lengths", ErrMalformed, i)
		}
		off += uint64(e.Length)
		if off > uint64(tstart) {
			return nil, fmt.Errorf("%w: blob %d runs past the blob area", ErrMalformed, i)
		}
		entries[i] = e
	}
	if off != uint64(tstart) {
		return nil, fmt.Errorf("%w: blobs cover %d bytes of a %d-byte blob area", ErrMalformed, off, tstart)
	}
	return entries, nil
}

// zstdDecoder is shared: DecodeAll is safe for concurrent use.
var zstdDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxBlobSize+1<<20))

// ErrBlobMismatch is wrapped when a blob read back does not hash to its
// chunk ID.
var ErrBlobMismatch = errors.New("blob does not match its ID")

// Extract returns the raw bytes of blob e of a pack plaintext, checked
// against its keyed chunk ID.
func Extract(plain []byte, e Entry, keyer *chunker.IDKeyer) ([]byte, error) {
	end := uint64(e.Offset) + uint64(e.Length)
	if end > uint64(len(plain)) {
		return nil, fmt.Errorf("%w: blob %s runs past its pack", ErrMalformed, e.ID.Short())
	}
	b := plain[e.Offset:end]
	if e.Compression == data.Zstd {
		out, err := zstdDecoder.DecodeAll(b, make([]byte, 0, e.RawLength))
		if err != nil {
			return nil, fmt.Errorf("%w: blob %s: %v", ErrMalformed, e.ID.Short(), err)
		}
		if len(out) != int(e.RawLength) {
			return nil, fmt.Errorf("%w: blob %s decompresses to %d bytes, want %d", ErrMalformed, e.ID.Short(), len(out), e.RawLength)
		}
		b = out
	}
	if data.ID(keyer.ID(b)) != e.ID {
		return nil, fmt.Errorf("%w: %s", ErrBlobMismatch, e.ID.Short())
	}
	return b, nil
}
