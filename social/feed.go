package social

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/plug-net/plug/p2p"
	"github.com/plug-net/plug/store/kv"
)

// The feed protocol (/plug/feed/1.0.0), between friends only. One request
// per stream, in frames (p2p.WriteFrame):
//
//	{"op": "pull", "after": SEQ}   -> {"ok", "posts": [signed records], "next": SEQ, "more"}
//	{"op": "push", "post": record} -> {"ok"} or {"code", "msg"}
//	{"op": "media", "hash": HEX}   -> {"ok", "size"}, then the bytes
//
// A plug serves only its own posts (and their images); each record is
// checked against its signature and against the connection's peer ID.
const (
	maxFeedFrame = 4 << 20
	// maxFeedRequest bounds a request: a push carries one post record.
	maxFeedRequest = maxPostRecord + 4<<10
	pullPage       = 50
	feedDeadline   = 2 * time.Minute
	syncEvery      = 10 * time.Minute
)

var pfxOwnMedia = []byte("om/") // hash of an image of an own post -> ""

type feedRequest struct {
	Op    string          `json:"op"`
	After uint64          `json:"after,omitempty"`
	Post  json.RawMessage `json:"post,omitempty"`
	Hash  string          `json:"hash,omitempty"`
}

type feedResponse struct {
	OK    bool              `json:"ok"`
	Code  string            `json:"code,omitempty"`
	Msg   string            `json:"msg,omitempty"`
	Posts []json.RawMessage `json:"posts,omitempty"`
	Next  uint64            `json:"next,omitempty"`
	More  bool              `json:"more,omitempty"`
	Size  int64             `json:"size,omitempty"`
}

// decodeFeedRequest parses a request from a friend, with limits.
func decodeFeedRequest(b []byte) (feedRequest, error) {
	var q feedRequest
	if err := json.Unmarshal(b, &q); err != nil {
		return q, fmt.Errorf("%w: %v", ErrBadPost, err)
	}
	switch q.Op {
	case "pull":
	case "push":
		if len(q.Post) == 0 || len(q.Post) > maxPostRecord {
			return q, fmt.Errorf("%w: push of %d bytes", ErrBadPost, len(q.Post))
		}
	case "media":
		if !hashRe.MatchString(q.Hash) {
			return q, fmt.Errorf("%w: media hash", ErrBadPost)
		}
	default:
		return q, fmt.Errorf("%w: unknown operation %.20q", ErrBadPost, q.Op)
	}
	return q, nil
}

// decodeFeedResponse parses a response, with limits.
func decodeFeedResponse(b []byte) (feedResponse, error) {
	var r feedResponse
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%w: %v", ErrBadPost, err)
	}
	if len(r.Posts) > pullPage || r.Size < 0 || r.Size > MaxImageSize || len(r.Msg) > 1024 {
		return r, fmt.Errorf("%w: response out of limits", ErrBadPost)
	}
	return r, nil
}

func writeFeed(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return p2p.WriteFrame(w, b)
}

// reply writes the feed handler's answer. When it cannot be written, the
// friend has gone away or its deadline passed and it sees its own error:
// there is no one left to tell here, so the failure is only logged, for
// debugging.
func (s *Service) reply(st network.Stream, v any) {
	if err := writeFeed(st, v); err != nil {
		s.log.Debug("could not answer a feed request", "peer", st.Conn().RemotePeer().String(), "err", err)
	}
}

// closeStream closes a feed stream whose exchange is over. By then
// everything was written or read, and a failure there was handled: a
// failing close (the friend went away, or the stream was reset) loses
// nothing, so it is only logged, for debugging.
func (s *Service) closeStream(st network.Stream) {
	if err := st.Close(); err != nil {
		s.log.Debug("could not close a feed stream", "peer", st.Conn().RemotePeer().String(), "err", err)
	}
}

func (s *Service) friendName(p peer.ID) (string, bool) {
	if s.node == nil {
		return "", false
	}
	f, ok := s.node.Friend(p)
	if !ok {
		return "", false
	}
	return f.Name, true
}

