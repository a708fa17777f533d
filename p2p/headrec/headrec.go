// Package headrec is the head record's envelope: the owner's encrypted
// catalog root, signed by its identity key so that friends can check whose
// it is and which version is newest without reading it.
package headrec

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/plug-net/plug/crypto"
)

// Head records. The owner's catalog root travels as a signed envelope that
// friends can check without reading it:
//
//	"PLHD" | version u64 | time (unix ns) i64 | peer ID length u8 | owner peer ID
//	| ciphertext length u32 | ciphertext (age, to the owner) | Ed25519 signature (64)
//
// integers big-endian; the signature (context "head") covers every byte
// before it and is made by the owner's identity key, whose public half is in
// the peer ID. A friend keeps the highest version it has seen for each
// owner; a restore takes the highest valid version among all friends.
const (
	magic = "PLHD"
	// MaxCiphertext bounds the encrypted catalog in a head record.
	MaxCiphertext = 32 << 20
	// MaxSize bounds a whole head envelope.
	MaxSize = MaxCiphertext + 512
)

// ErrBad is wrapped by every error about a head envelope that is
// malformed or not signed by its owner.
var ErrBad = errors.New("bad head record")

// Head is an opened head envelope: signature checked, contents still
// encrypted.
type Head struct {
	Owner      peer.ID
	Version    uint64
	Time       time.Time
	Ciphertext []byte
}

// Seal signs a head record.
func Seal(key ed25519.PrivateKey, owner peer.ID, version uint64, t time.Time, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) > MaxCiphertext {
		return nil, fmt.Errorf("seal head: %d bytes of catalog, more than %d", len(ciphertext), MaxCiphertext)
	}
	b := make([]byte, 0, len(ciphertext)+200)
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint64(b, version)
	b = binary.BigEndian.AppendUint64(b, uint64(t.UnixNano()))
	b = append(b, byte(len(owner)))
	b = append(b, owner...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ciphertext)))
	b = append(b, ciphertext...)
	return append(b, crypto.Sign(key, "head", b)...), nil
}

// Open parses a head envelope and checks its signature against the
// owner named in it. Callers must also check that the owner is who they
// expect.
func Open(b []byte) (Head, error) {
	var h Head
	if len(b) > MaxSize {
		return h, fmt.Errorf("%w: %d bytes", ErrBad, len(b))
	}
	if len(b) < 4+8+8+1+4+ed25519.SignatureSize || string(b[:4]) != magic {
		return h, fmt.Errorf("%w: not a head record", ErrBad)
	}
	body, sig := b[:len(b)-ed25519.SignatureSize], b[len(b)-ed25519.SignatureSize:]
	p := body[4:]
	h.Version = binary.BigEndian.Uint64(p)
	h.Time = time.Unix(0, int64(binary.BigEndian.Uint64(p[8:])))
	n := int(p[16])
	p = p[17:]
	if len(p) < n+4 {
		return h, fmt.Errorf("%w: truncated", ErrBad)
	}
	owner, err := peer.IDFromBytes(p[:n])
	if err != nil {
		return h, fmt.Errorf("%w: owner: %v", ErrBad, err)
	}
	p = p[n:]
	cl := binary.BigEndian.Uint32(p)
	p = p[4:]
	if uint64(cl) != uint64(len(p)) {
		return h, fmt.Errorf("%w: ciphertext of %d bytes announced, %d present", ErrBad, cl, len(p))
	}
	pub, err := crypto.PeerPublicKey(owner)
	if err != nil {
		return h, fmt.Errorf("%w: %v", ErrBad, err)
	}
	if err := crypto.Verify(pub, "head", body, sig); err != nil {
		return h, fmt.Errorf("%w: %v", ErrBad, err)
	}
	h.Owner, h.Ciphertext = owner, p
	return h, nil
}
