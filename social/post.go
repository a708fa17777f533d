package social

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/plug-net/plug/crypto"
)

// Limits of a post.
const (
	// MaxPostChars bounds a post's text, in characters.
	MaxPostChars = 5000
	// MaxImages bounds the images of a post.
	MaxImages = 4
	// MaxImageSize bounds one image.
	MaxImageSize = 16 << 20
	// maxPostRecord bounds a signed post record on the wire.
	maxPostRecord = 64 << 10
	// maxAuthorLen bounds the text of a peer ID (an Ed25519 one has 52
	// characters): base58 decoding takes time quadratic in the length.
	maxAuthorLen = 128
)

// ImageRef names an image of a post by the BLAKE3 hash of its bytes.
type ImageRef struct {
	Hash string `json:"hash"` // 64 hex digits
	Name string `json:"name"`
	Type string `json:"type"`
	Size int64  `json:"size"`
}

// Post is a signed microblog post. An edit or a deletion is a new record
// with the same ID and a higher Version, signed by the same author; friends
// keep the highest version.
type Post struct {
	ID      string     `json:"id"`
	Author  peer.ID    `json:"author"`
	Version uint64     `json:"version"`
	Created time.Time  `json:"created"`
	Edited  time.Time  `json:"edited,omitzero"`
	Text    string     `json:"text,omitempty"`
	Images  []ImageRef `json:"images,omitempty"`
	Deleted bool       `json:"deleted,omitempty"`
	Sig     []byte     `json:"sig"`
}

// Errors about posts received from friends.
var (
	ErrBadPost    = errors.New("invalid post")
	ErrBadSig     = errors.New("post signature does not verify")
	ErrNotAuthor  = errors.New("post claims another author")
	ErrTooLong    = errors.New("post too long")
	errOldVersion = errors.New("older version")
)

// signedBytes is what the signature covers: the record without Sig.
func (p Post) signedBytes() []byte {
	p.Sig = nil
	b, _ := json.Marshal(p)
	return b
}

// sign signs the post with the author's identity key.
func (p *Post) sign(key ed25519.PrivateKey) {
	p.Sig = crypto.Sign(key, "post", p.signedBytes())
}

var postIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)
var hashRe = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Check validates a post record from anyone: fields within limits, and the
// signature made by the author named in it.
func (p *Post) Check() error {
	if !postIDRe.MatchString(p.ID) {
		return fmt.Errorf("%w: id %.40q", ErrBadPost, p.ID)
	}
	if p.Version == 0 || p.Created.IsZero() {
		return fmt.Errorf("%w: no version or date", ErrBadPost)
	}
	if !datable(p.Created) || !p.Edited.IsZero() && !datable(p.Edited) {
		return fmt.Errorf("%w: date out of range", ErrBadPost)
	}
	if !utf8.ValidString(p.Text) {
		return fmt.Errorf("%w: text is not UTF-8", ErrBadPost)
	}
	if n := utf8.RuneCountInString(p.Text); n > MaxPostChars {
		return fmt.Errorf("%w: %d characters, at most %d", ErrTooLong, n, MaxPostChars)
	}
	if len(p.Images) > MaxImages {
		return fmt.Errorf("%w: %d images, at most %d", ErrBadPost, len(p.Images), MaxImages)
	}
	for _, im := range p.Images {
		if !hashRe.MatchString(im.Hash) || im.Size < 0 || im.Size > MaxImageSize || len(im.Name) > 255 || len(im.Type) > 100 {
			return fmt.Errorf("%w: bad image reference", ErrBadPost)
		}
	}
	if p.Deleted && (p.Text != "" || len(p.Images) > 0) {
		return fmt.Errorf("%w: a deletion carries content", ErrBadPost)
	}
	pub, err := crypto.PeerPublicKey(p.Author)
	if err != nil {
		return fmt.Errorf("%w: author: %v", ErrBadPost, err)
	}
	if err := crypto.Verify(pub, "post", p.signedBytes(), p.Sig); err != nil {
		return ErrBadSig
	}
	return nil
}

// UnmarshalJSON parses a post record, refusing an author too long to be a
// peer ID before decoding it (base58 decoding is quadratic: a 64 KiB one
// takes seconds, a 1 MiB one in a state dump minutes).
func (p *Post) UnmarshalJSON(b []byte) error {
	type plain Post // the fields, without this method
	var q struct {
		plain
		Author *string `json:"author"`
	}
	if err := json.Unmarshal(b, &q); err != nil {
		return err
	}
	*p = Post(q.plain)
	if q.Author != nil {
		if len(*q.Author) > maxAuthorLen {
			return fmt.Errorf("author of %d characters is not a peer ID", len(*q.Author))
		}
		id, err := peer.Decode(*q.Author)
		if err != nil {
			return fmt.Errorf("author: %w", err)
		}
		p.Author = id
	}
	return nil
}

// datable reports whether a post's date is one the timeline can order:
// from 1970 (the timeline's keys are unsigned nanoseconds since then) to
// before 2200 (nanoseconds past 2262 do not fit).
func datable(t time.Time) bool {
	return !t.Before(time.Unix(0, 0)) && t.Year() < 2200
}

// DecodePost parses and checks a post record received from a friend.
func DecodePost(b []byte) (Post, error) {
	var p Post
	if len(b) > maxPostRecord {
		return p, fmt.Errorf("%w: record of %d bytes", ErrBadPost, len(b))
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("%w: %v", ErrBadPost, err)
	}
	return p, p.Check()
}
