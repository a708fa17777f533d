package holdstore

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/plug-net/plug/p2p/proof"
)

// BenchmarkPut stores 8 MiB shards: hashing, the outboard tree, writing
// both files and syncing the body, the synced record.
func BenchmarkPut(b *testing.B) {
	ts := newStore(b)
	owner := newOwner(b)
	const n = 8 << 20
	shard := make([]byte, n)
	rng := rand.NewChaCha8([32]byte{1})
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		rng.Read(shard)
		id := blake3.Sum256(shard)
		b.StartTimer()
		if err := ts.Put(b.Context(), owner, id, n, bytes.NewReader(shard), noQuota); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProve makes proofs of random 64 KiB ranges of an 8 MiB shard:
// the friend's side of a proof of storage.
func BenchmarkProve(b *testing.B) {
	ts := newStore(b)
	owner := newOwner(b)
	const n = 8 << 20
	id, shard := newShard(n)
	ts.put(b, owner, id, shard)
	rng := rand.New(rand.NewPCG(1, 2))
	b.SetBytes(proof.MaxLength)
	b.ReportAllocs()
	var proofBytes int
	for b.Loop() {
		off := rng.Uint64N(n - proof.MaxLength)
		slice, err := ts.Prove(b.Context(), owner, id, off, proof.MaxLength)
		if err != nil {
			b.Fatal(err)
		}
		proofBytes = len(slice)
	}
	b.ReportMetric(float64(proofBytes), "proof-bytes")
}

// BenchmarkVerifyProof checks proofs of 64 KiB ranges of an 8 MiB shard:
// the owner's side.
func BenchmarkVerifyProof(b *testing.B) {
	ts := newStore(b)
	owner := newOwner(b)
	const n = 8 << 20
	id, shard := newShard(n)
	ts.put(b, owner, id, shard)
	const off = n/2 + 1000
	slice, err := ts.Prove(b.Context(), owner, id, off, proof.MaxLength)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(proof.MaxLength)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := proof.Verify(id, n, off, proof.MaxLength, slice); err != nil {
			b.Fatal(err)
		}
	}
}
