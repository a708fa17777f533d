package social

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/plug-net/plug/crypto/cryptotest"
)

func TestPostIsSignedAndChecks(t *testing.T) {
	s := newService(t, "ann")
	e, err := s.Post(t.Context(), "  hello friends #garden  ", nil)
	if err != nil {
		t.Fatal(err)
	}
	p := e.Post
	if p == nil {
		t.Fatal("the entry of an own post carries no signed record")
	}
	if !postIDRe.MatchString(p.ID) || e.ID != p.ID {
		t.Fatalf("post ID %q (entry %q), want 32 hex digits, the same", p.ID, e.ID)
	}
	if p.Author != s.keys.PeerID() || p.Version != 1 || p.Text != "hello friends #garden" || p.Created.IsZero() || p.Deleted {
		t.Fatalf("post = %+v, want author %s, version 1, trimmed text", p, s.keys.PeerID())
	}
	if e.Author != "ann" || e.AuthorID != s.keys.PeerID().String() || e.Source != SourcePlug || !e.Own || !e.Time.Equal(p.Created) {
		t.Fatalf("entry = %+v", e)
	}
	if !reflect.DeepEqual(e.Tags, []string{"garden"}) {
		t.Fatalf("Tags = %q, want [garden]", e.Tags)
	}
	if err := p.Check(); err != nil {
		t.Fatalf("Check of an own post: %v", err)
	}
	// What friends receive decodes to the same post.
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodePost(b)
	if err != nil {
		t.Fatalf("DecodePost of an own post: %v", err)
	}
	if !reflect.DeepEqual(got.signedBytes(), p.signedBytes()) {
		t.Fatalf("decoded post differs:\n got %s\nwant %s", got.signedBytes(), p.signedBytes())
	}
}

func TestCheckRefusesTamperedPosts(t *testing.T) {
	ann, bob := cryptotest.NewKeys(t), cryptotest.NewKeys(t)
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name   string
		change func(p *Post)
		want   error
	}{
		{"text", func(p *Post) { p.Text = "I owe Bob 100 euros" }, ErrBadSig},
		{"text appended", func(p *Post) { p.Text += "!" }, ErrBadSig},
		{"version", func(p *Post) { p.Version = 7 }, ErrBadSig},
		{"created", func(p *Post) { p.Created = p.Created.Add(time.Hour) }, ErrBadSig},
		{"edited", func(p *Post) { p.Edited = p.Created.Add(time.Hour) }, ErrBadSig},
		{"image added", func(p *Post) {
			p.Images = []ImageRef{{Hash: strings.Repeat("ab", 32), Name: "x.jpg", Type: "image/jpeg", Size: 3}}
		}, ErrBadSig},
		{"id", func(p *Post) { p.ID = strings.Repeat("0", 32) }, ErrBadSig},
		{"signature", func(p *Post) { p.Sig[0] ^= 1 }, ErrBadSig},
		{"no signature", func(p *Post) { p.Sig = nil }, ErrBadSig},
		{"deleted without clearing", func(p *Post) { p.Deleted = true }, ErrBadPost},
		// Bob takes Ann's post as his own: the signature is Ann's.
		{"author replaced", func(p *Post) { p.Author = bob.PeerID() }, ErrBadSig},
		// Ann names Bob as the author and signs it herself.
		{"signed as another author", func(p *Post) { p.Author = bob.PeerID(); p.sign(ann.Identity()) }, ErrBadSig},
		{"not a peer ID", func(p *Post) { p.Author = "nobody" }, ErrBadPost},
		{"bad id", func(p *Post) { p.ID = "../../etc/passwd"; p.sign(ann.Identity()) }, ErrBadPost},
		{"version 0", func(p *Post) { p.Version = 0; p.sign(ann.Identity()) }, ErrBadPost},
		{"no date", func(p *Post) { p.Created = time.Time{}; p.sign(ann.Identity()) }, ErrBadPost},
		{"created before 1970", func(p *Post) { p.Created = time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC); p.sign(ann.Identity()) }, ErrBadPost},
		{"created in 2262", func(p *Post) { p.Created = time.Date(2262, 6, 1, 0, 0, 0, 0, time.UTC); p.sign(ann.Identity()) }, ErrBadPost},
		{"edited in 1900", func(p *Post) { p.Edited = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC); p.sign(ann.Identity()) }, ErrBadPost},
		{"too many images", func(p *Post) {
			for range MaxImages + 1 {
				p.Images = append(p.Images, ImageRef{Hash: strings.Repeat("ab", 32), Size: 1})
			}
			p.sign(ann.Identity())
		}, ErrBadPost},
		{"image hash not hex", func(p *Post) {
			p.Images = []ImageRef{{Hash: "../../../../etc/passwd" + strings.Repeat("0", 42), Size: 1}}
			p.sign(ann.Identity())
		}, ErrBadPost},
		{"image too large", func(p *Post) {
			p.Images = []ImageRef{{Hash: strings.Repeat("ab", 32), Size: MaxImageSize + 1}}
			p.sign(ann.Identity())
		}, ErrBadPost},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := signedPost(ann, strings.Repeat("a1", 16), "I owe Bob 10 euros", 2, created)
			if err := p.Check(); err != nil {
				t.Fatalf("Check before the change: %v", err)
			}
			c.change(&p)
			err := p.Check()
			if !errors.Is(err, c.want) {
				t.Fatalf("Check = %v, want %v", err, c.want)
			}
			// The same goes for the record a friend sends.
			b, _ := json.Marshal(p)
			if _, err := DecodePost(b); !errors.Is(err, c.want) {
				t.Fatalf("DecodePost = %v, want %v", err, c.want)
			}
		})
	}
}

