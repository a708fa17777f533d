// Package pack is the plaintext format of a pack: the stored bytes of each
// blob back to back, then a trailer of fixed-size entries (type,
// compression, chunk ID, lengths), the blob count and the magic "plugpak1"
// (DESIGN.md, "Formats"). It builds packs, parses and checks them, and
// extracts a blob checked against its keyed chunk ID. It is pure: no store,
// no network, no logging.
package pack
