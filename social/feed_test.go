package social

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/zeebo/blake3"

	"github.com/plug-net/plug/crypto/cryptotest"
	"github.com/plug-net/plug/p2p"
)

// feedCall sends one feed request from h to p on a stream of its own, as a
// plug's feed client does, and returns the answer (and the bytes after it,
// for media).
func feedCall(t *testing.T, h host.Host, p peer.ID, q feedRequest) (feedResponse, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	st, err := h.NewStream(ctx, p, p2p.ProtoFeed)
	if err != nil {
		t.Fatalf("open a feed stream: %v", err)
	}
	defer func() { _ = st.Close() }() // the answer is read (or the test failed): closing loses nothing
	if err := st.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := writeFeed(st, q); err != nil {
		t.Fatalf("send a feed request: %v", err)
	}
	r, err := readFeed(st)
	if err != nil {
		t.Fatalf("read the feed answer: %v", err)
	}
	rest, _ := io.ReadAll(st)
	return r, rest
}

// record is a post as it travels.
func record(t *testing.T, p Post) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// randomImage returns n bytes standing for an image (incompressible).
func randomImage(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	copy(b, "\x89PNG\r\n\x1a\n")
	return b
}

// hasMedia reports whether s holds the image hash with exactly want.
func hasMedia(s *Service, hash string, want []byte) bool {
	f, err := s.OpenMedia(hash)
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }() // opened to read only: closing it loses nothing
	got, err := io.ReadAll(f)
	return err == nil && bytes.Equal(got, want)
}

