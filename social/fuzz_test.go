package social

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/plug-net/plug/crypto/cryptotest"
	"github.com/plug-net/plug/store/kv"
)

// postSeeds are records a friend may send: valid ones, and each kind of
// wrong one.
func postSeeds(f *testing.F) [][]byte {
	k := cryptotest.FixedKeys(f)
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	valid := signedPost(k, strings.Repeat("ab", 16), "hello #friends <b>&amp;</b> ünïcode 🍅", 1, at)
	withImage := signedPost(k, strings.Repeat("cd", 16), "", 2, at)
	withImage.Images = []ImageRef{{Hash: strings.Repeat("0f", 32), Name: "a.png", Type: "image/png", Size: 1234}}
	withImage.sign(k.Identity())
	deleted := signedPost(k, strings.Repeat("ef", 16), "", 3, at)
	deleted.Deleted = true
	deleted.sign(k.Identity())
	long := signedPost(k, strings.Repeat("12", 16), strings.Repeat("\u2028", MaxPostChars), 1, at)
	var out [][]byte
	for _, p := range []Post{valid, withImage, deleted, long} {
		b, _ := json.Marshal(p)
		out = append(out, b)
	}
	return append(out,
		[]byte(`{}`), []byte(`null`), []byte(`[]`), []byte(`{"id":"`+strings.Repeat("a", 32)+`","version":1e30}`),
		[]byte(`{"author":"12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"}`),
		[]byte(`{"created":"10000-01-01T00:00:00Z"}`), []byte(`{"sig":"!!!"}`),
	)
}

func FuzzDecodePost(f *testing.F) {
	for _, b := range postSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePost(b)
		if err != nil {
			if !errors.Is(err, ErrBadPost) && !errors.Is(err, ErrBadSig) && !errors.Is(err, ErrTooLong) {
				t.Fatalf("DecodePost error %v wraps none of the post errors", err)
			}
			return
		}
		// What is accepted is within every limit, and stays valid as it
		// travels on to the plug's store and back.
		if len(b) > maxPostRecord || !postIDRe.MatchString(p.ID) || p.Version == 0 ||
			!utf8.ValidString(p.Text) || utf8.RuneCountInString(p.Text) > MaxPostChars || len(p.Images) > MaxImages ||
			(p.Deleted && (p.Text != "" || len(p.Images) > 0)) || !datable(p.Created) {
			t.Fatalf("DecodePost accepted a post out of its limits: %+v", p)
		}
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("marshal an accepted post: %v", err)
		}
		q, err := DecodePost(again)
		if err != nil {
			t.Fatalf("an accepted post, re-encoded, is refused: %v\n%s", err, again)
		}
		if !bytes.Equal(q.signedBytes(), p.signedBytes()) {
			t.Fatalf("an accepted post changed on re-encoding:\n%s\n%s", p.signedBytes(), q.signedBytes())
		}
	})
}

func FuzzDecodeFeedRequest(f *testing.F) {
	for _, b := range postSeeds(f)[:3] {
		q, _ := json.Marshal(feedRequest{Op: "push", Post: b})
		f.Add(q)
	}
	for _, s := range []string{
		`{"op":"pull"}`, `{"op":"pull","after":18446744073709551615}`, `{"op":"pull","after":-1}`,
		`{"op":"media","hash":"` + strings.Repeat("a", 64) + `"}`, `{"op":"media","hash":"../../etc/passwd"}`,
		`{"op":"push"}`, `{"op":"push","post":null}`, `{"op":"push","post":"` + strings.Repeat("x", 100) + `"}`,
		`{"op":"delete"}`, `{"op":1}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := decodeFeedRequest(b)
		if err != nil {
			return
		}
		switch q.Op {
		case "pull":
		case "push":
			if len(q.Post) == 0 || len(q.Post) > maxPostRecord {
				t.Fatalf("push accepted with a record of %d bytes", len(q.Post))
			}
		case "media":
			if !hashRe.MatchString(q.Hash) {
				t.Fatalf("media accepted with hash %q", q.Hash)
			}
		default:
			t.Fatalf("accepted operation %q", q.Op)
		}
	})
}

func FuzzDecodeFeedResponse(f *testing.F) {
	var posts []json.RawMessage
	for _, b := range postSeeds(f)[:4] {
		posts = append(posts, b)
	}
	for _, r := range []feedResponse{
		{OK: true, Posts: posts, Next: 7, More: true},
		{OK: true, Size: 1234},
		{Code: "not_friend", Msg: "this plug does not list you as a friend"},
		{OK: true},
	} {
		b, _ := json.Marshal(r)
		f.Add(b)
	}
	for _, s := range []string{`{"size":-1}`, `{"size":1e20}`, `{"posts":[1,2,3]}`, `{"next":-5}`, `null`, `{"ok":"yes"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeFeedResponse(b)
		if err != nil {
			return
		}
		if len(r.Posts) > pullPage || r.Size < 0 || r.Size > MaxImageSize || len(r.Msg) > 1024 {
			t.Fatalf("accepted a response out of limits: %d posts, size %d, message of %d bytes", len(r.Posts), r.Size, len(r.Msg))
		}
		// Each post goes through DecodePost, which must not panic either.
		for _, p := range r.Posts {
			_, _ = DecodePost(p) // most fuzzed posts are refused: only a panic fails
		}
	})
}

