package holdstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/peer"
	"lukechampine.com/blake3/bao"

	"github.com/plug-net/plug/p2p/proof"
	"github.com/plug-net/plug/store/kv"
)

// Prove returns the proof of storage of bytes [offset, offset+length) of a
// shard held for owner: their Bao slice encoding (the shard's size, the
// Merkle path and the 16 KiB groups that cover the range), which the owner
// checks with proof.Verify. The owner picks the range at random when it
// asks.
//
// length must be 1 to [proof.MaxLength] and the range within the shard, or
// the error wraps [proof.ErrRange]. A shard not held gives an error wrapping
// [fs.ErrNotExist]. Prove checks the proof before answering: when it fails,
// or the outboard tree is missing or of the wrong size, Prove makes the tree
// again from the shard's bytes (Put does not sync it; see the package doc),
// answers from it and puts it in place of the old one (if that fails, the
// next proof makes it again). A shard whose file is missing (the error also
// wraps fs.ErrNotExist) or unreadable gives an error wrapping
// [proof.ErrCorrupt]; one whose file is of the wrong size, or whose bytes no
// longer hash to its ID, as well, and it is dropped, as [Open] drops it:
// its owner rebuilds it.
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
	body, size, err := s.openBody(ctx, owner, id)
	if err != nil {
		return nil, err
	}
	defer func() { _ = body.Close() }() // opened to read only: closing it loses nothing
	slice, err := s.proveFrom(ctx, body, owner, id, size, offset, length)
	if errors.Is(err, errDamaged) {
		// Dropped as Open drops it; what counts is the answer.
		_ = s.dropDamaged(owner, id, body)
	}
	return slice, err
}

// proveFrom is prove on the shard's open body, of size bytes by its record.
func (s *Store) proveFrom(ctx context.Context, body *os.File, owner peer.ID, id [32]byte, size int64, offset, length uint64) ([]byte, error) {
	if err := checkSize(body, size); err != nil {
		return nil, err
	}
	if !proof.InShard(uint64(size), offset, length) {
		return nil, fmt.Errorf("%w: the shard has %d bytes", proof.ErrRange, size)
	}
	if slice, err := s.extract(body, owner, id, size, offset, length); err == nil {
		if _, err := proof.Verify(id, uint64(size), offset, length, slice); err == nil {
			return slice, nil
		}
	}
	tree, err := makeTree(ctx, body, id, size)
	if err != nil {
		return nil, err
	}
	slice, err := extractFrom(body, bytes.NewReader(tree), size, offset, length)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", proof.ErrCorrupt, err)
	}
	// The answer stands on the tree just made; when it cannot be put in
	// place (a full disk), the next proof makes it again.
	_ = s.putTree(owner, id, tree, true)
	return slice, nil
}

// extract reads the proof of [offset, offset+length) from the shard's body
// and its outboard tree. It fails when the tree is missing or of the wrong
// size, not when its hashes are wrong: the caller verifies the proof.
func (s *Store) extract(body *os.File, owner peer.ID, id [32]byte, size int64, offset, length uint64) ([]byte, error) {
	tree, err := os.Open(s.Path(owner, id) + obaoExt)
	if err != nil {
		return nil, fmt.Errorf("outboard tree: %w", err)
	}
	defer func() { _ = tree.Close() }() // opened to read only: closing it loses nothing
	fi, err := tree.Stat()
	if err != nil {
		return nil, err
	}
	if want := treeSize(size); fi.Size() != want {
		return nil, fmt.Errorf("outboard tree of %d bytes, want %d", fi.Size(), want)
	}
	// bao reads the tree front to back, 64 bytes at a time.
	return extractFrom(body, bufio.NewReaderSize(tree, 32<<10), size, offset, length)
}

// extractFrom reads the proof of [offset, offset+length) from the shard's
// body and its outboard tree, read front to back from tree.
func extractFrom(body io.ReaderAt, tree io.Reader, size int64, offset, length uint64) ([]byte, error) {
	// The slice carries whole groups: hand bao the groups the range touches.
	start := offset / proof.GroupSize * proof.GroupSize
	end := min((offset+length+proof.GroupSize-1)/proof.GroupSize*proof.GroupSize, uint64(size))
	data := io.NewSectionReader(body, int64(start), int64(end-start))
	var out bytes.Buffer
	out.Grow(int(proof.Size(uint64(size), offset, length)))
	if err := bao.ExtractSlice(&out, data, tree, proof.Group, offset, length); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// treeSize is the size of the outboard tree of a shard of size bytes.
func treeSize(size int64) int64 { return int64(bao.EncodedSize(int(size), proof.Group, true)) }

// errDamaged is wrapped (with [proof.ErrCorrupt]) when a held shard's bytes
// are shown to be wrong: shorter than its size, or no longer hashing to its
// ID. A shard is dropped for that, never for an error reading or writing.
var errDamaged = errors.New("shard bytes damaged")

// makeTree computes the outboard tree of the held shard id from its body,
// which must hash to id. A body shown wrong gives an error wrapping
// [errDamaged] and [proof.ErrCorrupt]; one that cannot be read, an error
// wrapping [proof.ErrCorrupt] only.
func makeTree(ctx context.Context, body io.ReaderAt, id [32]byte, size int64) ([]byte, error) {
	in := &countingReader{ctx: ctx, r: io.NewSectionReader(body, 0, size)}
	tree := &bufferAt{buf: make([]byte, treeSize(size))}
	root, err := bao.Encode(tree, bufio.NewReaderSize(in, 64<<10), size, proof.Group, true)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("%w: %w: the shard file ends after %d of its %d bytes", proof.ErrCorrupt, errDamaged, in.n, size)
	case err != nil:
		return nil, fmt.Errorf("%w: read the shard file: %w", proof.ErrCorrupt, err)
	case root != id:
		return nil, fmt.Errorf("%w: %w: the shard's bytes now hash to %s", proof.ErrCorrupt, errDamaged, shortID(root))
	}
	return tree.buf, nil
}

// putTree puts tree in place as the outboard tree of a held shard, without a
// sync, like Put. With lock, it does so under the owner's lock and only while
// the shard is still held (Open, alone with the store, does without).
func (s *Store) putTree(owner peer.ID, id [32]byte, tree []byte, lock bool) error {
	name := s.Path(owner, id)
	tmp, err := writeTemp(filepath.Dir(name), tree)
	if err != nil {
		if tmp != "" {
			_ = os.Remove(tmp) // after a failure, which is what putTree reports
		}
		return fmt.Errorf("write the outboard tree again: %w", err)
	}
	if lock {
		st := s.state(owner)
		st.mu.Lock()
		defer st.mu.Unlock()
		if held, err := s.db.Has(kv.Held, shardKey(owner, id)); err != nil || !held {
			_ = os.Remove(tmp) // deleted meanwhile: nothing to put in place
			if err == nil {
				err = fmt.Errorf("%w: deleted while its outboard tree was made again", fs.ErrNotExist)
			}
			return err
		}
	}
	if err := os.Rename(tmp, name+obaoExt); err != nil {
		_ = os.Remove(tmp) // after a failure, which is what putTree reports
		return fmt.Errorf("write the outboard tree again: %w", err)
	}
	return nil
}
