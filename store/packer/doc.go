// Package packer stores blobs on friends: its Writer deduplicates blobs
// against the catalog, gathers them into packs, seals each pack into k+m
// shards, puts one shard on each target and, once every target has
// acknowledged its shard, records the pack in the catalog. It goes on
// without a target that fails, cutting the pack again for the ones left.
package packer
