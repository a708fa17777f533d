package kv

import (
	"encoding/binary"
	"testing"
)

func benchKey(i int) []byte {
	return binary.BigEndian.AppendUint64([]byte("chunk-"), uint64(i)*0x9e3779b97f4a7c15)
}

func BenchmarkPut(b *testing.B) {
	db := openDisk(b)
	val := make([]byte, 128)
	b.SetBytes(int64(len(val)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := db.Put(Chunks, benchKey(i), val); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPutSync(b *testing.B) {
	db := openDisk(b)
	val := make([]byte, 128)
	b.SetBytes(int64(len(val)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := db.PutSync(Chunks, benchKey(i), val); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBatchPut(b *testing.B) {
	db := openDisk(b)
	val := make([]byte, 128)
	b.SetBytes(int64(len(val)))
	b.ReportAllocs()
	err := db.Batch(func(batch *Batch) error {
		for i := 0; b.Loop(); i++ {
			if err := batch.Put(Chunks, benchKey(i), val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

func BenchmarkGet(b *testing.B) {
	db := openDisk(b)
	const n = 100_000
	val := make([]byte, 128)
	err := db.Batch(func(batch *Batch) error {
		for i := range n {
			if err := batch.Put(Chunks, benchKey(i), val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(val)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := db.Get(Chunks, benchKey(i%n)); err != nil {
			b.Fatal(err)
		}
	}
}
