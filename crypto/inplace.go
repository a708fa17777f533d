package crypto

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

// The payload of an age file (age-encryption.org/v1): after the header, a
// 16-byte nonce, then the plaintext in chunks of 64 KiB, each sealed with
// ChaCha20-Poly1305 under HKDF-SHA-256(file key, nonce, "payload"); a
// chunk's nonce is its index (11 bytes, big-endian) and a byte that is 1 for
// the last chunk only. Only an empty plaintext has an empty chunk.
const (
	payloadNonceSize = 16
	plainChunkSize   = 64 << 10
	sealedChunkSize  = plainChunkSize + chacha20poly1305.Overhead
)

// ErrNotAge says the bytes are not an age file this plug can open: its
// header or its payload's length is malformed.
var ErrNotAge = errors.New("not a well-formed age file")

// DecryptInPlace decrypts the age file in buf and returns its plaintext,
// which is buf[:n]: no byte is copied out of or into another buffer. Every
// chunk is authenticated, the header by its MAC. A file of 1 MiB or more is
// opened in two halves at once, on two cores.
//
// On an error buf's content is undefined (a chunk that fails to open is
// zeroed, others may be decrypted already): keep the ciphertext elsewhere
// if it must be checked again.
func DecryptInPlace(buf []byte, identities ...age.Identity) ([]byte, error) {
	// The header is parsed once to learn its length (age re-marshals it,
	// as its own DecryptReaderAt does) and once to unwrap the file key.
	hdr, err := age.ExtractHeader(bytes.NewReader(buf))
	if err != nil {
		return nil, fmt.Errorf("age decrypt: %w: %w", ErrNotAge, err)
	}
	fileKey, err := age.DecryptHeader(hdr, identities...)
	if err != nil {
		return nil, fmt.Errorf("age decrypt: %w", err)
	}
	rest := buf[len(hdr):]
	if len(rest) < payloadNonceSize {
		return nil, fmt.Errorf("age decrypt: %w: no payload nonce", ErrNotAge)
	}
	key, err := hkdf.Key(sha256.New, fileKey, rest[:payloadNonceSize], "payload", chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("age decrypt: %w", err)
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, fmt.Errorf("age decrypt: %w", err)
	}
	payload := rest[payloadNonceSize:]
	chunks, n, err := payloadChunks(len(payload))
	if err != nil {
		return nil, fmt.Errorf("age decrypt: %w", err)
	}

	// Each chunk is opened where it lies, then moved down to its place in
	// the plaintext: chunk i goes to i*64 KiB, below where it was sealed,
	// so moving them in order never overwrites one not yet moved.
	open := func(from, to int) error {
		var nonce [chacha20poly1305.NonceSize]byte
		for i := from; i < to; i++ {
			c := payload[i*sealedChunkSize : min((i+1)*sealedChunkSize, len(payload))]
			binary.BigEndian.PutUint64(nonce[3:11], uint64(i))
			if i == chunks-1 {
				nonce[len(nonce)-1] = 1
			}
			if _, err := aead.Open(c[:0], nonce[:], c, nil); err != nil {
				return fmt.Errorf("age decrypt: chunk %d of %d: %w", i, chunks, err)
			}
		}
		return nil
	}
	half := chunks
	if n >= 1<<20 {
		half = chunks / 2
	}
	var wg sync.WaitGroup
	var errHigh error
	if half < chunks {
		wg.Go(func() { errHigh = open(half, chunks) })
	}
	errLow := open(0, half)
	wg.Wait()
	if err := errors.Join(errLow, errHigh); err != nil {
		return nil, err
	}
	for i := range chunks {
		from := i * sealedChunkSize
		size := min(plainChunkSize, len(payload)-from-chacha20poly1305.Overhead)
		copy(buf[i*plainChunkSize:], payload[from:from+size])
	}
	return buf[:n], nil
}

// payloadChunks returns the number of chunks of a payload (after the
// nonce) of size bytes and the plaintext's size, as age counts them.
func payloadChunks(size int) (chunks, plain int, err error) {
	chunks = (size + sealedChunkSize - 1) / sealedChunkSize
	plain = size - chunks*chacha20poly1305.Overhead
	want := (plain + plainChunkSize - 1) / plainChunkSize
	if plain == 0 {
		want = 1 // only an empty plaintext has (and needs) an empty chunk
	}
	if chunks == 0 || plain < 0 || want != chunks {
		return 0, 0, fmt.Errorf("%w: a payload of %d bytes", ErrNotAge, size)
	}
	return chunks, plain, nil
}
