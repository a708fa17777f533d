package crypto

import (
	"fmt"
	"io"

	"filippo.io/age"
)

// Encrypt returns a WriteCloser that age-encrypts everything written to it
// into dst, for the given recipients. Close must be called to flush the last
// chunk; it does not close dst. Memory use is constant (age's 64 KiB STREAM
// chunks), whatever the size of the plaintext.
func Encrypt(dst io.Writer, recipients ...age.Recipient) (io.WriteCloser, error) {
	w, err := age.Encrypt(dst, recipients...)
	if err != nil {
		return nil, fmt.Errorf("age encrypt: %w", err)
	}
	return w, nil
}

// Decrypt returns a Reader of the plaintext of the age file read from src.
// Every chunk is authenticated before it is returned: a reader that ends in an
// error has returned only authentic bytes, and the error says the rest was
// truncated or altered.
func Decrypt(src io.Reader, identities ...age.Identity) (io.Reader, error) {
	r, err := age.Decrypt(src, identities...)
	if err != nil {
		return nil, fmt.Errorf("age decrypt: %w", err)
	}
	return r, nil
}

// DecryptReaderAt returns a ReaderAt of the plaintext of the age file of
// size bytes in src, and the plaintext's size. Each ReadAt authenticates the
// chunks it reads (and the final chunk is checked first, so a truncated or
// extended file fails here); ReadAt may be called from several goroutines.
// It copies less than Decrypt: a chunk is read, opened in place and copied
// out, where Decrypt's reader copies each byte three times and allocates a
// chunk buffer per chunk.
func DecryptReaderAt(src io.ReaderAt, size int64, identities ...age.Identity) (io.ReaderAt, int64, error) {
	r, n, err := age.DecryptReaderAt(src, size, identities...)
	if err != nil {
		return nil, 0, fmt.Errorf("age decrypt: %w", err)
	}
	return r, n, nil
}

// EncryptedSize returns the size of the age file for a plaintext of n bytes,
// without the header: 16 bytes of nonce, then 64 KiB chunks each with a
// 16-byte tag.
func EncryptedSize(n int64) int64 {
	const chunk, tag, nonce = 64 << 10, 16, 16
	chunks := n / chunk
	if n%chunk != 0 || n == 0 {
		chunks++
	}
	return nonce + n + chunks*tag
}
