package crypto

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"filippo.io/age"
)

// sealed returns plain age-encrypted to the golden keys' recipient.
func sealed(t testing.TB, plain []byte) []byte {
	t.Helper()
	p, _ := ParsePhrase(goldenPhrase)
	k, _ := DeriveKeys(p)
	var buf bytes.Buffer
	encryptTo(t, &buf, k.AgeRecipient(), plain)
	return buf.Bytes()
}

func goldenIdentity() age.Identity {
	p, _ := ParsePhrase(goldenPhrase)
	k, _ := DeriveKeys(p)
	return k.AgeIdentity()
}

func TestDecryptInPlace(t *testing.T) {
	id := goldenIdentity()
	// Around the chunk size, and around the size from which the two
	// halves are opened at once.
	for _, n := range []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 1<<20 - 1, 1 << 20, 1<<20 + 1, 3<<20 + 5} {
		plain := make([]byte, n)
		rand.NewChaCha8([32]byte{byte(n), byte(n >> 8)}).Read(plain)
		ct := sealed(t, plain)
		buf := bytes.Clone(ct)
		got, err := DecryptInPlace(buf, id)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("n=%d: decrypted bytes differ", n)
		}
		if len(got) > 0 && &got[0] != &buf[0] {
			t.Fatalf("n=%d: the plaintext is not in the caller's buffer", n)
		}
	}
}

func TestDecryptInPlaceRefusesAlteredFiles(t *testing.T) {
	id := goldenIdentity()
	plain := make([]byte, 1<<20+3000) // 17 chunks, two halves
	rand.NewChaCha8([32]byte{7}).Read(plain)
	ct := sealed(t, plain)
	hdr := bytes.Index(ct, []byte("\n--- ")) + 1
	payload := hdr + bytes.IndexByte(ct[hdr:], '\n') + 1 + payloadNonceSize
	cases := map[string][]byte{
		"a header line altered":       flip(ct, 20),
		"the header's MAC altered":    flip(ct, hdr+6),
		"the payload nonce altered":   flip(ct, payload-1),
		"the first chunk altered":     flip(ct, payload+5),
		"a tag in the middle altered": flip(ct, payload+9*sealedChunkSize-1),
		"the last byte altered":       flip(ct, len(ct)-1),
		"one byte cut off":            ct[:len(ct)-1],
		"the last chunk cut off":      ct[:payload+16*sealedChunkSize],
		"a byte appended":             append(bytes.Clone(ct), 0),
		"a whole chunk appended":      append(bytes.Clone(ct), ct[payload:payload+sealedChunkSize]...),
		"two chunks swapped": func() []byte {
			b := bytes.Clone(ct)
			a, c := b[payload+2*sealedChunkSize:payload+3*sealedChunkSize], b[payload+3*sealedChunkSize:payload+4*sealedChunkSize]
			tmp := bytes.Clone(a)
			copy(a, c)
			copy(c, tmp)
			return b
		}(),
		"no payload":       ct[:payload-payloadNonceSize],
		"the nonce only":   ct[:payload],
		"not age at all":   []byte("hello, world\n"),
		"empty":            nil,
		"a tag only, late": append(bytes.Clone(ct[:payload+16*sealedChunkSize]), make([]byte, 16)...),
	}
	for name, b := range cases {
		if _, err := DecryptInPlace(bytes.Clone(b), id); err == nil {
			t.Errorf("%s: opened", name)
		}
		// age itself agrees.
		if r, err := age.Decrypt(bytes.NewReader(b), id); err == nil {
			if _, err := io.ReadAll(r); err == nil {
				t.Errorf("%s: age.Decrypt opened it", name)
			}
		}
	}

	_, err := DecryptInPlace(bytes.Clone(ct), otherKeys(t).AgeIdentity())
	var nm *age.NoIdentityMatchError
	if !errors.As(err, &nm) {
		t.Fatalf("another owner's identity: %v, want no identity match", err)
	}
}

func flip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 0x40
	return b
}

// FuzzDecryptInPlace holds DecryptInPlace to age's own decryption: the same
// plaintext where age opens a file, an error where age refuses it.
//
// It uses an X25519 identity (a test key, fixed so that a failing input
// replays): the payload's handling does not depend on the recipient type,
// and the hybrid one's ML-KEM makes every run slow under the fuzzer's
// coverage instrumentation.
func FuzzDecryptInPlace(f *testing.F) {
	id, err := age.ParseX25519Identity("AGE-SECRET-KEY-1VCYTZMTXATANEX23KA0M8M0E9SRP5P4YK0SU0DL3SH3Y9W89NEVQ3AW0PY")
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range []int{0, 1, 100, 64<<10 + 7} {
		var buf bytes.Buffer
		encryptTo(f, &buf, id.Recipient(), make([]byte, n))
		f.Add(buf.Bytes())
	}
	f.Add([]byte("age-encryption.org/v1\n-> X25519 abc\n\n--- xyz\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<20 {
			return
		}
		// The oracle is what the plug used before: age's DecryptReaderAt,
		// read whole.
		var want []byte
		r, n, err := age.DecryptReaderAt(bytes.NewReader(b), int64(len(b)), id)
		if err == nil {
			want = make([]byte, n)
			if _, err = r.ReadAt(want, 0); err == io.EOF {
				err = nil
			}
		}
		got, gerr := DecryptInPlace(bytes.Clone(b), id)
		switch {
		case err == nil && gerr != nil:
			t.Fatalf("age opens it, DecryptInPlace says %v", gerr)
		case err != nil && gerr == nil:
			t.Fatalf("age refuses it (%v), DecryptInPlace opened %d bytes", err, len(got))
		case err == nil && !bytes.Equal(got, want):
			t.Fatalf("DecryptInPlace's plaintext differs from age's")
		}
	})
}

func BenchmarkDecryptInPlace(b *testing.B) {
	id := goldenIdentity()
	plain := make([]byte, 8<<20)
	rand.NewChaCha8([32]byte{1}).Read(plain)
	ct := sealed(b, plain)
	buf := make([]byte, len(ct))
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		copy(buf, ct)
		if _, err := DecryptInPlace(buf, id); err != nil {
			b.Fatal(err)
		}
	}
}
