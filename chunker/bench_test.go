package chunker

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// BenchmarkChunker chunks 64 MiB of random bytes from memory with the default
// sizes, through the Chunker's buffer.
func BenchmarkChunker(b *testing.B) {
	data := big64()
	var r bytes.Reader
	c, err := New(nil, Config{Gear: GearTable(testKey(1))})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		r.Reset(data)
		c.Reset(&r)
		for {
			if _, err := c.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	b.ReportMetric(float64(len(data))*float64(b.N)/float64(n), "B/chunk")
}

// BenchmarkBoundary cuts 64 MiB of random bytes in memory: the cut loop
// alone, without the Chunker's copying.
func BenchmarkBoundary(b *testing.B) {
	data := big64()
	var c cutter
	c.init(Config{Gear: GearTable(testKey(1))})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		for p := data; len(p) > 0; {
			p = p[c.cut(p):]
		}
	}
}

// BenchmarkChunkID hashes 1 MiB chunks with keyed BLAKE3.
func BenchmarkChunkID(b *testing.B) {
	data := randomBytes(1, 1<<20)
	k := NewIDKeyer(testKey(1))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		k.ID(data)
	}
}

// BenchmarkChunkerReset chunks 1,000 small files (0 to 64 KiB, as in a
// backup of a home directory) with one Chunker.
func BenchmarkChunkerReset(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	files := make([][]byte, 1000)
	total := 0
	for i := range files {
		files[i] = randomBytes(uint64(i), rng.IntN(64<<10))
		total += len(files[i])
	}
	var r bytes.Reader
	c, err := New(nil, Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(total))
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range files {
			r.Reset(f)
			c.Reset(&r)
			for {
				if _, err := c.Next(); err != nil {
					break
				}
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(files)), "ns/file")
}
