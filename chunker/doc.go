// Package chunker splits a stream into content-defined chunks with FastCDC
// and names each chunk by its keyed BLAKE3 hash. It does no I/O beyond
// reading the io.Reader it is given, never logs, and knows nothing of packs,
// shards or the network.
//
// # Chunking
//
// Boundaries follow FastCDC (Xia et al., "FastCDC: a Fast and Efficient
// Content-Defined Chunking Approach for Data Deduplication", USENIX ATC 2016)
// with normalized chunking at level 2. A gear hash rolls over the bytes,
// fp = fp<<1 + Gear[b], so that fp depends on the last 64 bytes only. The
// first Min bytes of a chunk are never cut (the hash starts 64 bytes before
// Min, so every tested fp covers a full window); while the chunk is shorter
// than Avg it ends after a byte where fp has log2(Avg)+2 chosen bits all
// zero (MaskS), from Avg on where it has log2(Avg)-2 such bits zero (MaskL),
// and at Max bytes at the latest. The chosen bits are bits 62 and below, the
// most-mixed ones. The inner loop rolls two bytes per step (FastCDC 2020).
// Boundary gives the rule as a pure function; Boundary and Chunker.Next cut
// the same chunks.
//
// An insertion or change in a file therefore alters only the chunks around
// it: the boundaries after it come back in place and the chunks there
// deduplicate. With the defaults (DefaultMin, DefaultAvg, DefaultMax: 256 KiB,
// 1 MiB, 4 MiB) the mean chunk on random data is about 1.14 MiB: Avg is the
// size where the masks switch, as in the paper, not the exact mean.
//
// A Chunker reads through a buffer that grows as needed up to 2×Max bytes, so
// memory is bounded whatever the size of the stream, and a small file costs a
// small buffer. Reset reuses the buffer for the next stream.
//
// # Keys
//
// Both the gear table and the chunk IDs depend on the owner's 32-byte chunk-ID
// key (DESIGN.md: HKDF label "plug/chunk-id"):
//
//   - GearTable(key) is 2048 bytes of BLAKE3 in derive_key mode with the
//     context "plug/gear" (GearContext) and the key as key material, read as
//     256 little-endian uint64 values. With a secret gear table the sizes of
//     the chunks that friends store say nothing about which files they came
//     from; with a public one, a known file could be recognized by its
//     pattern of chunk sizes.
//   - An ID is BLAKE3-256 in keyed-hash mode with the key, over the chunk's
//     plaintext (IDKeyer), so IDs say nothing about contents either.
//
// The two uses of the key are domain-separated by BLAKE3's modes.
package chunker