// handleFeed serves the feed protocol to friends. It runs on the host's
// goroutine but is the service's work: Close resets the stream and waits
// for it.
func (s *Service) handleFeed(st network.Stream) {
	if !s.enter() {
		st.Reset()
		return
	}
	defer s.wg.Done()
	stop := context.AfterFunc(s.ctx, func() { st.Reset() })
	defer stop()
	defer s.closeStream(st)
	remote := st.Conn().RemotePeer()
	name, ok := s.friendName(remote)
	if !ok {
		s.node.Refused(remote, "the feed protocol")
		s.reply(st, feedResponse{Code: "not_friend", Msg: "this plug does not list you as a friend"})
		return
	}
	if err := st.SetDeadline(time.Now().Add(feedDeadline)); err != nil {
		// Without a deadline a silent friend would hold this forever.
		s.log.Warn("dropped a friend's feed request: the stream takes no deadline", "friend", name, "err", err)
		st.Reset()
		return
	}
	b, err := p2p.ReadFrame(st, maxFeedRequest)
	if errors.Is(err, p2p.ErrFrameTooLarge) {
		s.log.Warn("refused an oversized feed message from a friend", "friend", name, "err", err)
		s.reply(st, feedResponse{Code: "too_large", Msg: err.Error()})
		return
	}
	if err != nil {
		return
	}
	q, err := decodeFeedRequest(b)
	if err != nil {
		s.log.Warn("refused a bad feed request", "friend", name, "err", err)
		s.reply(st, feedResponse{Code: "bad_request", Msg: err.Error()})
		return
	}
	switch q.Op {
	case "pull":
		posts, next, more, err := s.outboxAfter(q.After)
		if err != nil {
			s.reply(st, feedResponse{Code: "internal", Msg: err.Error()})
			return
		}
		s.reply(st, feedResponse{OK: true, Posts: posts, Next: next, More: more})
	case "push":
		p, err := DecodePost(q.Post)
		if err == nil && p.Author != remote {
			err = fmt.Errorf("%w: %s pushed a post signed as %s", ErrNotAuthor, remote, p.Author)
		}
		if err != nil {
			s.log.Warn("refused a post from a friend", "friend", name, "err", err)
			s.reply(st, feedResponse{Code: "bad_post", Msg: err.Error()})
			return
		}
		if err := s.receive(p, name); err != nil && !errors.Is(err, errOldVersion) {
			s.log.Warn("refused a post from a friend", "friend", name, "err", err)
			s.reply(st, feedResponse{Code: "bad_post", Msg: err.Error()})
			return
		}
		s.reply(st, feedResponse{OK: true})
		s.goRun(func(ctx context.Context) { s.fetchMedia(ctx, remote, p) })
	case "media":
		own, _ := s.db.Has(kv.Posts, append(slices.Clone(pfxOwnMedia), q.Hash...))
		f, err := s.media.open(q.Hash)
		if !own || err != nil {
			s.reply(st, feedResponse{Code: "not_found", Msg: "no such image"})
			return
		}
		defer func() { _ = f.Close() }() // opened to read only: closing it loses nothing
		fi, err := f.Stat()
		if err != nil {
			s.log.Error("could not read an image a friend asked for", "friend", name, "err", err)
			s.reply(st, feedResponse{Code: "internal", Msg: "could not read the image"})
			return
		}
		if err := writeFeed(st, feedResponse{OK: true, Size: fi.Size()}); err != nil {
			s.log.Debug("could not answer a feed request", "friend", name, "err", err)
			return
		}
		if _, err := io.CopyN(st, f, fi.Size()); err != nil {
			// The friend gets a short image and fetches it again later;
			// the error tells a disk that fails from a friend that went
			// away.
			s.log.Warn("could not send an image to a friend", "friend", name, "err", err)
			st.Reset()
		}
	}
}

