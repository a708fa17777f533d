package social

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/plug-net/plug/crypto/cryptotest"
	"github.com/plug-net/plug/social/harvest"
	"github.com/plug-net/plug/store/kv"
)

// BenchmarkImportMastodon imports the Mastodon fixture into a fresh plug
// (a new badger store and search index on disk, as the daemon has) at
// each iteration. Target: at least 5,000 items/s.
func BenchmarkImportMastodon(b *testing.B) {
	src := filepath.Join(fixtures(b), "mastodon-archive")
	ctx := context.Background()
	keys := cryptotest.NewKeys(b)
	items := 0
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		db, err := kv.Open(filepath.Join(dir, "db"), kv.Options{})
		if err != nil {
			b.Fatal(err)
		}
		s, err := New(ctx, Config{DB: db, Keys: keys, Name: "ann", Dir: filepath.Join(dir, "social"), SearchDir: filepath.Join(dir, "search")})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		rep, err := s.Import(ctx, SourceMastodon, src, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if rep.Imported == 0 {
			b.Fatalf("nothing imported: %+v", rep)
		}
		items += rep.Seen
		if err := errors.Join(s.Close(), db.Close()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(items)/b.Elapsed().Seconds(), "items/s")
}

// BenchmarkTimeline reads pages of 50 from a timeline of 20,000 items:
// the newest page, a page deep in the past, and a page filtered by author
// that must look through most of the items.
func BenchmarkTimeline(b *testing.B) {
	const n = 20000
	s := newService(b, "ann")
	ctx := context.Background()
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	batch := newImportBatch(s)
	for i := range n {
		author := "@ann@example.social"
		if i%100 == 0 {
			author = "@rare@example.social"
		}
		it := harvest.Item{Source: harvest.SourceFeed, OriginalID: fmt.Sprint(i), Author: author, Time: base.Add(time.Duration(i) * time.Minute),
			Text: fmt.Sprintf("item %d of the benchmark, with a few words to index #tag%d", i, i%10)}
		if _, err := batch.add(ctx, it); err != nil {
			b.Fatal(err)
		}
	}
	if err := batch.flush(true); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		q    TimelineQuery
	}{
		{"newest", TimelineQuery{Limit: 50}},
		{"deep", TimelineQuery{Limit: 50, Before: base.Add(n / 4 * time.Minute)}},
		{"author", TimelineQuery{Limit: 50, Author: "@rare@example.social"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				es, err := s.Timeline(ctx, c.q)
				if err != nil || len(es) != 50 {
					b.Fatalf("Timeline: %d entries, %v", len(es), err)
				}
			}
		})
	}
}
