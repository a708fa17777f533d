// Package head is the head record's document: the owner's catalog root
// (snapshots, where every pack's shards live, friends, index segments,
// state, settings), zstd-compressed JSON encrypted to the owner with age and
// signed into the envelope that friends keep (DESIGN.md, "Head record"). It
// builds and opens records; it keeps nothing and speaks to no one.
package head
