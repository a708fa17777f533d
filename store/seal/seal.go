package seal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"filippo.io/age"
	"github.com/klauspost/reedsolomon"
	"github.com/zeebo/blake3"

	"github.com/plug-net/plug/crypto"
	"github.com/plug-net/plug/p2p/proof"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/pack"
)

// Redundancy limits (DESIGN.md "Backup data path").
const (
	MaxDataShards   = 10
	MaxParityShards = 10
)

// ErrNotEnoughShards is wrapped when fewer than k intact shards of a pack can
// be had: the pack cannot be rebuilt.
var ErrNotEnoughShards = errors.New("not enough shards")

// Shape is what it takes to rebuild a pack from its shards: the ciphertext
// size, the Reed-Solomon parameters and the ID of every shard.
type Shape struct {
	Size     int       // age ciphertext length in bytes
	K, M     int       // data and parity shards
	ShardIDs []data.ID // k+m shard IDs, data shards first
}

// ShardSize returns the length of each shard.
func (s Shape) ShardSize() int { return (s.Size + s.K - 1) / s.K }

// PackID returns the pack's ID: a hash of its shape, which names every byte
// of every shard.
func (s Shape) PackID() data.ID {
	h := blake3.New()
	var hdr [4 + 8 + 2 + 2]byte
	copy(hdr[:], "pak1")
	binary.LittleEndian.PutUint64(hdr[4:], uint64(s.Size))
	binary.LittleEndian.PutUint16(hdr[12:], uint16(s.K))
	binary.LittleEndian.PutUint16(hdr[14:], uint16(s.M))
	h.Write(hdr[:])
	for _, id := range s.ShardIDs {
		h.Write(id[:])
	}
	var id data.ID
	h.Sum(id[:0])
	return id
}

// Validate checks a shape read from a catalog or head record.
func (s Shape) Validate() error {
	switch {
	case s.K < 1 || s.K > MaxDataShards:
		return fmt.Errorf("pack shape: %d data shards, want 1 to %d", s.K, MaxDataShards)
	case s.M < 0 || s.M > MaxParityShards:
		return fmt.Errorf("pack shape: %d parity shards, want 0 to %d", s.M, MaxParityShards)
	case s.Size < 1 || s.Size > proof.MaxShardSize:
		// With k = 1 the one data shard is the whole ciphertext.
		return fmt.Errorf("pack shape: ciphertext of %d bytes, want 1 to %d", s.Size, proof.MaxShardSize)
	case len(s.ShardIDs) != s.K+s.M:
		return fmt.Errorf("pack shape: %d shard IDs for %d+%d shards", len(s.ShardIDs), s.K, s.M)
	}
	return nil
}

// ShardID returns the ID of a shard: the plain BLAKE3-256 of its bytes,
// which is also the root of its Bao tree, so friends can prove they hold it.
func ShardID(shard []byte) data.ID { return blake3.Sum256(shard) }

// Rebuild fills every missing shard, parity included, from any k intact
// ones (the given shards were checked against their IDs).
func Rebuild(sh Shape, shards [][]byte) error {
	if sh.M == 0 {
		return nil
	}
	enc, err := encoder(sh.K, sh.M)
	if err != nil {
		return err
	}
	if err := enc.Reconstruct(shards); err != nil {
		return fmt.Errorf("rebuild pack %s: %w", sh.PackID().Short(), err)
	}
	return nil
}

// encoders caches Reed-Solomon encoders by (k, m); they are safe for
// concurrent use.
var encoders sync.Map // [2]int -> reedsolomon.Encoder (immutable once stored)

func encoder(k, m int) (reedsolomon.Encoder, error) {
	key := [2]int{k, m}
	if e, ok := encoders.Load(key); ok {
		return e.(reedsolomon.Encoder), nil
	}
	par := m
	if par == 0 {
		par = 1 // reedsolomon needs a parity shard; with m == 0 it is computed and dropped
	}
	e, err := reedsolomon.New(k, par, reedsolomon.WithMaxGoroutines(1))
	if err != nil {
		return nil, fmt.Errorf("reed-solomon %d+%d: %w", k, m, err)
	}
	act, _ := encoders.LoadOrStore(key, e)
	return act.(reedsolomon.Encoder), nil
}

