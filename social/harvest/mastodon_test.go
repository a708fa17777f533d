package harvest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mastodonPackagings packs the fixture as Mastodon hands it out, and as a
// user may have unpacked it.
func mastodonPackagings(t *testing.T, extra ...entry) map[string]string {
	t.Helper()
	dir := t.TempDir()
	files := append(dirEntries(t, mastodonFixture(t), ""), extra...)
	out := map[string]string{
		"folder":      mastodonFixture(t),
		"zip":         writeZip(t, filepath.Join(dir, "archive.zip"), files),
		"tar.gz":      writeTarGz(t, filepath.Join(dir, "archive.tar.gz"), files),
		"zip/wrapped": writeZip(t, filepath.Join(dir, "wrapped.zip"), dirEntries(t, mastodonFixture(t), "archive-20240801/")),
		"outbox.json": filepath.Join(mastodonFixture(t), "outbox.json"),
	}
	if len(extra) > 0 {
		out["folder"] = writeDir(t, filepath.Join(dir, "unpacked"), files)
	}
	return out
}

func TestImportMastodonFixture(t *testing.T) {
	activities := countOrderedItems(t, filepath.Join(mastodonFixture(t), "outbox.json"))
	for name, path := range mastodonPackagings(t) {
		t.Run(name, func(t *testing.T) {
			s := newMemSink()
			var progressCalls, lastDone int
			rep, err := ImportMastodon(t.Context(), path, s.sink, Options{Progress: func(done, total int) {
				progressCalls++
				if done != lastDone+1 || (total != 0 && total < done) {
					t.Fatalf("progress(%d, %d) after %d", done, total, lastDone)
				}
				lastDone = done
			}})
			if err != nil {
				t.Fatalf("ImportMastodon: %v", err)
			}
			checkAccounted(t, rep)
			if rep.Seen != activities {
				t.Fatalf("Seen = %d, want the %d activities of outbox.json", rep.Seen, activities)
			}
			if progressCalls != activities {
				t.Fatalf("progress called %d times, want %d", progressCalls, activities)
			}
			if got, want := rep.SkipReasons, map[string]int{reasonDirect: 35}; !reflect.DeepEqual(got, want) {
				t.Fatalf("SkipReasons = %v, want %v", got, want)
			}
			if got, want := rep.Imported, activities-35; got != want {
				t.Fatalf("Imported = %d, want %d", got, want)
			}
			if rep.MediaFound != 0 || rep.MediaMissing != 193 {
				t.Fatalf("media found/missing = %d/%d, want 0/193 (the fixture holds no media files)", rep.MediaFound, rep.MediaMissing)
			}
			if len(rep.Errors) != 0 {
				t.Fatalf("Errors = %q", rep.Errors)
			}
			for _, k := range s.order {
				it := s.items[k]
				checkSafeText(t, k, it.Text)
				checkSafeText(t, k, it.Summary)
				if it.Source != SourceMastodon || it.Author != "@dealingwith@indieweb.social" || it.Time.IsZero() || it.Time.Location() != time.UTC {
					t.Fatalf("%s: source %q, author %q, time %v", k, it.Source, it.Author, it.Time)
				}
			}
			checkMastodonItems(t, s)

			// A second import finds every item already there.
			again, err := ImportMastodon(t.Context(), path, s.sink, Options{})
			if err != nil {
				t.Fatalf("second ImportMastodon: %v", err)
			}
			checkAccounted(t, again)
			if again.Imported != 0 || again.Duplicates != rep.Imported || again.Skipped != rep.Skipped {
				t.Fatalf("second import: imported %d, duplicates %d, skipped %d; want 0, %d, %d",
					again.Imported, again.Duplicates, again.Skipped, rep.Imported, rep.Skipped)
			}
		})
	}
}

