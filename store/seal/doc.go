// Package seal turns a pack's plaintext into shards and back: age
// encryption to the owner (encrypted in place in one reusable buffer), then
// Reed-Solomon coding into k data and m parity shards, each named by its
// BLAKE3 hash; the pack ID names them all (DESIGN.md, "Pack → shards").
// Opening checks every shard against its ID before the decoder sees it. It
// is pure: no store, no network, no logging.
package seal
