package harvest

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestImporters: the registry lists every importer, in the order people
// see them, each with its words for people; Lookup finds each by its
// source and nothing else; and each, called through the registry, imports
// a sample export as items of its own source.
func TestImporters(t *testing.T) {
	want := []Source{SourceMastodon, SourceTwitter, SourceFeed}
	if got := Sources(); !slices.Equal(got, want) {
		t.Fatalf("Sources() = %q, want %q", got, want)
	}
	samples := map[Source]string{
		SourceMastodon: mastodonFixture(t),
		SourceTwitter:  twitterFixture(t),
		SourceFeed:     filepath.Join("testdata", "rss.xml"),
	}
	for _, im := range Importers() {
		t.Run(string(im.Source), func(t *testing.T) {
			if im.Name == "" || im.Label == "" || im.Help == "" {
				t.Errorf("importer %s lacks a name, label or help for people: %+v", im.Source, im)
			}
			if im.Files == "" && !im.URL {
				t.Errorf("importer %s reads neither an upload nor a URL: the import page offers it as a path on the plug only", im.Source)
			}
			if got, ok := Lookup(im.Source); !ok || got.Source != im.Source {
				t.Fatalf("Lookup(%q) = %q, %v", im.Source, got.Source, ok)
			}
			src, ok := samples[im.Source]
			if !ok {
				t.Fatalf("no sample export for importer %s: add one to this test", im.Source)
			}
			sink := newMemSink()
			rep, err := im.Import(t.Context(), src, sink.sink, Options{MaxItems: 20})
			if err != nil || rep.Imported == 0 {
				t.Fatalf("Import(%s) = %d items imported, %v; want some and no error", src, rep.Imported, err)
			}
			for _, it := range sink.items {
				if it.Source != im.Source {
					t.Fatalf("importer %s brought an item of source %q", im.Source, it.Source)
				}
			}
		})
	}
	for _, s := range []Source{"", "plug", "Mastodon", "rss"} {
		if im, ok := Lookup(s); ok {
			t.Errorf("Lookup(%q) found importer %s", s, im.Source)
		}
	}
}