// checkMastodonItems checks items of the fixture by hand.
func checkMastodonItems(t *testing.T, s *memSink) {
	t.Helper()
	const status = "https://indieweb.social/users/dealingwith/statuses/"

	// A content warning on a reply with a mention.
	cw := s.find(t, SourceMastodon, status+"109390360974197006")
	want := Item{
		Source:     SourceMastodon,
		OriginalID: status + "109390360974197006",
		URL:        "https://indieweb.social/@dealingwith/109390360974197006",
		Author:     "@dealingwith@indieweb.social",
		Time:       time.Date(2022, 11, 23, 0, 47, 23, 0, time.UTC),
		Text:       "@willd I'd be interested in details of your experience running Hugo on Cloudflare",
		Summary:    "Personal website updates...",
		InReplyTo:  "https://indieweb.social/users/willd/statuses/109390196577782763",
		Mentions:   []string{"@willd@indieweb.social"},
	}
	if !reflect.DeepEqual(cw, want) {
		t.Errorf("content warning item:\n got %#v\nwant %#v", cw, want)
	}

	// A reply with a hashtag, line breaks and paragraphs.
	haiku := s.find(t, SourceMastodon, status+"111431919154156102")
	want = Item{
		Source:     SourceMastodon,
		OriginalID: status + "111431919154156102",
		URL:        "https://indieweb.social/@dealingwith/111431919154156102",
		Author:     "@dealingwith@indieweb.social",
		Time:       time.Date(2023, 11, 18, 14, 2, 29, 0, time.UTC),
		Text: "Yardi you are so\nFrustratingly long with your\nChanging requirements\n\n" +
			"My foot, it is numb\nIt seems I am old now and\nAlways have a problem\n\n#haiku",
		InReplyTo: status + "111431915637995418",
		Tags:      []string{"haiku"},
	}
	if !reflect.DeepEqual(haiku, want) {
		t.Errorf("haiku item:\n got %#v\nwant %#v", haiku, want)
	}

	// A mention of a remote account and a hashtag.
	tags := s.find(t, SourceMastodon, status+"112658075826196619")
	if got, want := tags.Text, "I really enjoy @opencage #geoweirdness posts."; got != want {
		t.Errorf("Text = %q, want %q", got, want)
	}
	if !reflect.DeepEqual(tags.Tags, []string{"geoweirdness"}) || !reflect.DeepEqual(tags.Mentions, []string{"@opencage@en.osm.town"}) {
		t.Errorf("Tags = %q, Mentions = %q", tags.Tags, tags.Mentions)
	}
	if got, want := tags.Time, time.Date(2024, 6, 22, 3, 10, 15, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Time = %v, want %v", got, want)
	}

	// Two attachments the archive does not hold.
	att := s.find(t, SourceMastodon, status+"109376719336938342")
	if got, want := att.Text, "Watched the Demetri Martin Netflix special last night. This was my favorite bit."; got != want {
		t.Errorf("Text = %q, want %q", got, want)
	}
	if len(att.Media) != 2 {
		t.Fatalf("media = %+v, want 2", att.Media)
	}
	for i, name := range []string{"72891484be9549e6.jpg", "d9b032fc66dd899b.jpg"} {
		m := att.Media[i]
		if m.Name != name || m.Type != "image/jpeg" || !m.Missing || m.Open != nil {
			t.Errorf("media %d = %+v, want %s, image/jpeg, missing", i, m, name)
		}
	}

	// A boost names what was boosted.
	boost := s.find(t, SourceMastodon, status+"109449999597967268/activity")
	if !boost.Boost || boost.Text != "https://mastodon.social/users/s0mmer/statuses/109440048909776763" ||
		boost.URL != boost.Text || !boost.Time.Equal(time.Date(2022, 12, 3, 13, 34, 16, 0, time.UTC)) {
		t.Errorf("boost = %#v", boost)
	}

	// A direct message stays out.
	if _, ok := s.items[string(SourceMastodon)+":"+status+"109361289517644172"]; ok {
		t.Errorf("the direct message 109361289517644172 was imported")
	}
}