// outboxAfter returns the current records of the own posts changed after
// sequence after.
func (s *Service) outboxAfter(after uint64) ([]json.RawMessage, uint64, bool, error) {
	start := binary.BigEndian.AppendUint64(slices.Clone(pfxOutbox), after+1)
	var (
		posts []json.RawMessage
		next  = after
		more  bool
		seen  = map[string]bool{}
	)
	err := s.db.Iterate(kv.Posts, kv.IterOptions{Prefix: pfxOutbox, Start: start}, func(k, v []byte) error {
		if len(k) != len(pfxOutbox)+8 {
			return nil // not an outbox record (a damaged state dump may hold anything)
		}
		if len(posts) == pullPage {
			more = true
			return kv.ErrStop
		}
		next = binary.BigEndian.Uint64(k[len(pfxOutbox):])
		id := string(v)
		if seen[id] {
			return nil
		}
		seen[id] = true
		e, ok, err := s.getEntry(id)
		if err == nil && !ok {
			e, ok, err = s.getRecord(pfxDeleted, id)
		}
		if err != nil || !ok || e.Post == nil {
			return err
		}
		b, err := json.Marshal(e.Post)
		if err != nil {
			return err
		}
		posts = append(posts, b)
		return nil
	})
	return posts, next, more, err
}

// receive applies a friend's post (checked by the caller).
func (s *Service) receive(p Post, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.applyPost(p, name, false)
	if err == nil {
		what := "received a post from a friend"
		if p.Deleted {
			what = "a friend deleted a post"
		} else if p.Version > 1 {
			what = "a friend edited a post"
		}
		s.log.Info(what, "friend", name, "post", p.ID)
	}
	return err
}

// exchange opens a feed stream to friend p, sends q and hands the stream
// to read for the answer; the stream is closed when read returns. The
// stream is reset when ctx ends: a friend that does not answer holds
// nothing up, Close included.
func (s *Service) exchange(ctx context.Context, p peer.ID, q feedRequest, read func(st network.Stream) error) error {
	if err := s.node.Connect(ctx, p); err != nil {
		return err
	}
	st, err := s.node.Host().NewStream(ctx, p, p2p.ProtoFeed)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer func() {
		if stop() {
			s.closeStream(st)
		}
	}()
	if err := st.SetDeadline(time.Now().Add(feedDeadline)); err != nil {
		// Without a deadline a silent friend would hold this forever.
		st.Reset()
		return fmt.Errorf("set a deadline on the feed stream: %w", err)
	}
	if err := writeFeed(st, q); err != nil {
		st.Reset()
		return err
	}
	return read(st)
}

// ask is an exchange of one request and its answer.
func (s *Service) ask(ctx context.Context, p peer.ID, q feedRequest) (feedResponse, error) {
	var r feedResponse
	err := s.exchange(ctx, p, q, func(st network.Stream) (err error) {
		r, err = readFeed(st)
		return err
	})
	return r, err
}

func readFeed(r io.Reader) (feedResponse, error) {
	b, err := p2p.ReadFrame(r, maxFeedFrame)
	if err != nil {
		return feedResponse{}, err
	}
	return decodeFeedResponse(b)
}

// pushAll pushes a post version to every friend online now, in parallel,
// and returns when done; the others pull it when they next meet this plug.
func (s *Service) pushAll(ctx context.Context, p Post) {
	if s.node == nil {
		return
	}
	rec, _ := json.Marshal(p)
	fs, err := s.node.Friends()
	if err != nil {
		return
	}
	var wg sync.WaitGroup
	for _, f := range fs {
		if !f.Online {
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if r, err := s.ask(cctx, f.PeerID, feedRequest{Op: "push", Post: rec}); err == nil && !r.OK {
				s.log.Warn("a friend refused a post", "friend", f.Name, "code", r.Code, "msg", r.Msg)
			}
		})
	}
	wg.Wait()
}

func cursorKey(p peer.ID) []byte { return append(slices.Clone(pfxCursor), p...) }

