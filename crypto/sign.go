package crypto

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrBadSignature is returned when a signature does not verify.
var ErrBadSignature = errors.New("signature does not verify")

// signPrefix separates plug signatures from any other use of the key.
const signPrefix = "plug signature v1\x00"

func signedMessage(context string, msg []byte) []byte {
	b := make([]byte, 0, len(signPrefix)+len(context)+1+len(msg))
	b = append(b, signPrefix...)
	b = append(b, context...)
	b = append(b, 0)
	return append(b, msg...)
}

// Sign signs msg with the identity key under a context string (for example
// "head" or "post"), so that a signature made for one purpose is never valid
// for another.
func Sign(key ed25519.PrivateKey, context string, msg []byte) []byte {
	return ed25519.Sign(key, signedMessage(context, msg))
}

// Verify checks a signature made by Sign with the same context.
func Verify(pub ed25519.PublicKey, context string, msg, sig []byte) error {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return ErrBadSignature
	}
	if !ed25519.Verify(pub, signedMessage(context, msg), sig) {
		return ErrBadSignature
	}
	return nil
}

// PeerPublicKey returns the Ed25519 public key inlined in a libp2p peer ID,
// so that a signature can be checked knowing only who made it.
func PeerPublicKey(id peer.ID) (ed25519.PublicKey, error) {
	pk, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("public key of %s: %w", id, err)
	}
	if pk.Type() != p2pcrypto.Ed25519 {
		return nil, fmt.Errorf("public key of %s: %s key, want Ed25519", id, pk.Type())
	}
	raw, err := pk.Raw()
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key of %s: malformed Ed25519 key", id)
	}
	return ed25519.PublicKey(raw), nil
}
