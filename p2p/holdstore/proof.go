package holdstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"os"

	"github.com/libp2p/go-libp2p/core/peer"
	"lukechampine.com/blake3/bao"
)

// Prove returns the proof of storage of bytes [offset, offset+length) of a
// shard held for owner: their Bao slice encoding (the shard's size, the
// Merkle path and the 16 KiB groups that cover the range), which the owner
// checks with [VerifyProof]. The owner picks the range at random when it
// asks.
//
// length must be 1 to [MaxProofLength] and the range within the shard, or
// the error wraps [ErrRange]. A shard not held gives an error wrapping
// [fs.ErrNotExist]; one whose files are missing or of the wrong size an
// error wrapping [ErrCorrupt]. Damaged bytes are not detected here: the
// proof then fails at the owner.
func (s *Store) Prove(ctx context.Context, owner peer.ID, id [32]byte, offset, length uint64) ([]byte, error) {
	slice, err := s.prove(ctx, owner, id, offset, length)
	if err != nil {
		return nil, fmt.Errorf("holdstore: prove bytes %d+%d of shard %s of %s: %w", offset, length, shortID(id), owner, err)
	}
	return slice, nil
}

func (s *Store) prove(ctx context.Context, owner peer.ID, id [32]byte, offset, length uint64) ([]byte, error) {
	if length < 1 || length > MaxProofLength {
		return nil, fmt.Errorf("%w: a proof covers 1 to %d bytes", ErrRange, MaxProofLength)
	}
	body, size, err := s.open(ctx, owner, id)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	if !inShard(uint64(size), offset, length) {
		return nil, fmt.Errorf("%w: the shard has %d bytes", ErrRange, size)
	}
	tree, err := os.Open(s.Path(owner, id) + obaoExt)
	if err != nil {
		return nil, fmt.Errorf("%w: outboard tree: %w", ErrCorrupt, err)
	}
	defer tree.Close()
	fi, err := tree.Stat()
	if err != nil {
		return nil, err
	}
	if want := int64(bao.EncodedSize(int(size), baoGroup, true)); fi.Size() != want {
		return nil, fmt.Errorf("%w: outboard tree of %d bytes, want %d", ErrCorrupt, fi.Size(), want)
	}

	// The slice carries whole groups: hand bao the groups the range touches.
	start := offset / groupSize * groupSize
	end := min((offset+length+groupSize-1)/groupSize*groupSize, uint64(size))
	data := io.NewSectionReader(body, int64(start), int64(end-start))
	var out bytes.Buffer
	out.Grow(int(proofSize(uint64(size), offset, length)))
	// bao reads the tree front to back, 64 bytes at a time.
	if err := bao.ExtractSlice(&out, data, bufio.NewReaderSize(tree, 32<<10), baoGroup, offset, length); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return out.Bytes(), nil
}

// VerifyProof is the owner's side of a proof of storage: it checks slice, a
// friend's answer to [Store.Prove] for bytes [offset, offset+length) of the
// shard id of size bytes, against the shard ID as the Bao root, and returns
// the verified bytes. The owner knows size from its pack table; a slice that
// declares another size fails.
//
// A slice that does not prove exactly those bytes gives an error wrapping
// [ErrBadProof]. A range that no slice can prove (size or length 0, length
// above [MaxProofLength], past the end) gives one wrapping [ErrRange].
func VerifyProof(id [32]byte, size, offset, length uint64, slice []byte) ([]byte, error) {
	if err := verifyProof(id, size, offset, length, slice); err != nil {
		return nil, fmt.Errorf("holdstore: verify proof of bytes %d+%d of shard %s: %w", offset, length, shortID(id), err)
	}
	data, ok := bao.VerifySlice(slice, baoGroup, offset, length, id)
	if !ok || uint64(len(data)) != length {
		return nil, fmt.Errorf("holdstore: verify proof of bytes %d+%d of shard %s: %w: the bytes or their Merkle path do not match the shard ID",
			offset, length, shortID(id), ErrBadProof)
	}
	return data, nil
}

// verifyProof checks what can be checked before hashing: the range, the
// slice's length and the size it declares.
func verifyProof(id [32]byte, size, offset, length uint64, slice []byte) error {
	switch {
	case size < 1 || size > MaxShardSize:
		return fmt.Errorf("%w: a shard of %d bytes", ErrRange, size)
	case length < 1 || length > MaxProofLength:
		return fmt.Errorf("%w: a proof covers 1 to %d bytes", ErrRange, MaxProofLength)
	case !inShard(size, offset, length):
		return fmt.Errorf("%w: the shard has %d bytes", ErrRange, size)
	}
	if want := proofSize(size, offset, length); uint64(len(slice)) != want {
		return fmt.Errorf("%w: a slice of %d bytes, want %d", ErrBadProof, len(slice), want)
	}
	// The root hash covers the size only through the tree's shape, which
	// decides which nodes the slice holds: check it, lest a slice for
	// another size prove the wrong bytes.
	if got := binary.LittleEndian.Uint64(slice); got != size {
		return fmt.Errorf("%w: the slice is for a shard of %d bytes, not %d", ErrBadProof, got, size)
	}
	return nil
}

// inShard reports whether [offset, offset+length) lies within size bytes,
// without overflowing.
func inShard(size, offset, length uint64) bool {
	return offset < size && length <= size-offset
}

// proofSize is the length of the Bao slice encoding of [offset,
// offset+length) of size bytes: the 8-byte size, then, in pre-order, the
// two child hashes of every tree node over the range and every group that
// the range touches. The range must be within size.
func proofSize(size, offset, length uint64) uint64 {
	n := uint64(8)
	var rec func(pos, span uint64)
	rec = func(pos, span uint64) {
		if pos >= offset+length || offset >= pos+span {
			return
		}
		if span <= groupSize {
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

// ProveBytes makes the proof Store.Prove would give for bytes [offset,
// offset+length) of a shard held in memory (for in-memory holders in
// tests).
func ProveBytes(shard []byte, offset, length uint64) ([]byte, error) {
	size := uint64(len(shard))
	if length < 1 || length > MaxProofLength || !inShard(size, offset, length) {
		return nil, fmt.Errorf("%w: a proof covers 1 to %d bytes of a %d-byte shard", ErrRange, MaxProofLength, size)
	}
	tree, _ := bao.EncodeBuf(shard, baoGroup, true)
	start := offset / groupSize * groupSize
	end := min((offset+length+groupSize-1)/groupSize*groupSize, size)
	var out bytes.Buffer
	if err := bao.ExtractSlice(&out, bytes.NewReader(shard[start:end]), bytes.NewReader(tree), baoGroup, offset, length); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