// pull fetches a friend's posts changed since the last pull.
func (s *Service) pull(ctx context.Context, p peer.ID) {
	if s.node == nil {
		return
	}
	if _, busy := s.syncing.LoadOrStore(p, struct{}{}); busy {
		return
	}
	defer s.syncing.Delete(p)
	name, ok := s.friendName(p)
	if !ok {
		return
	}
	var cursor uint64
	if b, err := s.db.Get(kv.Posts, cursorKey(p)); err == nil && len(b) == 8 {
		cursor = binary.BigEndian.Uint64(b)
	}
	got := 0
	for range 1000 {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		r, err := s.ask(cctx, p, feedRequest{Op: "pull", After: cursor})
		cancel()
		if errors.Is(err, p2p.ErrFrameTooLarge) || errors.Is(err, ErrBadPost) {
			s.log.Warn("refused a friend's answer to a pull", "friend", name, "err", err)
		}
		if err != nil || !r.OK {
			return
		}
		for _, raw := range r.Posts {
			post, err := DecodePost(raw)
			if err == nil && post.Author != p {
				err = fmt.Errorf("%w: %s served a post signed as %s", ErrNotAuthor, p, post.Author)
			}
			if err != nil {
				s.log.Warn("refused a post from a friend", "friend", name, "err", err)
				continue
			}
			if err := s.receive(post, name); err == nil {
				got++
				s.goRun(func(ctx context.Context) { s.fetchMedia(ctx, p, post) })
			}
		}
		moved := r.Next > cursor
		if moved {
			cursor = r.Next
			if err := s.db.Put(kv.Posts, cursorKey(p), binary.BigEndian.AppendUint64(nil, cursor)); err != nil {
				// What was received is kept; the next pull asks for it
				// again from the last cursor saved.
				s.log.Warn("could not save how far this plug read a friend's posts; the next pull starts over from the last point saved", "friend", name, "err", err)
				break
			}
		}
		if !r.More || !moved {
			break // done, or a friend that says "more" without moving on
		}
	}
	if got > 0 {
		s.log.Info("caught up with a friend's posts", "friend", name, "posts", got)
	}
}

// fetchMedia fetches the images of a friend's post that are not stored yet.
func (s *Service) fetchMedia(ctx context.Context, p peer.ID, post Post) {
	for _, im := range post.Images {
		if s.media.has(im.Hash) {
			continue
		}
		if err := s.fetchOne(ctx, p, im); err != nil {
			s.log.Debug("could not fetch an image of a friend's post", "post", post.ID, "err", err)
		}
	}
}

func (s *Service) fetchOne(ctx context.Context, p peer.ID, im ImageRef) error {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return s.exchange(cctx, p, feedRequest{Op: "media", Hash: im.Hash}, func(st network.Stream) error {
		r, err := readFeed(st)
		if err != nil {
			return err
		}
		if !r.OK {
			return fmt.Errorf("%s: %w", r.Msg, fs.ErrNotExist)
		}
		if _, _, err := s.media.putExpect(io.LimitReader(st, r.Size), MaxImageSize, im.Hash); err != nil {
			return fmt.Errorf("image %s: %w", im.Hash[:8], err)
		}
		return nil
	})
}

// Run keeps friends' posts in sync until ctx ends or Close is called: at
// once, then every ten minutes, a pull from every friend (a pull dials the
// friend: after a reboot nobody else may, and a friend that connects is
// pulled from by the connection hook anyway). Pushes and pulls at
// connection time do the rest. It returns nil when stopped, and ErrClosed
// when called after Close.
func (s *Service) Run(ctx context.Context) error {
	if s.node == nil {
		return nil
	}
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	t := time.NewTicker(syncEvery)
	defer t.Stop()
	for {
		s.pullAll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// pullAll pulls from every friend, in parallel, and returns when done.
func (s *Service) pullAll(ctx context.Context) {
	fs, err := s.node.Friends()
	if err != nil {
		return
	}
	var wg sync.WaitGroup
	for _, f := range fs {
		wg.Go(func() { s.pull(ctx, f.PeerID) })
	}
	wg.Wait()
}