// jpeg is a stand-in media file.
var jpeg = append([]byte("\xff\xd8\xff\xe0JFIF"), bytes.Repeat([]byte{0x42}, 5000)...)

func TestImportMastodonMediaInArchive(t *testing.T) {
	// The outbox names the file with the storage bucket before
	// media_attachments/, as this instance's export does; the archive
	// holds it without.
	const first = "media_attachments/files/109/376/716/277/623/869/original/72891484be9549e6.jpg"
	const second = "media_attachments/files/109/376/716/788/907/055/original/d9b032fc66dd899b.jpg"
	other := append([]byte("\xff\xd8\xff\xe0"), bytes.Repeat([]byte{7}, 70000)...)
	for name, path := range mastodonPackagings(t, entry{name: first, data: jpeg}, entry{name: second, data: other}) {
		if name == "zip/wrapped" || name == "outbox.json" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			var got [][]byte
			sink := func(ctx context.Context, it Item) (bool, error) {
				if it.OriginalID != "https://indieweb.social/users/dealingwith/statuses/109376719336938342" {
					return true, nil
				}
				// Read in reverse order: a tar stream must start over.
				for i := len(it.Media) - 1; i >= 0; i-- {
					m := it.Media[i]
					if m.Missing || m.Open == nil {
						t.Fatalf("media %s missing", m.Name)
					}
					rc, err := m.Open()
					if err != nil {
						t.Fatal(err)
					}
					b, err := io.ReadAll(rc)
					closeReader(rc)
					if err != nil {
						t.Fatal(err)
					}
					if int64(len(b)) != m.Size {
						t.Fatalf("%s: read %d bytes, Size says %d", m.Name, len(b), m.Size)
					}
					got = append(got, b)
				}
				return true, nil
			}
			rep, err := ImportMastodon(t.Context(), path, sink, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.MediaFound != 2 || rep.MediaMissing != 191 {
				t.Fatalf("media found/missing = %d/%d, want 2/191", rep.MediaFound, rep.MediaMissing)
			}
			if len(got) != 2 || !bytes.Equal(got[0], other) || !bytes.Equal(got[1], jpeg) {
				t.Fatalf("media contents differ")
			}
		})
	}
}

// outboxWith wraps activities (JSON) into an outbox.json.
func outboxWith(activities ...string) []byte {
	return []byte(`{"@context":"https://www.w3.org/ns/activitystreams","id":"outbox.json","type":"OrderedCollection","totalItems":` +
		itoa(len(activities)) + `,"orderedItems":[` + strings.Join(activities, ",") + `]}`)
}

func itoa(n int) string { return strconv.Itoa(n) }

