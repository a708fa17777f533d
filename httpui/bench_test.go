package httpui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/plug-net/plug/crypto"
	"github.com/plug-net/plug/social"
	"github.com/plug-net/plug/store/kv"
)

// benchPosts and benchSnapshots are the sizes the pages must stay fast at.
const (
	benchPosts     = 10_000
	benchSnapshots = 100
)

// newBenchBackend is a plug with a real social.Service over a real badger
// store holding benchPosts posts (imported from a generated Mastodon
// outbox, plus some of the plug's own), benchSnapshots snapshots, 20
// friends and a full event log.
func newBenchBackend(b *testing.B) *fakeBackend {
	b.Helper()
	dir := b.TempDir()
	db, err := kv.Open(filepath.Join(dir, "db"), kv.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := db.Close(); err != nil {
			b.Error(err)
		}
	})
	p, err := crypto.NewPhrase()
	if err != nil {
		b.Fatal(err)
	}
	keys, err := crypto.DeriveKeys(p)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	soc, err := social.New(ctx, social.Config{DB: db, Keys: keys, Name: "ann", Dir: filepath.Join(dir, "social"), SearchDir: filepath.Join(dir, "search")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := soc.Close(); err != nil {
			b.Error(err)
		}
	})

	const own = 100
	public := []string{"https://www.w3.org/ns/activitystreams#Public"}
	items := make([]map[string]any, 0, benchPosts-own)
	start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range benchPosts - own {
		when := start.Add(time.Duration(i) * time.Hour).Format(time.RFC3339)
		id := fmt.Sprintf("https://example.social/users/ann/statuses/%d", i)
		items = append(items, map[string]any{
			"type": "Create", "id": id + "/activity", "published": when, "to": public,
			"object": map[string]any{"type": "Note", "id": id, "url": id, "published": when, "to": public,
				"content": fmt.Sprintf("<p>Toot number %d about <b>gardening</b>, bicycles and the weather #plug%d</p>", i, i%50)},
		})
	}
	export := filepath.Join(dir, "export")
	if err := os.MkdirAll(export, 0o700); err != nil {
		b.Fatal(err)
	}
	outbox, _ := json.Marshal(map[string]any{"type": "OrderedCollection", "orderedItems": items})
	if err := os.WriteFile(filepath.Join(export, "outbox.json"), outbox, 0o600); err != nil {
		b.Fatal(err)
	}
	rep, err := soc.Import(ctx, social.SourceMastodon, export, nil)
	if err != nil || rep.Imported != benchPosts-own {
		b.Fatalf("import: %+v %v", rep, err)
	}
	for i := range own {
		if _, err := soc.Post(ctx, fmt.Sprintf("my own post %d about gardening", i), nil); err != nil {
			b.Fatal(err)
		}
	}

	f := newFake()
	f.social = soc
	for i := range benchSnapshots {
		f.snaps = append(f.snaps, SnapshotInfo{ID: fmt.Sprintf("%064x", i), Time: start.Add(time.Duration(i) * 24 * time.Hour),
			Paths: []string{"/home/ann/photos", "/home/ann/documents"}, Files: 12000, Bytes: 40 << 30, NewBytes: 200 << 20, Host: "ann"})
	}
	for i := range 20 {
		f.friends = append(f.friends, Friend{Name: fmt.Sprintf("friend %d", i), PeerID: fmt.Sprintf("12D3KooW%044d", i), Online: i%3 != 0,
			QuotaGiven: 50 << 30, UsedGiven: 10 << 30, QuotaTaken: 50 << 30, UsedTaken: 4 << 30, LastSeen: time.Now()})
	}
	for i := range 10_000 {
		f.events = append(f.events, kv.Event{Seq: uint64(i + 1), Time: time.Now(), Level: []string{"INFO", "DEBUG", "WARN"}[i%3],
			Component: "backup", Message: "backup done", Attrs: map[string]string{"snapshot": fmt.Sprintf("%08x", i), "files": "12000"}})
	}
	f.sources = []string{"/home/ann/photos", "/home/ann/documents"}
	f.status.Snapshots = benchSnapshots
	f.health = Health{CanLose: 1, Target: 1, Packs: 4000}
	for i := range 300 {
		f.dir.Entries = append(f.dir.Entries, TreeEntry{Name: fmt.Sprintf("IMG_%04d.jpg", i), Path: fmt.Sprintf("/home/ann/photos/IMG_%04d.jpg", i), Type: "file", Size: 3 << 20, ModTime: start})
	}
	f.dir.Snapshot = f.snaps[len(f.snaps)-1]
	return f
}

// BenchmarkPages renders each page through the whole handler (host check,
// authentication, backend, template) with 10,000 posts and 100 snapshots.
// Every page must stay under 50 ms a render (ms/page).
func BenchmarkPages(b *testing.B) {
	f := newBenchBackend(b)
	s, _ := newTestServer(b, f)
	h := s.Handler()
	for _, p := range []struct{ name, path string }{
		{"overview", "/"},
		{"friends", "/friends"},
		{"backups", "/backups"},
		{"browse", "/backups/" + f.dir.Snapshot.ID + "?path=/home/ann/photos"},
		{"timeline", "/timeline"},
		{"timeline-older", "/timeline?before=2020-06-01T00:00:00Z"},
		{"search", "/timeline?q=gardening"},
		{"import", "/import"},
		{"log", "/log"},
		{"log-filtered", "/log?level=warn&q=snapshot"},
	} {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			var size int
			for b.Loop() {
				w := get(b, h, p.path)
				if w.Code != http.StatusOK {
					b.Fatalf("GET %s: %d %s", p.path, w.Code, w.Body)
				}
				size = w.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes/page")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
		})
	}
}
