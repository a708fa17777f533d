// Package store is the peer store: it turns an owner's files into chunks,
// packs, age-encrypted and Reed-Solomon-coded shards, places one shard per
// friend through a ShardTarget, and keeps the catalog (pack table, snapshots,
// head record) that rebuilds everything from any k of k+m shards.
//
// It does not speak to the network itself: shards go to ShardTargets that the
// caller supplies (in memory in tests, friends' plugs over p2p in the daemon).
package store
