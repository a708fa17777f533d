// Package holdstore keeps the shards a plug holds for its friends on its own
// disk: durable storage, exact per-owner quota accounting, and proofs of
// storage (Bao slices checked against the shard ID).
//
// It is not the network protocol: the caller (package p2p) authenticates the
// friend and passes its peer ID as owner, which this package trusts. It does
// not trust the bytes: a shard is kept only when it hashes to its ID. It
// never logs; [Open] reports what it repaired in a [Repair].
//
// # On disk
//
// Under the directory given to [Open] (the daemon uses DIR/shards), one
// directory per owner, named by the owner's peer ID string, holds for each
// shard its body and its Bao outboard tree:
//
//	DIR/shards/<owner peer ID>/<shard ID, 64 hex digits>        the shard's bytes
//	DIR/shards/<owner peer ID>/<shard ID, 64 hex digits>.obao   its Bao outboard tree
//	DIR/shards/<owner peer ID>/.put-*                           a put in progress
//
// The outboard tree uses Bao chunk groups of 2^4 BLAKE3 chunks (16 KiB): the
// tree of a 32 MiB shard is 128 KiB, and a proof carries whole 16 KiB groups.
// Its root is the plain BLAKE3-256 hash of the shard, which is the shard ID.
// The group size is part of the proof format: owner and friend must agree.
//
// Metadata lives in the kv.Held space, in two kinds of records (integers
// little-endian; len is one byte, the length of the owner's peer ID bytes):
//
//	's' len owner shardID(32) → size u64, time stored i64 (Unix nanoseconds)
//	'u' len owner             → bytes used u64, shard count u64
//
// A usage record exists while its owner has at least one shard.
//
// # Crash safety
//
// [Store.Put] writes the body and the outboard tree to temporary files, checks
// the hash, fsyncs the body, renames both into place, fsyncs the directory
// and only then records the shard with a synced kv transaction: a shard
// acknowledged is on disk, synced. The tree is not synced, as it can always
// be made again from the body: a crash may leave it missing, short or
// garbled. [Open] removes what an interrupted put left, deletes files without
// a record, makes again the trees that are missing or of the wrong size,
// drops records whose body is missing, of the wrong size or (when its tree
// had to be made again) no longer hashes to its ID, and recomputes every
// owner's usage from the records; a shard whose tree cannot be written
// (a full disk) is kept. [Store.Prove] checks each proof before answering,
// and when the check fails makes the tree again in memory, answers from it
// and puts it in place: a tree garbled at its right size is found there.
// A shard found there to no longer hash to its ID is dropped.
package holdstore