// note is a public Create activity of a Note with the given id, content
// and attachment URLs.
func note(id, content string, attachments ...string) string {
	var atts []string
	for _, a := range attachments {
		atts = append(atts, `{"type":"Document","mediaType":"image/jpeg","url":`+quote(a)+`}`)
	}
	return `{"id":"https://ex.social/users/ann/statuses/` + id + `/activity","type":"Create","actor":"https://ex.social/users/ann",` +
		`"published":"2024-01-02T03:04:05Z","to":["https://www.w3.org/ns/activitystreams#Public"],"cc":[],` +
		`"object":{"id":"https://ex.social/users/ann/statuses/` + id + `","type":"Note","content":` + quote(content) +
		`,"published":"2024-01-02T03:04:05Z","url":"https://ex.social/@ann/` + id + `",` +
		`"to":["https://www.w3.org/ns/activitystreams#Public"],"cc":["https://ex.social/users/ann/followers"],` +
		`"attachment":[` + strings.Join(atts, ",") + `],"tag":[]}}`
}

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&15])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func TestImportMastodonHostile(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	imp := func(t *testing.T, path string) (Report, *memSink, error) {
		t.Helper()
		s := newMemSink()
		rep, err := ImportMastodon(ctx, path, s.sink, Options{})
		checkAccounted(t, rep)
		return rep, s, err
	}

	t.Run("zip entry claiming 2 GiB", func(t *testing.T) {
		path := filepath.Join(dir, "bomb.zip")
		writeZipClaims(t, path, []entry{{name: "outbox.json", data: outboxWith(note("1", "hi"))}}, map[string]uint64{"outbox.json": 2 << 30})
		_, _, err := imp(t, path)
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
	})

	t.Run("zip entry decompressing past its claim", func(t *testing.T) {
		path := filepath.Join(dir, "liar.zip")
		big := append(outboxWith(note("1", "hi")), bytes.Repeat([]byte(" "), 8<<20)...)
		writeZipClaims(t, path, []entry{{name: "outbox.json", data: big}}, map[string]uint64{"outbox.json": 100})
		_, s, err := imp(t, path)
		if err == nil || len(s.items) != 0 {
			t.Fatalf("err = %v with %d items, want an error", err, len(s.items))
		}
	})

	t.Run("zip media claiming 2 GiB", func(t *testing.T) {
		path := filepath.Join(dir, "media-bomb.zip")
		writeZipClaims(t, path, []entry{
			{name: "outbox.json", data: outboxWith(note("1", "pic", "/media_attachments/a.jpg"))},
			{name: "media_attachments/a.jpg", data: jpeg},
		}, map[string]uint64{"media_attachments/a.jpg": 2 << 30})
		rep, s, err := imp(t, path)
		if err != nil {
			t.Fatal(err)
		}
		m := s.find(t, SourceMastodon, "https://ex.social/users/ann/statuses/1").Media
		if len(m) != 1 || !m[0].Missing || rep.MediaMissing != 1 || len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0], "64 MiB") {
			t.Fatalf("media %+v, report %+v: want it refused as too large", m, rep)
		}
	})

	t.Run("folder with sparse 2 GiB media and 600 MiB outbox", func(t *testing.T) {
		d := writeDir(t, filepath.Join(dir, "sparse"), []entry{{name: "outbox.json", data: outboxWith(note("1", "pic", "/media_attachments/a.jpg"))}})
		sparse(t, filepath.Join(d, "media_attachments", "a.jpg"), 2<<30)
		rep, s, err := imp(t, d)
		if err != nil {
			t.Fatal(err)
		}
		if m := s.find(t, SourceMastodon, "https://ex.social/users/ann/statuses/1").Media; !m[0].Missing || len(rep.Errors) != 1 {
			t.Fatalf("media %+v, errors %q: want it refused", m, rep.Errors)
		}
		sparse(t, filepath.Join(d, "outbox.json"), 600<<20)
		if _, _, err := imp(t, d); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("600 MiB outbox.json: err = %v, want ErrTooLarge", err)
		}
	})

	t.Run("names climbing out or absolute", func(t *testing.T) {
		path := filepath.Join(dir, "evil.zip")
		writeZip(t, path, []entry{
			{name: "../outbox.json", data: outboxWith(note("1", "evil"))},
			{name: "/outbox.json", data: outboxWith(note("2", "evil"))},
			{name: "a/../../outbox.json", data: outboxWith(note("3", "evil"))},
		})
		if _, _, err := imp(t, path); !errors.Is(err, ErrNotExport) {
			t.Fatalf("err = %v, want ErrNotExport (no usable outbox.json)", err)
		}
		path = filepath.Join(dir, "evil-media.tar.gz")
		writeTarGz(t, path, []entry{
			{name: "outbox.json", data: outboxWith(note("1", "pics", "/../../etc/passwd", "/media_attachments/b.jpg", "/media_attachments/c.jpg"))},
			{name: "../media_attachments/b.jpg", data: jpeg},
			{name: "media_attachments/c.jpg", link: "/etc/passwd"},
		})
		rep, s, err := imp(t, path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range s.find(t, SourceMastodon, "https://ex.social/users/ann/statuses/1").Media {
			if !m.Missing {
				t.Fatalf("media %+v was resolved", m)
			}
		}
		if rep.MediaMissing != 3 {
			t.Fatalf("MediaMissing = %d, want 3", rep.MediaMissing)
		}
	})

	t.Run("folder symlinks", func(t *testing.T) {
		outside := filepath.Join(dir, "secret.jpg")
		if err := os.WriteFile(outside, []byte("secret"), 0o644); err != nil {
			t.Fatal(err)
		}
		d := writeDir(t, filepath.Join(dir, "links"), []entry{
			{name: "outbox.json", data: outboxWith(note("1", "pics", "/media_attachments/out.jpg", "/media_attachments/in.jpg"))},
			{name: "real.jpg", data: jpeg},
			{name: "media_attachments/out.jpg", link: outside},
			{name: "media_attachments/in.jpg", link: "../real.jpg"},
		})
		var read []byte
		var m []Media
		rep, err := ImportMastodon(ctx, d, func(ctx context.Context, it Item) (bool, error) {
			m = it.Media
			if len(m) == 2 && m[1].Open != nil {
				rc, err := m[1].Open()
				if err != nil {
					return false, err
				}
				defer closeReader(rc)
				read, err = io.ReadAll(rc)
				return err == nil, err
			}
			return true, nil
		}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(m) != 2 || !m[0].Missing || m[1].Missing || len(rep.Errors) != 1 {
			t.Fatalf("media %+v, errors %q: want the link out refused and the link in followed", m, rep.Errors)
		}
		if !bytes.Equal(read, jpeg) {
			t.Fatal("link inside the folder read wrong data")
		}
		t.Logf("refused: %s", rep.Errors[0])
	})

	t.Run("invalid UTF-8 and markup", func(t *testing.T) {
		path := writeDir(t, filepath.Join(dir, "utf8"), []entry{{name: "outbox.json", data: outboxWith(
			note("1", "<p>caf\xe9 \xff\xfe ok</p>"),
			note("2", `<p>&lt;script&gt;alert(1)&lt;/script&gt; <script>alert(2)</script><img src=x onerror=alert(3)>&lt;b&gt;</p>`),
		)}})
		_, s, err := imp(t, path)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := s.find(t, SourceMastodon, "https://ex.social/users/ann/statuses/1").Text, "caf\uFFFD \uFFFD\uFFFD ok"; got != want {
			t.Errorf("Text = %q, want %q", got, want)
		}
		if got, want := s.find(t, SourceMastodon, "https://ex.social/users/ann/statuses/2").Text, "< script>alert(1)< /script> < b>"; got != want {
			t.Errorf("Text = %q, want %q", got, want)
		}
	})

	t.Run("malformed entries", func(t *testing.T) {
		path := writeDir(t, filepath.Join(dir, "malformed"), []entry{{name: "outbox.json", data: outboxWith(
			note("1", "fine"),
			`{"type":"Create","object":{"id":"x","type":"Note","content":5}}`,
			`"https://ex.social/users/ann/statuses/9/activity"`,
			`{"type":"Like","object":"https://elsewhere/1"}`,
			`{"type":"Create","object":{"id":"y","type":"Note","content":"","to":["https://www.w3.org/ns/activitystreams#Public"]}}`,
			`{"type":"Create","object":{"id":"z","type":"Event"}}`,
			`{"type":"Announce","id":"b","object":{}}`,
			note("2", "fine too"),
		)}})
		rep, _, err := imp(t, path)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{reasonMalformed: 2, reasonReference: 1, reasonNotPost: 1, reasonEmpty: 1, reasonObjectType: 1}
		if rep.Seen != 8 || rep.Imported != 2 || !reflect.DeepEqual(rep.SkipReasons, want) {
			t.Fatalf("report %+v, want 8 seen, 2 imported, skips %v", rep, want)
		}
	})

	t.Run("truncated outbox.json", func(t *testing.T) {
		var acts []string
		for i := range 20 {
			acts = append(acts, note(itoa(i+1), "post"))
		}
		full := outboxWith(acts...)
		path := writeDir(t, filepath.Join(dir, "cut"), []entry{{name: "outbox.json", data: full[:len(full)/2]}})
		rep, _, err := imp(t, path)
		if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "incomplete") {
			t.Fatalf("err = %v, want an incomplete file", err)
		}
		if rep.Imported < 5 || rep.Imported >= 20 || len(rep.Errors) != 1 {
			t.Fatalf("report %+v: want a partial import with one error", rep)
		}
	})

	t.Run("truncated zip", func(t *testing.T) {
		path := writeZip(t, filepath.Join(dir, "cut.zip"), dirEntries(t, mastodonFixture(t), ""))
		cutFile(t, path, 1, 2)
		if _, _, err := imp(t, path); err == nil || !strings.Contains(err.Error(), "download the export again") {
			t.Fatalf("err = %v, want a clear error", err)
		}
	})

	t.Run("truncated tar.gz", func(t *testing.T) {
		// outbox.json first, then media: cut in the media, the posts import
		// and the report says the archive is cut short.
		files := []entry{{name: "outbox.json", data: outboxWith(note("1", "a", "/media_attachments/x.jpg"))}}
		for i := range 20 {
			files = append(files, entry{name: "media_attachments/f" + itoa(i) + ".bin", data: bytes.Repeat([]byte{byte(i)}, 100000)})
		}
		files = append(files, entry{name: "media_attachments/x.jpg", data: jpeg})
		path := writeTarGz(t, filepath.Join(dir, "cut.tar"), files) // plain tar: a cut lands where we want
		cutFile(t, path, 1, 2)
		rep, _, err := imp(t, path)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Imported != 1 || rep.MediaMissing != 1 || len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0], "cut short") {
			t.Fatalf("report %+v: want the post, its media missing, and the cut reported", rep)
		}
		// Cut inside outbox.json: a clear error.
		gz := writeTarGz(t, filepath.Join(dir, "cut2.tar.gz"), dirEntries(t, mastodonFixture(t), ""))
		cutFile(t, gz, 3, 4)
		if _, _, err := imp(t, gz); err == nil {
			t.Fatal("no error for a tar.gz cut inside outbox.json")
		}
	})

	t.Run("not an export", func(t *testing.T) {
		path := writeZip(t, filepath.Join(dir, "other.zip"), []entry{{name: "readme.txt", data: []byte("hello")}})
		if _, _, err := imp(t, path); !errors.Is(err, ErrNotExport) {
			t.Fatalf("err = %v, want ErrNotExport", err)
		}
		path = writeDir(t, filepath.Join(dir, "notoutbox"), []entry{{name: "outbox.json", data: []byte(`{"type":"Person"}`)}})
		if _, _, err := imp(t, path); !errors.Is(err, ErrNotExport) {
			t.Fatalf("err = %v, want ErrNotExport", err)
		}
	})
}