func TestPostLength(t *testing.T) {
	s := newService(t, "ann")
	ctx := t.Context()

	// The limit counts characters, not bytes.
	max := strings.Repeat("é", MaxPostChars)
	e, err := s.Post(ctx, max, nil)
	if err != nil {
		t.Fatalf("a post of %d characters (%d bytes): %v", MaxPostChars, len(max), err)
	}
	if e.Text != max {
		t.Fatalf("the post's text was changed")
	}
	if _, err := s.Post(ctx, max+"x", nil); !errors.Is(err, ErrTooLong) {
		t.Fatalf("a post of %d characters: %v, want ErrTooLong", MaxPostChars+1, err)
	}
	if _, err := s.Edit(ctx, e.ID, max+"x", nil); !errors.Is(err, ErrTooLong) {
		t.Fatalf("an edit to %d characters: %v, want ErrTooLong", MaxPostChars+1, err)
	}
	if got, _ := live(t, s, e.ID); got.Text != max || got.Post.Version != 1 {
		t.Fatalf("a refused edit changed the post: version %d", got.Post.Version)
	}

	// A friend's record past the limit, properly signed, is refused too.
	friend := cryptotest.NewKeys(t)
	long := signedPost(friend, strings.Repeat("b2", 16), strings.Repeat("x", MaxPostChars+1), 1, time.Now())
	if err := long.Check(); !errors.Is(err, ErrTooLong) {
		t.Fatalf("Check of %d characters: %v, want ErrTooLong", MaxPostChars+1, err)
	}
	b, _ := json.Marshal(long)
	if _, err := DecodePost(b); !errors.Is(err, ErrTooLong) {
		t.Fatalf("DecodePost of %d characters: %v, want ErrTooLong", MaxPostChars+1, err)
	}

	// A record past the wire limit is refused before it is parsed.
	huge := append([]byte(`{"text":"`), strings.Repeat("x", maxPostRecord)...)
	if _, err := DecodePost(append(huge, `"}`...)); !errors.Is(err, ErrBadPost) {
		t.Fatalf("DecodePost of %d bytes: %v, want ErrBadPost", len(huge)+2, err)
	}

	// An author too long to be a peer ID is refused before base58
	// decoding, which is quadratic.
	longAuthor := []byte(`{"id":"` + strings.Repeat("a", 32) + `","author":"1` + strings.Repeat("z", maxPostRecord-100) + `"}`)
	if _, err := DecodePost(longAuthor); !errors.Is(err, ErrBadPost) || !strings.Contains(err.Error(), "is not a peer ID") {
		t.Fatalf("DecodePost with a 64 KiB author: %v, want ErrBadPost saying it is not a peer ID", err)
	}

	if _, err := s.Post(ctx, " \n\t ", nil); !errors.Is(err, ErrEmptyPost) {
		t.Fatalf("a blank post: %v, want ErrEmptyPost", err)
	}
}

func TestDeletionCarriesNoContent(t *testing.T) {
	ann := cryptotest.NewKeys(t)
	created := time.Now()
	del := signedPost(ann, strings.Repeat("c3", 16), "", 2, created)
	del.Deleted = true
	del.sign(ann.Identity())
	if err := del.Check(); err != nil {
		t.Fatalf("a signed deletion: %v", err)
	}
	for name, change := range map[string]func(p *Post){
		"text":  func(p *Post) { p.Text = "still here" },
		"image": func(p *Post) { p.Images = []ImageRef{{Hash: strings.Repeat("cd", 32), Size: 10}} },
	} {
		t.Run(name, func(t *testing.T) {
			p := del
			change(&p)
			p.sign(ann.Identity())
			if err := p.Check(); !errors.Is(err, ErrBadPost) || !strings.Contains(err.Error(), "deletion") {
				t.Fatalf("Check of a deletion with content: %v, want ErrBadPost about the deletion", err)
			}
		})
	}
}
