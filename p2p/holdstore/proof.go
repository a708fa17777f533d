package holdstore

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/libp2p/go-libp2p/core/peer"
	"lukechampine.com/blake3/bao"

	"github.com/plug-net/plug/p2p/proof"
)

// Prove returns the proof of storage of bytes [offset, offset+length) of a
// shard held for owner: their Bao slice encoding (the shard's size, the
// Merkle path and the 16 KiB groups that cover the range), which the owner
// checks with proof.Verify. The owner picks the range at random when it
// asks.
//
// length must be 1 to [proof.MaxLength] and the range within the shard, or
// the error wraps [proof.ErrRange]. A shard not held gives an error wrapping
// [fs.ErrNotExist]; one whose files are missing or of the wrong size an
// error wrapping [proof.ErrCorrupt]. Damaged bytes are not detected here: the
// proof then fails at the owner.
func (s *Store) Prove(ctx context.Context, owner peer.ID, id [32]byte, offset, length uint64) ([]byte, error) {
	slice, err := s.prove(ctx, owner, id, offset, length)
	if err != nil {
		return nil, fmt.Errorf("holdstore: prove bytes %d+%d of shard %s of %s: %w", offset, length, shortID(id), owner, err)
	}
	return slice, nil
}

func (s *Store) prove(ctx context.Context, owner peer.ID, id [32]byte, offset, length uint64) ([]byte, error) {
	if length < 1 || length > proof.MaxLength {
		return nil, fmt.Errorf("%w: a proof covers 1 to %d bytes", proof.ErrRange, proof.MaxLength)
	}
	body, size, err := s.open(ctx, owner, id)
	if err != nil {
		return nil, err
	}
	defer func() { _ = body.Close() }() // opened to read only: closing it loses nothing
	if !proof.InShard(uint64(size), offset, length) {
		return nil, fmt.Errorf("%w: the shard has %d bytes", proof.ErrRange, size)
	}
	tree, err := os.Open(s.Path(owner, id) + obaoExt)
	if err != nil {
		return nil, fmt.Errorf("%w: outboard tree: %w", proof.ErrCorrupt, err)
	}
	defer func() { _ = tree.Close() }() // opened to read only: closing it loses nothing
	fi, err := tree.Stat()
	if err != nil {
		return nil, err
	}
	if want := int64(bao.EncodedSize(int(size), proof.Group, true)); fi.Size() != want {
		return nil, fmt.Errorf("%w: outboard tree of %d bytes, want %d", proof.ErrCorrupt, fi.Size(), want)
	}

	// The slice carries whole groups: hand bao the groups the range touches.
	start := offset / proof.GroupSize * proof.GroupSize
	end := min((offset+length+proof.GroupSize-1)/proof.GroupSize*proof.GroupSize, uint64(size))
	data := io.NewSectionReader(body, int64(start), int64(end-start))
	var out bytes.Buffer
	out.Grow(int(proof.Size(uint64(size), offset, length)))
	// bao reads the tree front to back, 64 bytes at a time.
	if err := bao.ExtractSlice(&out, data, bufio.NewReaderSize(tree, 32<<10), proof.Group, offset, length); err != nil {
		return nil, fmt.Errorf("%w: %w", proof.ErrCorrupt, err)
	}
	return out.Bytes(), nil
}