func TestImportMastodonDeepNesting(t *testing.T) {
	const depth = 1_000_000
	dir := t.TempDir()
	cases := map[string][]byte{
		"document": []byte(strings.Repeat("[", depth)),
		"item":     []byte(`{"type":"OrderedCollection","orderedItems":[` + strings.Repeat("[", depth)),
		"member":   []byte(`{"@context":` + strings.Repeat("[", depth)),
		"object":   []byte(`{"orderedItems":[{"type":"Create","object":` + strings.Repeat(`{"a":`, depth)),
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			path := writeDir(t, filepath.Join(dir, name), []entry{{name: "outbox.json", data: doc}})
			heap := heapGrowth(func() {
				start := time.Now()
				_, err := ImportMastodon(t.Context(), path, newMemSink().sink, Options{})
				if err == nil {
					t.Fatal("no error")
				}
				t.Logf("%v after %v", err, time.Since(start))
			})
			if heap > 64<<20 {
				t.Fatalf("allocated %d MiB for a %d-deep document", heap>>20, depth)
			}
		})
	}
}

// TestImportMastodonMemory checks that a big outbox is decoded one
// activity at a time: 200 activities of 1 MiB each (a 200 MiB file) must
// not take more than a few MiB of heap.
func TestImportMastodonMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 200 MiB file")
	}
	path := filepath.Join(t.TempDir(), "outbox.json")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	pad := strings.Repeat("x", 1<<20)
	write(`{"type":"OrderedCollection","totalItems":200,"orderedItems":[`)
	for i := range 200 {
		if i > 0 {
			write(",")
		}
		act := note(itoa(i+1), "post number "+itoa(i+1))
		// An ignored member of 1 MiB inside each activity.
		write(strings.Replace(act, `"type":"Create",`, `"type":"Create","padding":"`+pad+`",`, 1))
	}
	write("]}")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	sink := func(ctx context.Context, it Item) (bool, error) { return true, nil }
	var rep Report
	base, peak := peakHeap(func() { rep, err = ImportMastodon(t.Context(), path, sink, Options{}) })
	peak -= min(peak, base)
	if err != nil || rep.Imported != 200 {
		t.Fatalf("report %+v, err %v", rep, err)
	}
	t.Logf("peak heap in use while importing a 200 MiB outbox: %.1f MiB", float64(peak)/(1<<20))
	if peak > 48<<20 {
		t.Fatalf("peak heap %d MiB: the outbox is not streamed", peak>>20)
	}
}

