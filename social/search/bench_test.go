package search

import (
	"io/fs"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"
)

// benchDocs is the size of the benchmark index: a plug with a few years
// of posts and imported archives.
const benchDocs = 100_000

// BenchmarkIndex builds a 100,000-document index on disk, putting the
// documents a thousand at a time as an import would, and reports docs/s
// and the size of the index on disk.
func BenchmarkIndex(b *testing.B) {
	docs := newCorpus(1).docs(benchDocs)
	var textBytes int64
	for _, d := range docs {
		textBytes += int64(len(d.Text) + len(d.Summary))
	}
	b.SetBytes(textBytes)
	b.ReportAllocs()
	var size int64
	var peak int64
	for b.Loop() {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "search")
		x, err := Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		peak = max(peak, buildIndex(b, x, docs))
		b.StopTimer()
		if err := x.Close(); err != nil {
			b.Fatal(err)
		}
		size = dirSize(b, dir)
		b.StartTimer()
	}
	b.ReportMetric(float64(benchDocs)*float64(b.N)/b.Elapsed().Seconds(), "docs/s")
	b.ReportMetric(float64(size)/(1<<20), "disk-MiB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}

// buildIndex puts docs a batch at a time and returns the largest live
// heap seen after a batch (sampled every ten batches, outside the timer),
// less the heap in use before it started.
func buildIndex(b *testing.B, x *Index, docs []Doc) (peakHeap int64) {
	b.Helper()
	base := heapAfterGC()
	for start := 0; start < len(docs); start += putBatchSize {
		if err := x.Put(docs[start:min(start+putBatchSize, len(docs))]...); err != nil {
			b.Fatal(err)
		}
		if start%(10*putBatchSize) == 0 {
			b.StopTimer()
			peakHeap = max(peakHeap, heapAfterGC()-base)
			b.StartTimer()
		}
	}
	return peakHeap
}

// BenchmarkSearch builds a 100,000-document index once, reopens it as the
// daemon would after a restart, and runs a mix of a thousand typical
// queries (see corpus.queries) one after another, reporting queries/s, p50
// and p99 latency, the heap the open, idle index holds after GC
// (idle-heap-MiB) and still holds after the queries (heap-after-MiB).
// Building takes about 15 s on two cores; run it with the default
// -benchtime: go test -run '^$' -bench . ./social/search
func BenchmarkSearch(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "search")
	x, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	c := newCorpus(1)
	for start := 0; start < benchDocs; start += putBatchSize {
		docs := make([]Doc, 0, putBatchSize)
		for i := start; i < min(start+putBatchSize, benchDocs); i++ {
			docs = append(docs, c.doc(i))
		}
		if err := x.Put(docs...); err != nil {
			b.Fatal(err)
		}
	}
	if err := x.Close(); err != nil {
		b.Fatal(err)
	}
	queries := c.queries(1000)

	before := heapAfterGC()
	x, err = Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer closeOK(b, x)
	idle := heapAfterGC() - before
	if n, err := x.Count(); err != nil || n != benchDocs {
		b.Fatalf("Count = %d, %v; want %d", n, err, benchDocs)
	}

	// One op runs all the queries once, so that the percentiles rest on a
	// thousand samples or more whatever -benchtime says.
	b.Run("mix", func(b *testing.B) {
		var lat []time.Duration
		ctx := b.Context()
		b.ReportAllocs()
		for b.Loop() {
			for _, q := range queries {
				start := time.Now()
				if _, err := x.Search(ctx, Query{Text: q}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
		}
		slices.Sort(lat)
		pct := func(p float64) float64 {
			return float64(lat[min(int(p*float64(len(lat))), len(lat)-1)]) / float64(time.Millisecond)
		}
		b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "qps")
		b.ReportMetric(pct(0.50), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
		b.ReportMetric(float64(idle)/(1<<20), "idle-heap-MiB")
		b.ReportMetric(float64(heapAfterGC()-before)/(1<<20), "heap-after-MiB")
	})
}

// heapAfterGC returns the live heap, in bytes, after a full collection.
func heapAfterGC() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

func dirSize(b *testing.B, dir string) int64 {
	b.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}
