// Package proof is the format of proofs of storage, shared by the friend
// that holds a shard (p2p/holdstore makes proofs) and its owner (the store
// checks them): a Bao slice encoding of a byte range the owner picks at
// random, verified against the shard ID as the Bao root. It also fixes the
// largest shard and the errors both sides use.
package proof