// Sealed is a pack ready to travel: its shards and their IDs. Shards alias the
// Sealer's buffer and are valid until its next Seal.
type Sealed struct {
	ID     data.ID
	Shape  Shape
	Shards [][]byte
}

// Sealer encrypts pack plaintexts to the owner and cuts them into shards. It
// keeps one reusable buffer, so memory stays constant across packs; it is not
// safe for concurrent use (use one per goroutine).
//
// A pack.Builder made by NewBuilder keeps its plaintext inside that buffer,
// behind a headroom, and Seal then encrypts it in place: age writes each
// 64 KiB chunk's ciphertext (16 bytes longer) only after it has read the
// plaintext chunk, so the ciphertext, growing from the start of the buffer,
// never overtakes the plaintext it has yet to read when the headroom covers
// the age header and one tag per chunk. A pack then costs one buffer of about
// (k+m)/k times its size, not two.
type Sealer struct {
	recipient age.Recipient
	hdrLen    int // age header and nonce for this recipient; -1 if unknown
	arena     []byte
	headroom  int // where a NewBuilder plaintext starts in arena
}

// NewSealer returns a Sealer that encrypts to recipient.
func NewSealer(recipient age.Recipient) *Sealer {
	return &Sealer{recipient: recipient, hdrLen: ageHeaderLen(recipient)}
}

// countWriter counts what is written to it.
type countWriter int

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// ageHeaderLen measures the age header and nonce written for recipient (its
// stanzas have a fixed size), or returns -1.
func ageHeaderLen(r age.Recipient) int {
	var n countWriter
	w, err := crypto.Encrypt(&n, r)
	if err != nil {
		return -1
	}
	hdr := int(n)
	if w.Close() != nil {
		return -1
	}
	return hdr
}

// ageHeaderRoom bounds the age header and nonce (an ML-KEM-768 + X25519
// stanza is about 1.6 KiB); Seal checks it before encrypting in place.
const ageHeaderRoom = 4096

// headroomFor returns the room to leave before a plaintext of up to n bytes
// to encrypt it in place.
func headroomFor(n int) int { return ageHeaderRoom + 16*(n/(64<<10)+2) }

// NewBuilder returns a pack.Builder whose plaintext, up to TargetPackSize plus
// a full trailer, lives in the Sealer's buffer, sized for k+m shards. It is
// valid until the next NewBuilder or Seal of another plaintext. If blobs make
// it grow past that, it moves out and Seal copies it as usual.
func (s *Sealer) NewBuilder(k, m int) *pack.Builder {
	maxPlain := pack.MaxPlainSize
	s.headroom = headroomFor(maxPlain)
	ct := int(crypto.EncryptedSize(int64(maxPlain))) + ageHeaderRoom
	need := max((k+m)*((ct+k-1)/k), s.headroom+maxPlain)
	if cap(s.arena) < need {
		s.arena = make([]byte, 0, need)
	}
	full := s.arena[:cap(s.arena)]
	return pack.NewBuilderOn(full[s.headroom:s.headroom])
}

// inArena reports whether plain starts at the headroom of the Sealer's buffer.
func (s *Sealer) inArena(plain []byte) bool {
	if len(plain) == 0 || cap(s.arena) <= s.headroom || s.headroom == 0 {
		return false
	}
	return &plain[0] == &s.arena[:cap(s.arena)][s.headroom]
}

