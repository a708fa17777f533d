// Package check finds out whether the friends still hold the owner's data:
// random proofs of storage (Bao slices of ranges chosen at the time of
// asking) or, with ReadData, every shard downloaded and hashed. CanLose is
// the plug's one count of how many friends it can still lose.
package check
