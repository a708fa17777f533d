package proof

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"lukechampine.com/blake3/bao"
)

// Limits of shards and proofs.
const (
	// MaxShardSize is the largest shard a plug holds or sends: a pack is
	// at most pack.MaxPackSize plus age's overhead of ciphertext, and with
	// k = 1 a shard is the whole pack (store/seal tests that it fits).
	MaxShardSize = 32 << 20
	// MaxLength is the longest byte range a proof may cover.
	MaxLength = 64 << 10
	// MaxSlice bounds a proof: the range, two whole groups around it, the
	// size and the Merkle path.
	MaxSlice = MaxLength + 64<<10
)

// Group is the Bao chunk group of the outboard trees and proofs, as a power
// of two of BLAKE3 chunks: 2^4 × 1 KiB = 16 KiB. Larger groups make smaller
// trees (size/256 here) and larger proofs (whole groups travel). It is part
// of the proof format: never change it.
const Group = 4

// GroupSize is the size of a Bao chunk group in bytes.
const GroupSize = 1024 << Group

// Errors that callers test with errors.Is. They are always returned
// wrapped, with what was being done.
var (
	// ErrRange means a size, offset or length is out of bounds: a shard of
	// no bytes, a proof of no bytes or more than MaxLength, a range past the
	// end of the shard.
	ErrRange = errors.New("out of range")
	// ErrBad means a proof of storage failed: the bytes or their Merkle
	// path do not match the shard ID and size.
	ErrBad = errors.New("proof of storage failed")
	// ErrCorrupt means a held shard is damaged (its files missing or of the
	// wrong size, or its bytes no longer its ID): the shard is lost, and its
	// owner should rebuild it.
	ErrCorrupt = errors.New("held shard is damaged")
)

func shortID(id [32]byte) string { return fmt.Sprintf("%x", id[:4]) }

// Verify is the owner's side of a proof of storage: it checks slice, a
// friend's answer to holdstore.Store.Prove for bytes [offset, offset+length) of the
// shard id of size bytes, against the shard ID as the Bao root, and returns
// the verified bytes. The owner knows size from its pack table; a slice that
// declares another size fails.
//
// A slice that does not prove exactly those bytes gives an error wrapping
// [ErrBad]. A range that no slice can prove (size or length 0, length
// above [MaxLength], past the end) gives one wrapping [ErrRange].
func Verify(id [32]byte, size, offset, length uint64, slice []byte) ([]byte, error) {
	if err := verifyProof(id, size, offset, length, slice); err != nil {
		return nil, fmt.Errorf("verify proof of bytes %d+%d of shard %s: %w", offset, length, shortID(id), err)
	}
	data, ok := bao.VerifySlice(slice, Group, offset, length, id)
	if !ok || uint64(len(data)) != length {
		return nil, fmt.Errorf("verify proof of bytes %d+%d of shard %s: %w: the bytes or their Merkle path do not match the shard ID",
			offset, length, shortID(id), ErrBad)
	}
	return data, nil
}

// verifyProof checks what can be checked before hashing: the range, the
// slice's length and the size it declares.
func verifyProof(id [32]byte, size, offset, length uint64, slice []byte) error {
	switch {
	case size < 1 || size > MaxShardSize:
		return fmt.Errorf("%w: a shard of %d bytes", ErrRange, size)
	case length < 1 || length > MaxLength:
		return fmt.Errorf("%w: a proof covers 1 to %d bytes", ErrRange, MaxLength)
	case !InShard(size, offset, length):
		return fmt.Errorf("%w: the shard has %d bytes", ErrRange, size)
	}
	if want := Size(size, offset, length); uint64(len(slice)) != want {
		return fmt.Errorf("%w: a slice of %d bytes, want %d", ErrBad, len(slice), want)
	}
	// The root hash covers the size only through the tree's shape, which
	// decides which nodes the slice holds: check it, lest a slice for
	// another size prove the wrong bytes.
	if got := binary.LittleEndian.Uint64(slice); got != size {
		return fmt.Errorf("%w: the slice is for a shard of %d bytes, not %d", ErrBad, got, size)
	}
	return nil
}

// InShard reports whether [offset, offset+length) lies within size bytes,
// without overflowing.
func InShard(size, offset, length uint64) bool {
	return offset < size && length <= size-offset
}

// Size is the length of the Bao slice encoding of [offset,
// offset+length) of size bytes: the 8-byte size, then, in pre-order, the
// two child hashes of every tree node over the range and every group that
// the range touches. The range must be within size.
func Size(size, offset, length uint64) uint64 {
	n := uint64(8)
	var rec func(pos, span uint64)
	rec = func(pos, span uint64) {
		if pos >= offset+length || offset >= pos+span {
			return
		}
		if span <= GroupSize {
			n += span
			return
		}
		n += 64
		mid := uint64(1) << (bits.Len64(span-1) - 1)
		rec(pos, mid)
		rec(pos+mid, span-mid)
	}
	rec(0, size)
	return n
}

// FromBytes makes the proof holdstore.Store.Prove would give for bytes [offset,
// offset+length) of a shard held in memory (for in-memory holders in
// tests).
func FromBytes(shard []byte, offset, length uint64) ([]byte, error) {
	size := uint64(len(shard))
	if length < 1 || length > MaxLength || !InShard(size, offset, length) {
		return nil, fmt.Errorf("%w: a proof covers 1 to %d bytes of a %d-byte shard", ErrRange, MaxLength, size)
	}
	tree, _ := bao.EncodeBuf(shard, Group, true)
	start := offset / GroupSize * GroupSize
	end := min((offset+length+GroupSize-1)/GroupSize*GroupSize, size)
	var out bytes.Buffer
	if err := bao.ExtractSlice(&out, bytes.NewReader(shard[start:end]), bytes.NewReader(tree), Group, offset, length); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