// appendWriter appends to a slice it owns.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// Seal encrypts plain with age and Reed-Solomon-codes the ciphertext into k
// data and m parity shards.
func (s *Sealer) Seal(plain []byte, k, m int) (*Sealed, error) {
	if k < 1 || k > MaxDataShards || m < 0 || m > MaxParityShards {
		return nil, fmt.Errorf("a pack cannot be cut into %d+%d shards: it takes 1..%d data and 0..%d parity", k, m, MaxDataShards, MaxParityShards)
	}
	enc, err := encoder(k, m)
	if err != nil {
		return nil, err
	}
	ct := int(crypto.EncryptedSize(int64(len(plain)))) + ageHeaderRoom
	need := (k + m) * ((ct + k - 1) / k)
	inPlace := s.inArena(plain)
	if inPlace && (cap(s.arena) < need || s.hdrLen < 0 || s.headroom < s.hdrLen+16*(len(plain)/(64<<10)+2)) {
		// Not enough room to encrypt in place (never with NewBuilder's
		// sizes and age's header): stay correct with a copy.
		plain = bytes.Clone(plain)
		inPlace = false
	}
	if !inPlace && cap(s.arena) < need {
		s.arena = make([]byte, 0, need+need/16)
		s.headroom = 0
	}
	w := &appendWriter{b: s.arena[:0]}
	ew, err := crypto.Encrypt(w, s.recipient)
	if err != nil {
		return nil, fmt.Errorf("encrypt a pack: %w", err)
	}
	if inPlace && len(w.b) != s.hdrLen {
		return nil, fmt.Errorf("encrypt a pack: the age header took %d bytes where %d were expected; this is a bug in plug, please report it", len(w.b), s.hdrLen)
	}
	if _, err := ew.Write(plain); err != nil {
		return nil, fmt.Errorf("encrypt a pack: %w", err)
	}
	if err := ew.Close(); err != nil {
		return nil, fmt.Errorf("encrypt a pack: %w", err)
	}
	size := len(w.b)
	per := (size + k - 1) / k
	if cap(w.b) < (k+m)*per || &w.b[0] != &s.arena[:1][0] {
		return nil, fmt.Errorf("encrypt a pack: %d bytes of ciphertext did not fit the buffer made for them; this is a bug in plug, please report it", size)
	}
	buf := w.b[:(k+m)*per]
	clear(buf[size : k*per]) // the last data shard's padding; parity is overwritten
	shards := make([][]byte, k+m)
	for i := range shards {
		shards[i] = buf[i*per : (i+1)*per : (i+1)*per]
	}
	if m > 0 {
		if err := enc.Encode(shards); err != nil {
			return nil, fmt.Errorf("erasure-code a pack: %w", err)
		}
	}
	sh := Shape{Size: size, K: k, M: m, ShardIDs: make([]data.ID, k+m)}
	for i, b := range shards {
		sh.ShardIDs[i] = ShardID(b)
	}
	return &Sealed{ID: sh.PackID(), Shape: sh, Shards: shards}, nil
}

// ShardError reports a shard that was present but wrong.
type ShardError struct {
	Index int
	ID    data.ID
	Err   error
}

func (e *ShardError) Error() string {
	return fmt.Sprintf("shard %d (%s): %v", e.Index, e.ID.Short(), e.Err)
}

func (e *ShardError) Unwrap() error { return e.Err }

// ErrShardMismatch is wrapped by a ShardError when a shard's bytes do not
// hash to its ID: it was altered, truncated or substituted.
var ErrShardMismatch = errors.New("shard does not match its ID")

// CheckShards verifies every non-nil shard against the shape and sets the bad
// ones to nil, so that they are never fed to the decoder. It returns one
// ShardError per bad shard and the number of good ones.
func CheckShards(sh Shape, shards [][]byte) (good int, bad []*ShardError) {
	size := sh.ShardSize()
	for i, b := range shards {
		if b == nil {
			continue
		}
		switch {
		case len(b) != size:
			bad = append(bad, &ShardError{Index: i, ID: sh.ShardIDs[i], Err: fmt.Errorf("%w: %d bytes, want %d", ErrShardMismatch, len(b), size)})
			shards[i] = nil
		case ShardID(b) != sh.ShardIDs[i]:
			bad = append(bad, &ShardError{Index: i, ID: sh.ShardIDs[i], Err: ErrShardMismatch})
			shards[i] = nil
		default:
			good++
		}
	}
	return good, bad
}

// Opener rebuilds and decrypts packs. It keeps one reusable buffer; it is not
// safe for concurrent use.
type Opener struct {
	identity age.Identity
	plain    []byte
}

// NewOpener returns an Opener that decrypts with identity.
func NewOpener(identity age.Identity) *Opener { return &Opener{identity: identity} }