// stateSeeds are dumps as WriteState makes them, from a plug with posts,
// a deletion, a friend's post and an imported item.
func stateSeeds(f *testing.F) [][]byte {
	s := newServiceWith(f, "ann", cryptotest.FixedKeys(f), f.TempDir())
	ctx := context.Background()
	e, err := s.Post(ctx, "a post", nil)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := s.Edit(ctx, e.ID, "a post, edited", nil); err != nil {
		f.Fatal(err)
	}
	d, err := s.Post(ctx, "gone", nil)
	if err != nil {
		f.Fatal(err)
	}
	if err := s.Delete(ctx, d.ID); err != nil {
		f.Fatal(err)
	}
	if err := s.receive(signedPost(cryptotest.NewKeys(f), strings.Repeat("9", 32), "bob's", 1, time.Now()), "bob"); err != nil {
		f.Fatal(err)
	}
	if err := s.WriteState(ctx); err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	err = s.db.Iterate(kv.Posts, kv.IterOptions{}, func(k, v []byte) error {
		return enc.Encode(stateRecord{K: k, V: v})
	})
	if err != nil {
		f.Fatal(err)
	}
	full := buf.Bytes()
	first, _, _ := bytes.Cut(full, []byte("\n"))
	return [][]byte{
		full, first,
		[]byte(`{"k":"by94","v":"eyJpZCI6InVua25vd24ifQ=="}`),             // o/x -> {"id":"unknown"}
		[]byte(`{"k":"by8AAAAAAAAAAQ==","v":"eyJpZCI6InVua25vd24ifQ=="}`), // o/1 -> {"id":"unknown"}
		[]byte(`{"k":"dC8AAAAAAAAAAXg=","v":null}`),                       // t/ time x, no entry
		[]byte(`{"k":"ZS94","v":"bnVsbA=="}`),                             // e/x -> null
		[]byte(`{"k":"cS9vdXRib3g=","v":"AQ=="}`),                         // q/outbox -> 1 byte
		[]byte("{\"k\":\"\"}\n"), []byte("not json\n"), []byte(strings.Repeat("{}\n", 100)),
	}
}

// FuzzLoadState loads arbitrary dumps into one plug (what a damaged or
// hostile backup may hold): LoadState must not panic, and neither must
// what reads the records afterwards — the timeline, search, and the
// outbox that friends pull.
func FuzzLoadState(f *testing.F) {
	for _, b := range stateSeeds(f) {
		f.Add(b)
	}
	keys := cryptotest.FixedKeys(f)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 4<<20 {
			return
		}
		// A fresh plug for each input: an in-memory store and index.
		db, err := kv.Open("", kv.Options{InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := db.Close(); err != nil {
				t.Error(err)
			}
		}()
		ctx := context.Background()
		s, err := New(ctx, Config{DB: db, Keys: keys, Dir: dir, Name: "ann"})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		}()
		// Most fuzzed dumps are refused, and what reads them may then fail
		// cleanly too: only a panic fails the test, so the errors below are
		// not looked at.
		_, _ = s.LoadState(ctx, bytes.NewReader(b))
		_, _ = s.Timeline(ctx, TimelineQuery{Limit: 20})
		_, _ = s.Timeline(ctx, TimelineQuery{Before: time.Now(), Author: "bob", Limit: 20})
		_, _, _ = s.Search(ctx, "post", "", 20, 0)
		_, _, _, _ = s.outboxAfter(0)
		// The plug's own publishing goes on, or fails cleanly.
		if e, err := s.Post(ctx, "after a load", nil); err == nil {
			_, _ = s.Edit(ctx, e.ID, "after a load, edited", nil)
		}
	})
}

// endless is a reader of n bytes with no line break, counting what was
// read.
type endless struct{ read, n int64 }

func (r *endless) Read(p []byte) (int, error) {
	if r.read >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.read)]
	for i := range p {
		p[i] = 'a'
	}
	r.read += int64(len(p))
	return len(p), nil
}

// TestLoadStateBoundsMemory: a dump that is one endless line is refused
// after at most a line's limit, not read whole into memory.
func TestLoadStateBoundsMemory(t *testing.T) {
	s := newService(t, "ann")
	r := &endless{n: 1 << 30}
	n, err := s.LoadState(t.Context(), r)
	if err == nil {
		t.Fatalf("LoadState of one 1 GiB line: %d records, no error", n)
	}
	if r.read > 2*maxStateLine {
		t.Fatalf("LoadState read %d bytes of one line before giving up; the limit is %d", r.read, maxStateLine)
	}
	// And a dump with a bad line loads nothing past it and says where.
	bad := "{\"k\":\"eC8x\",\"v\":\"MQ==\"}\nnot json\n{\"k\":\"eC8y\",\"v\":\"Mg==\"}\n"
	if _, err := s.LoadState(t.Context(), strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("LoadState of a bad second line: %v, want an error naming line 2", err)
	}
}
