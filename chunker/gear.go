package chunker

import (
	"encoding/binary"
	"sync"

	"github.com/zeebo/blake3"
)

// GearContext is the BLAKE3 derive_key context string of gear tables.
const GearContext = "plug/gear"

// GearTable returns the gear table of key: 2048 bytes of BLAKE3 in derive_key
// mode, with context GearContext and key as the key material, read as 256
// little-endian uint64 values. Pass the owner's chunk-ID key, so that chunk
// boundaries, and so the sizes of the chunks that friends store, depend on a
// secret: without it, nobody can tell which file was backed up from the
// pattern of chunk sizes.
func GearTable(key [32]byte) *[256]uint64 {
	var raw [256 * 8]byte
	blake3.DeriveKey(GearContext, key[:], raw[:])
	var g [256]uint64
	for i := range g {
		g[i] = binary.LittleEndian.Uint64(raw[8*i:])
	}
	return &g
}

// defaultGear returns the table of the all-zero key, computed once and never
// changed.
var defaultGear = sync.OnceValue(func() *[256]uint64 { return GearTable([32]byte{}) })