// Open checks the shards against the shape (bad ones are dropped and
// reported), rebuilds missing data shards from parity, and decrypts the pack.
// shards has k+m entries, nil where a shard could not be fetched. The
// returned plaintext is valid until the next Open. The error wraps
// ErrNotEnoughShards when fewer than k shards are intact.
func (o *Opener) Open(sh Shape, shards [][]byte) (plain []byte, bad []*ShardError, err error) {
	if err := sh.Validate(); err != nil {
		return nil, nil, err
	}
	if len(shards) != sh.K+sh.M {
		return nil, nil, fmt.Errorf("open pack: %d shards given, want %d", len(shards), sh.K+sh.M)
	}
	good, bad := CheckShards(sh, shards)
	if good < sh.K {
		return nil, bad, fmt.Errorf("open pack %s: %w: %d of %d intact, need %d", sh.PackID().Short(), ErrNotEnoughShards, good, sh.K+sh.M, sh.K)
	}
	missingData := false
	for _, b := range shards[:sh.K] {
		if b == nil {
			missingData = true
			break
		}
	}
	if missingData {
		enc, err := encoder(sh.K, sh.M)
		if err != nil {
			return nil, bad, err
		}
		// good >= K with a data shard missing implies M > 0.
		if err := enc.ReconstructData(shards); err != nil {
			return nil, bad, fmt.Errorf("open pack %s: rebuild: %w", sh.PackID().Short(), err)
		}
	}
	plain, err = decryptShards(sh, shards, o.identity, o.plain[:0])
	if err != nil {
		return nil, bad, err
	}
	o.plain = plain
	return plain, bad, nil
}

