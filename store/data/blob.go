package data

import "fmt"

// BlobType says what a blob in a pack holds.
type BlobType uint8

// Blob types. Stored in packs: never renumber.
const (
	DataBlob  BlobType = 1 // file content
	TreeBlob  BlobType = 2 // a serialized directory listing
	IndexBlob BlobType = 3 // an index segment: where the chunks of some packs are
	StateBlob BlobType = 4 // the plug's own state (friends, posts, settings)
)

func (t BlobType) String() string {
	switch t {
	case DataBlob:
		return "data"
	case TreeBlob:
		return "tree"
	case IndexBlob:
		return "index"
	case StateBlob:
		return "state"
	}
	return fmt.Sprintf("blob-type-%d", uint8(t))
}

// Compression of a blob inside a pack.
type Compression uint8

// Compression methods. Stored in packs: never renumber.
const (
	NoCompression Compression = 0
	Zstd          Compression = 1
)
