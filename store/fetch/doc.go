// Package fetch gets packs back from the friends that hold their shards:
// the fastest holders first (data shards before parity, which saves
// decoding), each shard checked against its ID before use, another holder
// asked when one is missing, wrong or slow to fail. It reports every bad
// shard it meets.
package fetch