// decryptShards decrypts a pack from its data shards (all present and
// checked) into dst, which it grows as needed: the ciphertext is read
// straight from the shards, never joined into one buffer. A pack of 1 MiB or
// more is decrypted in two halves at once, on two cores.
func decryptShards(sh Shape, shards [][]byte, identity age.Identity, dst []byte) ([]byte, error) {
	ct := shardReader{shards: shards[:sh.K], size: int64(sh.Size)}
	r, n, err := crypto.DecryptReaderAt(ct, int64(sh.Size), identity)
	if err != nil {
		return nil, fmt.Errorf("open pack %s: %w", sh.PackID().Short(), err)
	}
	if n > int64(pack.MaxPackSize) {
		return nil, fmt.Errorf("open pack %s: %w: plaintext of %d bytes, more than %d", sh.PackID().Short(), pack.ErrMalformed, n, pack.MaxPackSize)
	}
	if int64(cap(dst)) < n {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	// The halves meet at a chunk boundary (age's chunks are 64 KiB of
	// plaintext), so that no chunk is opened twice.
	half := n
	if n >= 1<<20 {
		half = n / 2 &^ (64<<10 - 1)
	}
	var wg sync.WaitGroup
	var errHigh error
	if half < n {
		wg.Go(func() { errHigh = readFullAt(r, dst[half:], half) })
	}
	errLow := readFullAt(r, dst[:half], 0)
	wg.Wait()
	if err := errors.Join(errLow, errHigh); err != nil {
		return nil, fmt.Errorf("open pack %s: %w", sh.PackID().Short(), err)
	}
	return dst, nil
}

// readFullAt fills p from r at off; io.EOF with p full is no error.
func readFullAt(r io.ReaderAt, p []byte, off int64) error {
	if len(p) == 0 {
		return nil
	}
	n, err := r.ReadAt(p, off)
	if n == len(p) && (err == nil || err == io.EOF) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// shardReader reads the ciphertext of a pack across its data shards, in
// order, up to size.
type shardReader struct {
	shards [][]byte
	size   int64
}

func (s shardReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	n := 0
	for len(p) > 0 && off < s.size {
		i, at := 0, off
		for i < len(s.shards) && at >= int64(len(s.shards[i])) {
			at -= int64(len(s.shards[i]))
			i++
		}
		if i == len(s.shards) {
			break
		}
		c := copy(p[:min(int64(len(p)), s.size-off)], s.shards[i][at:])
		p, off, n = p[c:], off+int64(c), n+c
	}
	if len(p) > 0 {
		return n, io.EOF
	}
	return n, nil
}

// JoinedSize is the memory OpenJoined needs for a pack of this shape: its
// k data shards back to back.
func (s Shape) JoinedSize() int { return s.K * s.ShardSize() }

// OpenJoined decrypts a pack whose k data shards lie back to back in joined
// (shard i at joined[i*size:(i+1)*size], size the shard size), in place: the
// plaintext it returns is joined's memory. A data shard not fetched is
// rebuilt where it goes from the parity shards given, so shards[i] of a
// missing data shard must be nil or empty. The shards are not checked
// against their IDs: the pack's authenticated encryption fails on any wrong
// byte, and on an error joined's content is undefined (the caller fetches
// the shards again and checks them one by one).
func OpenJoined(sh Shape, shards [][]byte, joined []byte, identity age.Identity) ([]byte, error) {
	if err := sh.Validate(); err != nil {
		return nil, err
	}
	size := sh.ShardSize()
	if len(shards) != sh.K+sh.M || len(joined) < sh.JoinedSize() {
		return nil, fmt.Errorf("open pack %s: %d shards in %d bytes for a %d+%d pack of %d-byte shards", sh.PackID().Short(), len(shards), len(joined), sh.K, sh.M, size)
	}
	rebuild := false
	for i, b := range shards[:sh.K] {
		slot := joined[i*size : (i+1)*size : (i+1)*size]
		switch {
		case len(b) == 0:
			shards[i] = slot[:0] // rebuilt into its place
			rebuild = true
		case len(b) != size || &b[0] != &slot[0]:
			return nil, fmt.Errorf("open pack %s: data shard %d is not in its place", sh.PackID().Short(), i)
		}
	}
	if rebuild {
		enc, err := encoder(sh.K, sh.M)
		if err != nil {
			return nil, err
		}
		if err := enc.ReconstructData(shards); err != nil {
			return nil, fmt.Errorf("open pack %s: rebuild: %w", sh.PackID().Short(), err)
		}
		for i, b := range shards[:sh.K] {
			if &b[0] != &joined[i*size] {
				return nil, fmt.Errorf("open pack %s: data shard %d was not rebuilt in its place", sh.PackID().Short(), i)
			}
		}
	}
	plain, err := crypto.DecryptInPlace(joined[:sh.Size], identity)
	if err != nil {
		return nil, fmt.Errorf("open pack %s: %w", sh.PackID().Short(), err)
	}
	if len(plain) > pack.MaxPackSize {
		return nil, fmt.Errorf("open pack %s: %w: plaintext of %d bytes, more than %d", sh.PackID().Short(), pack.ErrMalformed, len(plain), pack.MaxPackSize)
	}
	return plain, nil
}

// Recut cuts a sealed pack's ciphertext again into k data and m parity
// shards (new buffers), for when a friend went away before storing its
// shard. The ciphertext, and so the plaintext, is unchanged.
func Recut(s *Sealed, k, m int) (*Sealed, error) {
	if k < 1 || k > MaxDataShards || m < 0 || m > MaxParityShards {
		return nil, fmt.Errorf("Recut pack: %d+%d shards", k, m)
	}
	per := (s.Shape.Size + k - 1) / k
	buf := make([]byte, (k+m)*per)
	off := 0
	for _, sh := range s.Shards[:s.Shape.K] {
		off += copy(buf[off:s.Shape.Size], sh)
	}
	shards := make([][]byte, k+m)
	for i := range shards {
		shards[i] = buf[i*per : (i+1)*per : (i+1)*per]
	}
	if m > 0 {
		enc, err := encoder(k, m)
		if err != nil {
			return nil, err
		}
		if err := enc.Encode(shards); err != nil {
			return nil, fmt.Errorf("Recut pack: erasure code: %w", err)
		}
	}
	sh := Shape{Size: s.Shape.Size, K: k, M: m, ShardIDs: make([]data.ID, k+m)}
	for i, b := range shards {
		sh.ShardIDs[i] = ShardID(b)
	}
	return &Sealed{ID: sh.PackID(), Shape: sh, Shards: shards}, nil
}