// TestFeedPushToFriends: Ann posts, edits and deletes; Bob and Cat, her
// friends and online, apply each version as it is pushed, and fetch the
// image of her post.
func TestFeedPushToFriends(t *testing.T) {
	ann, bob, cat := newPlug(t, "ann"), newPlug(t, "bob"), newPlug(t, "cat")
	pair(t, ann, bob)
	pair(t, ann, cat)
	pair(t, bob, cat)
	ctx := t.Context()
	friends := []*testPlug{bob, cat}

	img := randomImage(300 << 10)
	e, err := ann.svc.Post(ctx, "first tomatoes of the year #garden", []NewImage{{Name: "../tomato.png", Type: "image/png", R: bytes.NewReader(img)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Post.Images) != 1 || e.Post.Images[0].Name != "tomato.png" || e.Post.Images[0].Size != int64(len(img)) {
		t.Fatalf("images of the post = %+v", e.Post.Images)
	}
	hash := e.Post.Images[0].Hash
	if hash != hashOf(img) {
		t.Fatalf("image hash %s, want the BLAKE3 of its bytes", hash)
	}
	for _, f := range friends {
		eventually(t, f.name+" receives Ann's post", func() bool { _, ok := live(t, f.svc, e.ID); return ok })
		got, _ := live(t, f.svc, e.ID)
		if got.Text != e.Text || got.Author != "ann" || got.AuthorID != ann.id().String() || got.Own || got.Source != SourcePlug ||
			!got.Time.Equal(e.Time) || got.Post == nil || got.Post.Version != 1 {
			t.Fatalf("%s holds %+v", f.name, got)
		}
		if err := got.Post.Check(); err != nil {
			t.Fatalf("%s keeps a record that does not check: %v", f.name, err)
		}
		if tl := timeline(t, f.svc, TimelineQuery{Author: "ann"}); !slices.Equal(ids(tl), []string{e.ID}) {
			t.Fatalf("%s's timeline of Ann = %v", f.name, ids(tl))
		}
		eventually(t, f.name+" finds the post by search", func() bool { // stored, then indexed
			return slices.Equal(find(t, f.svc, "tomatoes", ""), []string{e.ID})
		})
		eventually(t, f.name+" fetches the image of Ann's post", func() bool { return hasMedia(f.svc, hash, img) })
	}

	if _, err := ann.svc.Edit(ctx, e.ID, "first tomatoes of the year, and basil", nil); err != nil {
		t.Fatal(err)
	}
	for _, f := range friends {
		eventually(t, f.name+" applies Ann's edit", func() bool {
			got, ok := live(t, f.svc, e.ID)
			return ok && got.Post.Version == 2
		})
		got, _ := live(t, f.svc, e.ID)
		if got.Text != "first tomatoes of the year, and basil" || len(got.Media) != 1 || got.Media[0].Hash != hash {
			t.Fatalf("%s holds the edit as %+v", f.name, got)
		}
		if len(timeline(t, f.svc, TimelineQuery{})) != 1 {
			t.Fatalf("%s has more than one entry after an edit", f.name)
		}
		// The entry is stored, then indexed: the search follows at once.
		eventually(t, f.name+" finds the edit by search", func() bool {
			return slices.Equal(find(t, f.svc, "basil", ""), []string{e.ID})
		})
	}

	if err := ann.svc.Delete(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	for _, f := range friends {
		eventually(t, f.name+" applies Ann's deletion", func() bool { _, ok := live(t, f.svc, e.ID); return !ok })
		if tl := timeline(t, f.svc, TimelineQuery{}); len(tl) != 0 {
			t.Fatalf("%s's timeline after the deletion = %v", f.name, ids(tl))
		}
		eventually(t, f.name+"'s search forgets the deleted post", func() bool { return len(find(t, f.svc, "tomatoes", "")) == 0 })
	}
	// A plug serves only its own posts: Bob never relays Ann's post to Cat
	// (Cat has it from Ann), and Bob's own post reaches Cat and Ann.
	b, err := bob.svc.Post(ctx, "Bob here", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*testPlug{ann, cat} {
		eventually(t, f.name+" receives Bob's post", func() bool { got, ok := live(t, f.svc, b.ID); return ok && got.Author == "bob" })
	}
}

// TestFeedOfflineFriendCatchesUp: Bob goes offline, and Cat goes offline
// before Ann posts anything; while they are away Ann posts, edits and
// deletes. Each catches up by pull when it connects again, on another
// port, with its store as it was.
func TestFeedOfflineFriendCatchesUp(t *testing.T) {
	ann, bob, cat := newPlug(t, "ann"), newPlug(t, "bob"), newPlug(t, "cat")
	pair(t, ann, bob)
	pair(t, ann, cat)
	ctx := t.Context()
	cat.stop()

	edited, err := ann.svc.Post(ctx, "will be edited while Bob is away", nil)
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := ann.svc.Post(ctx, "will be deleted while Bob is away", nil)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := ann.svc.Post(ctx, "stays as it is", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []Entry{edited, deleted, kept} {
		eventually(t, "Bob receives "+e.Text, func() bool { _, ok := live(t, bob.svc, e.ID); return ok })
	}
	bob.stop()

	if _, err := ann.svc.Edit(ctx, edited.ID, "edited while Bob was away", nil); err != nil {
		t.Fatal(err)
	}
	if err := ann.svc.Delete(ctx, deleted.ID); err != nil {
		t.Fatal(err)
	}
	img := randomImage(70 << 10)
	added, err := ann.svc.Post(ctx, "posted while Bob was away", []NewImage{{Name: "photo.png", Type: "image/png", R: bytes.NewReader(img)}})
	if err != nil {
		t.Fatal(err)
	}
	// More than a page of posts, so that the pull takes several.
	var many []string
	for i := range pullPage + 5 {
		e, err := ann.svc.Post(ctx, "post number "+string(rune('A'+i%26))+" of many", nil)
		if err != nil {
			t.Fatal(err)
		}
		many = append(many, e.ID)
	}
	want := map[string]string{
		edited.ID: "edited while Bob was away",
		kept.ID:   "stays as it is",
		added.ID:  "posted while Bob was away",
	}
	for _, id := range many {
		e, _ := live(t, ann.svc, id)
		want[id] = e.Text
	}

	for _, f := range []*testPlug{bob, cat} {
		f.start()
		if got, ok := live(t, f.svc, added.ID); ok {
			t.Fatalf("%s has a post made while it was offline before connecting: %+v", f.name, got)
		}
		connect(t, f, ann)
		eventually(t, f.name+" catches up with every post of Ann", func() bool {
			tl := timeline(t, f.svc, TimelineQuery{Author: "ann"})
			if len(tl) != len(want) {
				return false
			}
			for _, e := range tl {
				if want[e.ID] != e.Text {
					return false
				}
			}
			return true
		})
		if _, ok := live(t, f.svc, deleted.ID); ok {
			t.Fatalf("%s still shows the post deleted while it was away", f.name)
		}
		eventually(t, f.name+"'s search forgets the post deleted while it was away", func() bool { return len(find(t, f.svc, "deleted", "")) == 0 })
		e, _ := live(t, f.svc, edited.ID)
		if e.Post.Version != 2 {
			t.Fatalf("%s holds version %d of the edited post, want 2", f.name, e.Post.Version)
		}
		eventually(t, f.name+" fetches the image of the post made while it was away", func() bool {
			return hasMedia(f.svc, added.Post.Images[0].Hash, img)
		})
	}

	// Pulling again brings nothing twice: the cursor moved on.
	before := bob.logs.String()
	bob.svc.pull(ctx, ann.id())
	if strings.Count(bob.logs.String(), "caught up with a friend's posts") != strings.Count(before, "caught up with a friend's posts") {
		t.Fatalf("a second pull received posts again:\n%s", strings.TrimPrefix(bob.logs.String(), before))
	}
}

// TestFeedStranger: a plug that Ann has not paired with gets nothing from
// her feed and cannot push into it, even if it lists Ann as a friend.
func TestFeedStranger(t *testing.T) {
	ann, eve := newPlug(t, "ann"), newPlug(t, "eve")
	ctx := t.Context()
	secret, err := ann.svc.Post(ctx, "for my friends only", []NewImage{{Name: "a.png", R: bytes.NewReader(randomImage(1000))}})
	if err != nil {
		t.Fatal(err)
	}
	// Eve lists Ann as a friend on her side only.
	if _, err := eve.node.ImportFriends([]p2p.Friend{{PeerID: ann.id(), Name: "ann", Addrs: addrs(ann.host)}}); err != nil {
		t.Fatal(err)
	}
	connect(t, eve, ann) // Eve's plug pulls from Ann on connecting.
	eventually(t, "Ann refuses Eve's pull", func() bool {
		return len(ann.logs.lines("refused a stranger: the feed protocol", eve.id().String())) > 0
	})
	evePost, err := eve.svc.Post(ctx, "let me in", nil) // pushed to Ann, online
	if err != nil {
		t.Fatal(err)
	}
	// Ann logs a stranger once a minute at most (the rest are counted):
	// Eve's plug tells the refusal of its push.
	eventually(t, "Ann refuses Eve's push", func() bool {
		return len(eve.logs.lines("a friend refused a post", "not_friend")) > 0
	})

	// The same, by hand on the wire: every operation gets not_friend.
	for _, q := range []feedRequest{
		{Op: "pull"},
		{Op: "push", Post: record(t, *evePost.Post)},
		{Op: "media", Hash: secret.Post.Images[0].Hash},
	} {
		r, rest := feedCall(t, eve.host, ann.id(), q)
		if r.OK || r.Code != "not_friend" || len(r.Posts) != 0 || len(rest) != 0 {
			t.Fatalf("%s by a stranger: %+v and %d more bytes; want not_friend and nothing", q.Op, r, len(rest))
		}
	}
	if tl := timeline(t, eve.svc, TimelineQuery{Author: "ann"}); len(tl) != 0 {
		t.Fatalf("Eve got Ann's posts: %v", ids(tl))
	}
	if _, ok := live(t, ann.svc, evePost.ID); ok {
		t.Fatal("Ann took a post from a stranger")
	}
	if tl := timeline(t, ann.svc, TimelineQuery{}); !slices.Equal(ids(tl), []string{secret.ID}) {
		t.Fatalf("Ann's timeline = %v, want only her post", ids(tl))
	}
}

// TestFeedForgedAuthor: a friend that pushes or serves a post signed by
// someone else (or not signed at all) is refused, and the refusal logged.
func TestFeedForgedAuthor(t *testing.T) {
	ann, bob := newPlug(t, "ann"), newPlug(t, "bob")
	pair(t, ann, bob)
	cat := cryptotest.NewKeys(t) // a third plug's keys; Bob holds one of its posts
	catsPost := signedPost(cat, newPostID(t), "Cat's genuine post", 1, time.Now())
	// Bob's plug signs a post that names Cat as its author.
	forged := signedPost(bob.keys, newPostID(t), "Cat says Bob is right", 1, time.Now())
	forged.Author = cat.PeerID()
	forged.sign(bob.keys.Identity())

	for _, c := range []struct {
		name string
		post Post
		log  string
	}{
		{"another author's genuine post", catsPost, ErrNotAuthor.Error()},
		{"a post signed as another author", forged, ErrBadSig.Error()},
	} {
		t.Run("push "+c.name, func(t *testing.T) {
			r, _ := feedCall(t, bob.host, ann.id(), feedRequest{Op: "push", Post: record(t, c.post)})
			if r.OK || r.Code != "bad_post" {
				t.Fatalf("answer %+v, want bad_post", r)
			}
			if _, ok := live(t, ann.svc, c.post.ID); ok {
				t.Fatal("Ann stored it")
			}
			if got := ann.logs.lines("refused a post from a friend", "friend=bob", c.log); len(got) == 0 {
				t.Fatalf("Ann's log says nothing of it:\n%s", ann.logs.String())
			}
		})
	}

	// Bob's plug serves them in its feed: Ann's pull refuses them too, and
	// takes Bob's own post from the same page.
	own := signedPost(bob.keys, newPostID(t), "Bob's own post", 1, time.Now())
	bob.host.SetStreamHandler(p2p.ProtoFeed, func(st network.Stream) {
		defer func() { _ = st.Close() }() // Bob's side of the test: Ann's pull checks what arrived
		if _, err := p2p.ReadFrame(st, maxFeedFrame); err != nil {
			return
		}
		if err := writeFeed(st, feedResponse{OK: true, Posts: []json.RawMessage{record(t, catsPost), record(t, forged), record(t, own)}, Next: 3}); err != nil {
			t.Errorf("Bob's plug could not answer the pull: %v", err)
		}
	})
	logged := len(ann.logs.lines("refused a post from a friend"))
	ann.svc.pull(t.Context(), bob.id())
	if _, ok := live(t, ann.svc, own.ID); !ok {
		t.Fatal("Ann's pull did not take Bob's own post")
	}
	for _, p := range []Post{catsPost, forged} {
		if _, ok := live(t, ann.svc, p.ID); ok {
			t.Fatalf("Ann's pull took %q", p.Text)
		}
	}
	if got := len(ann.logs.lines("refused a post from a friend", "friend=bob")) - logged; got != 2 {
		t.Fatalf("Ann logged %d refusals of the pull, want 2:\n%s", got, ann.logs.String())
	}
}

// TestFeedOlderVersionLoses: versions that arrive late (a slow push, a
// replayed record) never replace a newer one, nor revive a deleted post.
func TestFeedOlderVersionLoses(t *testing.T) {
	ann, bob := newPlug(t, "ann"), newPlug(t, "bob")
	pair(t, ann, bob)
	ctx := t.Context()
	v1, err := ann.svc.Post(ctx, "version one", nil)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := ann.svc.Edit(ctx, v1.ID, "version two", nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "Bob holds version two", func() bool {
		e, ok := live(t, bob.svc, v1.ID)
		return ok && e.Post.Version == 2
	})
	// Ann's plug pushes version one again (its push was slow).
	r, _ := feedCall(t, ann.host, bob.id(), feedRequest{Op: "push", Post: record(t, *v1.Post)})
	if !r.OK {
		t.Fatalf("a late version is answered %+v, want ok (nothing to do)", r)
	}
	if e, _ := live(t, bob.svc, v1.ID); e.Text != "version two" || e.Post.Version != 2 {
		t.Fatalf("after a late version one, Bob holds %q version %d", e.Text, e.Post.Version)
	}
	if got := find(t, bob.svc, "one", ""); len(got) != 0 {
		t.Fatalf("Bob's search finds the old text: %v", got)
	}

	if err := ann.svc.Delete(ctx, v1.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Bob applies the deletion", func() bool { _, ok := live(t, bob.svc, v1.ID); return !ok })
	for _, old := range []Post{*v1.Post, *v2.Post} {
		feedCall(t, ann.host, bob.id(), feedRequest{Op: "push", Post: record(t, old)})
		if e, ok := live(t, bob.svc, v1.ID); ok {
			t.Fatalf("version %d arriving after the deletion revived the post: %+v", old.Version, e)
		}
	}
	if tl := timeline(t, bob.svc, TimelineQuery{}); len(tl) != 0 {
		t.Fatalf("Bob's timeline = %v, want empty", ids(tl))
	}
}

// TestFeedMedia: a friend gets only the images of the plug's own posts, by
// hash, and an image that does not match its hash is not kept as it.
func TestFeedMedia(t *testing.T) {
	ann, bob := newPlug(t, "ann"), newPlug(t, "bob")
	pair(t, ann, bob)
	ctx := t.Context()
	img := randomImage(5 << 20) // larger than a stream window
	e, err := ann.svc.Post(ctx, "a big picture", []NewImage{{Name: "big.png", Type: "image/png", R: bytes.NewReader(img)}})
	if err != nil {
		t.Fatal(err)
	}
	hash := e.Post.Images[0].Hash
	r, body := feedCall(t, bob.host, ann.id(), feedRequest{Op: "media", Hash: hash})
	if !r.OK || r.Size != int64(len(img)) || !bytes.Equal(body, img) {
		t.Fatalf("media answer %+v with %d bytes (equal %v), want ok, %d bytes, the image", r, len(body), bytes.Equal(body, img), len(img))
	}
	eventually(t, "Bob fetches the image", func() bool { return hasMedia(bob.svc, hash, img) })

	// An image Ann holds only as a friend's is not hers to serve.
	friendsImg := randomImage(2000)
	b, err := bob.svc.Post(ctx, "Bob's picture", []NewImage{{Name: "b.png", R: bytes.NewReader(friendsImg)}})
	if err != nil {
		t.Fatal(err)
	}
	bh := b.Post.Images[0].Hash
	eventually(t, "Ann fetches Bob's image", func() bool { return hasMedia(ann.svc, bh, friendsImg) })
	cat := newPlug(t, "cat")
	pair(t, ann, cat)
	if r, rest := feedCall(t, cat.host, ann.id(), feedRequest{Op: "media", Hash: bh}); r.OK || r.Code != "not_found" || len(rest) != 0 {
		t.Fatalf("Ann serves Bob's image to Cat: %+v, %d bytes", r, len(rest))
	}
	if r, _ := feedCall(t, cat.host, ann.id(), feedRequest{Op: "media", Hash: strings.Repeat("0", 64)}); r.OK || r.Code != "not_found" {
		t.Fatalf("an unknown image: %+v, want not_found", r)
	}
	if r, _ := feedCall(t, cat.host, ann.id(), feedRequest{Op: "media", Hash: "../../db"}); r.OK || r.Code != "bad_request" {
		t.Fatalf("a path for a hash: %+v, want bad_request", r)
	}

	// Bob's plug answers with other bytes than the image it announced:
	// Ann does not keep them under the announced hash.
	lie := randomImage(3000)
	liePost := signedPost(bob.keys, newPostID(t), "a lie", 1, time.Now())
	liePost.Images = []ImageRef{{Hash: hashOf(randomImage(10)), Name: "x.png", Size: 3000}}
	liePost.sign(bob.keys.Identity())
	bob.host.SetStreamHandler(p2p.ProtoFeed, func(st network.Stream) {
		defer func() { _ = st.Close() }() // Bob's side of the test: Ann's fetch checks what arrived
		if _, err := p2p.ReadFrame(st, maxFeedFrame); err != nil {
			return
		}
		err := writeFeed(st, feedResponse{OK: true, Size: int64(len(lie))})
		if err == nil {
			_, err = st.Write(lie)
		}
		if err != nil {
			t.Errorf("Bob's plug could not send the image: %v", err)
		}
	})
	err = ann.svc.fetchOne(ctx, bob.id(), liePost.Images[0])
	if !errors.Is(err, errMediaMismatch) {
		t.Fatalf("fetching a substituted image: %v, want errMediaMismatch", err)
	}
	if ann.svc.media.has(liePost.Images[0].Hash) {
		t.Fatal("the substituted bytes are kept under the announced hash")
	}
}

// addrs are a host's listen addresses, as a friend record keeps them.
func addrs(h host.Host) []string {
	var out []string
	for _, a := range h.Addrs() {
		out = append(out, a.String())
	}
	return out
}

// hashOf is the media hash of b: BLAKE3-256, hex.
func hashOf(b []byte) string {
	h := blake3.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestFeedBadRequests: a friend's malformed requests get bad_request and
// change nothing.
func TestFeedBadRequests(t *testing.T) {
	ann, bob := newPlug(t, "ann"), newPlug(t, "bob")
	pair(t, ann, bob)
	for _, q := range []feedRequest{
		{Op: "delete"},
		{Op: "push"},
		{Op: "push", Post: json.RawMessage(`{"id":"x"}`)},
		{Op: "media", Hash: "not hex"},
	} {
		r, _ := feedCall(t, bob.host, ann.id(), q)
		if r.OK || (r.Code != "bad_request" && r.Code != "bad_post") {
			t.Errorf("%+v: answer %+v, want a refusal", q, r)
		}
	}
	// A request past the size of a push is refused before it is read,
	// and the refusal is logged.
	big, _ := json.Marshal(feedRequest{Op: "push", Post: json.RawMessage(`"` + strings.Repeat("x", maxPostRecord+8<<10) + `"`)})
	func() {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		st, err := bob.host.NewStream(ctx, ann.id(), p2p.ProtoFeed)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = st.Close() }() // Ann's plug hangs up: closing fails, and loses nothing
		if err := st.SetDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		// Writing may fail half-way, and closing then too: Ann hangs up.
		// What matters is her answer, read below, and her log.
		_ = p2p.WriteFrame(st, big)
		_ = st.CloseWrite()
		if b, _ := io.ReadAll(st); len(b) > 4 {
			if r, err := decodeFeedResponse(b[4:]); err != nil || r.OK || r.Code != "too_large" {
				t.Fatalf("a request of %d bytes is answered %q", len(big), b)
			}
		}
		if l := ann.logs.lines("oversized feed message"); len(l) == 0 {
			t.Fatalf("the oversized request was not logged:\n%s", ann.logs)
		}
	}()

	// A frame past the limit is refused before it is read.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	st, err := bob.host.NewStream(ctx, ann.id(), p2p.ProtoFeed)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }() // Ann's plug hangs up: closing fails, and loses nothing
	if _, err := st.Write([]byte{0xff, 0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	_ = st.CloseWrite() // may fail: Ann's plug may have hung up already, as it is to
	if err := st.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(st); len(b) != 0 {
		if r, err := decodeFeedResponse(b[4:]); err != nil || r.OK {
			t.Fatalf("a 4 GiB frame is answered %q", b)
		}
	}
	if tl := timeline(t, ann.svc, TimelineQuery{}); len(tl) != 0 {
		t.Fatalf("bad requests left entries: %v", ids(tl))
	}
}

// TestFeedPullFromAStuckFriend: a friend that always answers "more"
// without moving its cursor on is asked once, not a thousand times.
func TestFeedPullFromAStuckFriend(t *testing.T) {
	ann, bob := newPlug(t, "ann"), newPlug(t, "bob")
	pair(t, ann, bob)
	var asked atomic.Int64
	bob.host.SetStreamHandler(p2p.ProtoFeed, func(st network.Stream) {
		defer func() { _ = st.Close() }() // Bob's side of the test: the count below is what is checked
		if _, err := p2p.ReadFrame(st, maxFeedFrame); err != nil {
			return
		}
		asked.Add(1)
		if err := writeFeed(st, feedResponse{OK: true, More: true, Next: 0}); err != nil {
			t.Errorf("Bob's plug could not answer the pull: %v", err)
		}
	})
	ann.svc.pull(t.Context(), bob.id())
	if n := asked.Load(); n != 1 {
		t.Fatalf("Ann asked a stuck friend %d times, want 1", n)
	}
}

// TestFeedRunCatchesUpAfterRestart: a plug that comes back (a reboot)
// with nobody dialling it catches up by itself: Run reaches its friends.
func TestFeedRunCatchesUpAfterRestart(t *testing.T) {
	ann, bob := newPlug(t, "ann"), newPlug(t, "bob")
	pair(t, ann, bob)
	bob.stop()
	e, err := ann.svc.Post(t.Context(), "posted while Bob was rebooting", nil)
	if err != nil {
		t.Fatal(err)
	}
	bob.start()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := bob.svc.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("Bob's service stopped: %v", err)
		}
	}()
	defer func() { cancel(); <-done }()
	eventually(t, "Bob's plug catches up by itself", func() bool { _, ok := live(t, bob.svc, e.ID); return ok })
}