func TestImportOptionsAndLimits(t *testing.T) {
	t.Run("MaxItems", func(t *testing.T) {
		for _, importer := range []struct {
			name string
			run  func(context.Context, string, Sink, Options) (Report, error)
			path string
		}{
			{"mastodon", ImportMastodon, mastodonFixture(t)},
			{"twitter", ImportTwitter, twitterFixture(t)},
			{"feed", ImportFeed, filepath.Join(mastodonFixture(t), "outbox.json")},
		} {
			rep, err := importer.run(t.Context(), importer.path, newMemSink().sink, Options{MaxItems: 10})
			if err != nil || rep.Seen != 10 {
				t.Fatalf("%s: report %+v, err %v: want 10 seen", importer.name, rep, err)
			}
		}
	})

	t.Run("context canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		n := 0
		rep, err := ImportMastodon(ctx, mastodonFixture(t), func(ctx context.Context, it Item) (bool, error) {
			if n++; n == 5 {
				cancel()
			}
			return true, nil
		}, Options{})
		if !errors.Is(err, context.Canceled) || rep.Imported != 5 || len(rep.Errors) != 0 {
			t.Fatalf("report %+v, err %v: want 5 imported and context.Canceled", rep, err)
		}
		checkAccounted(t, rep)
	})

	t.Run("sink error", func(t *testing.T) {
		boom := errors.New("disk full")
		rep, err := ImportMastodon(t.Context(), mastodonFixture(t), func(ctx context.Context, it Item) (bool, error) {
			return false, boom
		}, Options{})
		if !errors.Is(err, boom) || rep.Imported != 0 || rep.SkipReasons[reasonStoreFailed] != 1 || len(rep.Errors) != 0 {
			t.Fatalf("report %+v, err %v", rep, err)
		}
		checkAccounted(t, rep)
	})

	t.Run("errors listed at most MaxErrors", func(t *testing.T) {
		var acts []string
		for range 150 {
			acts = append(acts, `{"type":"Create","object":{"type":"Note","content":[1]}}`)
		}
		path := writeDir(t, t.TempDir(), []entry{{name: "outbox.json", data: outboxWith(acts...)}})
		rep, err := ImportMastodon(t.Context(), path, newMemSink().sink, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Errors) != MaxErrors || rep.Errors[MaxErrors-1] != "... and 51 more problems not listed" || rep.Skipped != 150 {
			t.Fatalf("%d errors, last %q, report %+v", len(rep.Errors), rep.Errors[len(rep.Errors)-1], rep)
		}
	})
}
