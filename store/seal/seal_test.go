package seal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"filippo.io/age"

	"github.com/plug-net/plug/crypto"
	"github.com/plug-net/plug/crypto/cryptotest"
	"github.com/plug-net/plug/p2p/proof"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/pack"
)

func cloneShards(s [][]byte) [][]byte {
	out := make([][]byte, len(s))
	for i, b := range s {
		out[i] = bytes.Clone(b)
	}
	return out
}

// TestSealOpenAnyK checks the promise of erasure coding: every choice of k
// shards out of k+m rebuilds the pack byte for byte.
func TestSealOpenAnyK(t *testing.T) {
	keys := cryptotest.FixedKeys(t)
	for _, km := range [][2]int{{1, 0}, {1, 1}, {2, 1}, {3, 1}, {4, 2}, {3, 3}} {
		k, m := km[0], km[1]
		for _, size := range []int{1, 1000, 1 << 20, 3<<20 + 777} {
			t.Run(fmt.Sprintf("%d+%d/%d", k, m, size), func(t *testing.T) {
				plain := randBytes(uint64(size), size)
				s, err := NewSealer(keys.AgeRecipient()).Seal(plain, k, m)
				if err != nil {
					t.Fatal(err)
				}
				if got := len(s.Shards); got != k+m {
					t.Fatalf("%d shards, want %d", got, k+m)
				}
				orig := cloneShards(s.Shards)
				o := NewOpener(keys.AgeIdentity())
				n := k + m
				for mask := 0; mask < 1<<n; mask++ {
					shards := make([][]byte, n)
					have := 0
					for i := range n {
						if mask&(1<<i) != 0 {
							shards[i] = bytes.Clone(orig[i])
							have++
						}
					}
					got, bad, err := o.Open(s.Shape, shards)
					if len(bad) != 0 {
						t.Fatalf("mask %b: intact shards reported bad: %v", mask, bad)
					}
					if have < k {
						if !errors.Is(err, ErrNotEnoughShards) {
							t.Fatalf("mask %b: %d shards: err = %v, want ErrNotEnoughShards", mask, have, err)
						}
						continue
					}
					if err != nil {
						t.Fatalf("mask %b: %v", mask, err)
					}
					if !bytes.Equal(got, plain) {
						t.Fatalf("mask %b: rebuilt pack differs", mask)
					}
				}
			})
		}
	}
}

// TestOpenExcludesCorruptShards: a shard that does not match its ID is
// reported and never reaches the decoder, so the pack still opens from the
// others, and fails cleanly when too few are left.
func TestOpenExcludesCorruptShards(t *testing.T) {
	keys := cryptotest.FixedKeys(t)
	plain := randBytes(7, 300_000)
	s, err := NewSealer(keys.AgeRecipient()).Seal(plain, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	orig := cloneShards(s.Shards)
	other, err := NewSealer(keys.AgeRecipient()).Seal(randBytes(8, 300_000), 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	faults := map[string]func([]byte) []byte{
		"flip":       func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b },
		"truncate":   func(b []byte) []byte { return b[:len(b)-1] },
		"empty":      func(b []byte) []byte { return b[:0] },
		"substitute": func([]byte) []byte { return bytes.Clone(other.Shards[0]) }, // a valid shard of the owner's
	}
	for name, f := range faults {
		t.Run(name, func(t *testing.T) {
			o := NewOpener(keys.AgeIdentity())
			// Two bad shards, one of them a data shard: 3 intact remain.
			shards := cloneShards(orig)
			shards[0] = f(shards[0])
			shards[4] = f(shards[4])
			got, bad, err := o.Open(s.Shape, shards)
			if err != nil {
				t.Fatalf("Open with 2 bad of 5 (k=3): %v", err)
			}
			if !bytes.Equal(got, plain) {
				t.Fatal("pack rebuilt wrong")
			}
			if len(bad) != 2 || bad[0].Index != 0 || bad[1].Index != 4 || !errors.Is(bad[0], ErrShardMismatch) {
				t.Fatalf("bad shards reported: %v, want shards 0 and 4", bad)
			}
			// A third bad shard leaves 2 < k: a clean error, no plaintext.
			shards = cloneShards(orig)
			for _, i := range []int{0, 2, 4} {
				shards[i] = f(shards[i])
			}
			got, bad, err = o.Open(s.Shape, shards)
			if !errors.Is(err, ErrNotEnoughShards) || got != nil || len(bad) != 3 {
				t.Fatalf("Open with 3 bad of 5: got %d bytes, %d bad, err %v", len(got), len(bad), err)
			}
		})
	}
}

func TestOpenWrongOwner(t *testing.T) {
	keys := cryptotest.FixedKeys(t)
	s, err := NewSealer(keys.AgeRecipient()).Seal([]byte("private"), 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := age.GenerateHybridIdentity()
	_, _, err = NewOpener(other).Open(s.Shape, cloneShards(s.Shards))
	if err == nil {
		t.Fatal("another identity opened the pack")
	}
}

func TestPackIDNamesShards(t *testing.T) {
	keys := cryptotest.FixedKeys(t)
	s, err := NewSealer(keys.AgeRecipient()).Seal(randBytes(1, 5000), 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	sh := s.Shape
	sh.ShardIDs = append([]data.ID(nil), sh.ShardIDs...)
	sh.ShardIDs[2][0] ^= 1
	if sh.PackID() == s.ID {
		t.Fatal("pack ID does not depend on every shard ID")
	}
	if s.Shape.PackID() != s.ID {
		t.Fatal("pack ID is not deterministic")
	}
}

func BenchmarkSeal(b *testing.B) {
	keys := cryptotest.FixedKeys(b)
	plain := randBytes(1, pack.TargetPackSize)
	s := NewSealer(keys.AgeRecipient())
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Seal(plain, 3, 1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	keys := cryptotest.FixedKeys(b)
	plain := randBytes(1, pack.TargetPackSize)
	s, _ := NewSealer(keys.AgeRecipient()).Seal(plain, 3, 1)
	orig := cloneShards(s.Shards)
	o := NewOpener(keys.AgeIdentity())
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		shards := append([][]byte(nil), orig...)
		shards[0] = nil // one data shard lost: rebuild from parity
		if _, _, err := o.Open(s.Shape, shards); err != nil {
			b.Fatal(err)
		}
	}
}

func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	rand.NewChaCha8(s).Read(b)
	return b
}

// The largest pack Open accepts, sealed with k = 1, is one shard that
// friends take: its ciphertext fits proof.MaxShardSize.
func TestLargestPackFitsAShard(t *testing.T) {
	largest := int64(pack.MaxPackSize)
	if n := crypto.EncryptedSize(largest); n > proof.MaxShardSize {
		t.Fatalf("a pack of %d bytes seals to %d bytes, more than the %d a friend holds", largest, n, proof.MaxShardSize)
	}
}
