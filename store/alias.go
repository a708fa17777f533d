package store

import (
	"github.com/plug-net/plug/store/archiver"
	"github.com/plug-net/plug/store/catalog"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/fetch"
	"github.com/plug-net/plug/store/head"
	"github.com/plug-net/plug/store/index"
	"github.com/plug-net/plug/store/pack"
	"github.com/plug-net/plug/store/packer"
	"github.com/plug-net/plug/store/seal"
	"github.com/plug-net/plug/store/target"
)

// Transitional aliases while the store is split into sub-packages.
type (
	ID           = data.ID
	BlobType     = data.BlobType
	Compression  = data.Compression
	Snapshot     = data.Snapshot
	Tree         = data.Tree
	Node         = data.Node
	BlobEntry    = pack.Entry
	PackBuilder  = pack.Builder
	Shape        = seal.Shape
	Sealer       = seal.Sealer
	Sealed       = seal.Sealed
	Opener       = seal.Opener
	ShardError   = seal.ShardError
	PackEntries  = index.Packed
	Catalog      = catalog.Catalog
	PackRecord   = catalog.PackRecord
	ChunkRef     = catalog.ChunkRef
	ShardTarget  = target.ShardTarget
	Holder       = target.Holder
	MemTarget    = target.MemTarget
	Writer       = packer.Writer
	WriterConfig = packer.Config
	WriterStats  = packer.Stats
)

const (
	DataBlob      = data.DataBlob
	TreeBlob      = data.TreeBlob
	IndexBlob     = data.IndexBlob
	StateBlob     = data.StateBlob
	NoCompression = data.NoCompression
	Zstd          = data.Zstd
	TypeFile      = data.TypeFile
	TypeDir       = data.TypeDir
	TypeSymlink   = data.TypeSymlink
	MaxTreeSize   = data.MaxTreeSize

	TargetPackSize  = pack.TargetPackSize
	MaxBlobSize     = pack.MaxBlobSize
	MaxPackSize     = pack.MaxPackSize
	MaxBlobsPerPack = pack.MaxBlobsPerPack
	MaxDataShards   = seal.MaxDataShards
	MaxParityShards = seal.MaxParityShards
)

var (
	ParseID    = data.ParseID
	DecodeTree = data.DecodeTree
	ErrBadTree = data.ErrBadTree

	NewPackBuilder  = pack.NewBuilder
	ParsePack       = pack.Parse
	ExtractBlob     = pack.Extract
	ErrBadPack      = pack.ErrMalformed
	ErrBlobMismatch = pack.ErrBlobMismatch

	NewSealer          = seal.NewSealer
	NewOpener          = seal.NewOpener
	CheckShards        = seal.CheckShards
	ErrShardMismatch   = seal.ErrShardMismatch
	ErrNotEnoughShards = seal.ErrNotEnoughShards
	ShardIDOf          = seal.ShardID
	recut              = seal.Recut
	openChecked        = seal.OpenChecked

	EncodeIndex       = index.Encode
	DecodeIndex       = index.Decode
	ErrBadIndex       = index.ErrMalformed
	appendPackEntries = index.AppendPacked
	decodePackEntries = index.DecodePacked

	NewCatalog = catalog.NewCatalog

	NewMemTarget  = target.NewMemTarget
	ErrTargetDown = target.ErrTargetDown

	NewWriter        = packer.NewWriter
	ErrTooFewTargets = target.ErrTooFewFriends
	NewFetcher       = fetch.New
)

const MaxIndexSegment = index.MaxSegment

func newSnapshotID() ID { return data.NewSnapshotID() }

type (
	Fetcher  = fetch.Fetcher
	BadShard = fetch.BadShard
)

type (
	HeadDoc = head.Doc
	BlobRef = head.BlobRef
)

// Progress is what a running backup has done so far.
type Progress = archiver.Progress

var openForBackup = archiver.OpenForBackup
