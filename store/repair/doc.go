// Package repair gives the role of friends that are gone, no longer
// friends, or failed proofs of storage to others: each of their shards is
// rebuilt from k others and placed on a reachable friend that holds no
// shard of its pack, or, when there is none, the pack is cut again over
// the friends left.
package repair
