// Package index is the format of index segments: which blobs each pack
// holds and where ("plugidx1", then per pack its ID, a blob count and fixed
// 46-byte entries; DESIGN.md, "Index segment"). A recovered plug rebuilds
// its chunk index from the segments its head record names. It is pure: no
// store, no network, no logging.
package index
