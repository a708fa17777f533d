package harvest

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkImportMastodon imports the Mastodon fixture (an unpacked
// folder) into a map, as the social package stores items.
func BenchmarkImportMastodon(b *testing.B) {
	dir := mastodonFixture(b)
	fi, err := os.Stat(filepath.Join(dir, "outbox.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	items := 0
	for b.Loop() {
		s := newMemSink()
		rep, err := ImportMastodon(b.Context(), dir, s.sink, Options{})
		if err != nil {
			b.Fatal(err)
		}
		items += rep.Seen
	}
	b.ReportMetric(float64(items)/b.Elapsed().Seconds(), "items/s")
}

// BenchmarkImportTwitter imports the Twitter fixture into a map.
func BenchmarkImportTwitter(b *testing.B) {
	dir := twitterFixture(b)
	fi, err := os.Stat(filepath.Join(dir, "data", "tweets.js"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	items := 0
	for b.Loop() {
		s := newMemSink()
		rep, err := ImportTwitter(b.Context(), dir, s.sink, Options{})
		if err != nil {
			b.Fatal(err)
		}
		items += rep.Seen
	}
	b.ReportMetric(float64(items)/b.Elapsed().Seconds(), "items/s")
}
