// Package catalog is the owner's local record of its backups in store/kv:
// the chunk index (chunk ID → pack, place and lengths: space Chunks) and the
// pack table (pack ID → shape and the holder of each shard: space Packs),
// with the packs that still await an index segment. A pack is recorded only
// after every holder acknowledged its shard; a recovered plug rebuilds the
// catalog from its head record and index segments.
package catalog
