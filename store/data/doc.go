// Package data is the model of what a plug backs up: the IDs that name
// chunks, packs, shards and snapshots, the types of blobs in a pack, the
// snapshot record, and the tree (a directory listing) with its binding
// serialization. It is pure: no store, no network, no logging.
package data
