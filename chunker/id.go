package chunker

import (
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/zeebo/blake3"
)

// ID names a chunk: the keyed BLAKE3-256 hash of its plaintext. Without the
// key, an ID tells nothing about the chunk, not even whether someone else has
// a chunk with the same bytes.
type ID [32]byte

// ParseID decodes the 64 hex digits of an ID (either case).
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != hex.EncodedLen(len(id)) {
		return ID{}, fmt.Errorf("parse chunk ID: got %d characters, want %d hex digits", len(s), hex.EncodedLen(len(id)))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return ID{}, fmt.Errorf("parse chunk ID %q: %w", s, err)
	}
	return id, nil
}

// String returns the ID in lowercase hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits of the ID, for people and logs.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsZero reports whether id is all zeros (unset).
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText encodes the ID as in String.
func (id ID) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, id[:]), nil }

// UnmarshalText decodes an ID written by MarshalText.
func (id *ID) UnmarshalText(text []byte) error {
	p, err := ParseID(string(text))
	if err != nil {
		return err
	}
	*id = p
	return nil
}

// IDKeyer computes the IDs of chunks under one key. It is safe for concurrent
// use and, once warm, allocates nothing per ID.
type IDKeyer struct {
	key     [32]byte
	hashers sync.Pool // of *blake3.Hasher keyed with key
}

// NewIDKeyer returns an IDKeyer for key, the owner's chunk-ID key.
func NewIDKeyer(key [32]byte) *IDKeyer {
	k := &IDKeyer{key: key}
	k.hashers.New = func() any {
		h, err := blake3.NewKeyed(k.key[:])
		if err != nil {
			panic(err) // unreachable: the key has 32 bytes
		}
		return h
	}
	return k
}

// ID returns the keyed BLAKE3-256 hash of data.
func (k *IDKeyer) ID(data []byte) ID {
	h := k.hashers.Get().(*blake3.Hasher)
	h.Reset()
	_, _ = h.Write(data)
	var id ID
	h.Sum(id[:0])
	k.hashers.Put(h)
	return id
}
