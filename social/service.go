package social

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/zeebo/blake3"

	"github.com/plug-net/plug/crypto"
	"github.com/plug-net/plug/p2p"
	"github.com/plug-net/plug/social/harvest"
	"github.com/plug-net/plug/social/search"
	"github.com/plug-net/plug/store/kv"
)

// SourcePlug is the source of posts: this plug's own and its friends'. A
// harvested entry's source is its importer's (harvest.Importers).
const SourcePlug = "plug"

// The importers' sources as strings, for code that compares an
// Entry.Source with one of them. Sources, CheckSource and
// harvest.Importers are what list the sources; these only name them.
const (
	SourceMastodon = string(harvest.SourceMastodon)
	SourceTwitter  = string(harvest.SourceTwitter)
	SourceFeed     = string(harvest.SourceFeed)
)

// ErrUnknownSource is wrapped by the errors of CheckSource,
// CheckImportKind and Import when a source or import kind is neither
// SourcePlug nor a registered importer's.
var ErrUnknownSource = errors.New("unknown source")

// ErrClosed is returned by the calls that start work once Close has begun.
var ErrClosed = errors.New("the social service is closed")

// Sources returns what an Entry's source may be: SourcePlug, then the
// source of every importer, in the order people see them.
func Sources() []string {
	out := []string{SourcePlug}
	for _, src := range harvest.Sources() {
		out = append(out, string(src))
	}
	return out
}

// CheckSource checks a source filter (of Timeline or Search): nil when it
// is empty (every source) or one of Sources, otherwise an error wrapping
// ErrUnknownSource that lists them.
func CheckSource(source string) error {
	if source == "" || slices.Contains(Sources(), source) {
		return nil
	}
	return fmt.Errorf("%w %.50q: choose %s", ErrUnknownSource, source, orList(Sources()))
}

// CheckImportKind checks the kind of an import: nil when an importer is
// registered under it, otherwise an error wrapping ErrUnknownSource that
// lists the importers.
func CheckImportKind(kind string) error {
	if _, ok := harvest.Lookup(harvest.Source(kind)); ok {
		return nil
	}
	var kinds []string
	for _, src := range harvest.Sources() {
		kinds = append(kinds, string(src))
	}
	return fmt.Errorf("%w %.50q to import from: choose %s", ErrUnknownSource, kind, orList(kinds))
}

// orList joins words for people: "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// Entry is one item of the timeline: a post of this plug or of a friend, or
// an item harvested from elsewhere.
type Entry struct {
	ID        string     `json:"id"`
	Author    string     `json:"author"`
	Source    string     `json:"source"`
	Time      time.Time  `json:"time"`
	Text      string     `json:"text"`
	URL       string     `json:"url"`
	AuthorID  string     `json:"author_id,omitempty"`
	Summary   string     `json:"summary,omitempty"`
	InReplyTo string     `json:"in_reply_to,omitempty"`
	Tags      []string   `json:"tags,omitempty"`
	Mentions  []string   `json:"mentions,omitempty"`
	Boost     bool       `json:"boost,omitempty"`
	Media     []MediaRef `json:"media,omitempty"`
	Own       bool       `json:"own,omitempty"`
	Edited    time.Time  `json:"edited,omitzero"`
	// Post is the signed record of a plug post.
	Post *Post `json:"post,omitempty"`
	// Key is the harvested item's dedup key (source and original ID).
	Key string `json:"key,omitempty"`
}

// Config configures a Service.
type Config struct {
	DB   *kv.DB
	Keys *crypto.Keys
	// Node carries the feed protocol; nil runs without friends (tests).
	Node *p2p.Node
	// Dir holds the social state: DIR/social (media and the export that
	// backups carry).
	Dir string
	// SearchDir holds the search index (a cache rebuilt when missing).
	SearchDir string
	Name      string
	Logger    *slog.Logger
}

// Service is the plug's microblog, harvester and search.
type Service struct {
	name  atomic.Pointer[string] // Config.Name, or the one SetName gave
	cfg   Config
	db    *kv.DB
	keys  *crypto.Keys
	node  *p2p.Node
	log   *slog.Logger
	media mediaStore
	index *search.Index

	mu      sync.Mutex // serializes writes of entries
	syncing sync.Map   // peer.ID -> struct{}: a pull in progress
	changes atomic.Uint64

	// ctx lives from New to Close. The service's own work (pushes, pulls,
	// image fetches, feed requests served, imports, Run) runs under it
	// and is counted in wg: Close cancels ctx and waits for all of it.
	ctx       context.Context
	cancel    context.CancelFunc
	runMu     sync.Mutex // guards closing against wg.Add
	closing   bool
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Changes counts the changes to the entries since the service started,
// plus one when it started with entries (they may be newer than the last
// backup): the store backs the state up when the count moved
// (store.StateSource).
func (s *Service) Changes() uint64 { return s.changes.Load() }

// Key prefixes in space kv.Posts.
var (
	pfxEntry    = []byte("e/") // entry ID -> Entry (live: in the timeline and the index)
	pfxDeleted  = []byte("d/") // post ID -> Entry of a deleted post (its signed deletion)
	pfxTime     = []byte("t/") // time (8 bytes) + entry ID -> ""
	pfxOutbox   = []byte("o/") // sequence (8 bytes) -> own post ID, for friends' pulls
	pfxCursor   = []byte("c/") // friend peer ID -> its last sequence seen
	keyOutboxSq = []byte("q/outbox")
)

// New opens the social service: the entries in the store and the search
// index (rebuilt from the entries when missing or damaged).
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Keys == nil || cfg.Dir == "" {
		return nil, errors.New("social: store, keys and directory are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, db: cfg.DB, keys: cfg.Keys, node: cfg.Node, log: cfg.Logger.With("component", "social"),
		media: mediaStore{dir: filepath.Join(cfg.Dir, "media")}}
	s.name.Store(&cfg.Name)
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := s.openIndex(ctx); err != nil {
		return nil, err
	}
	if n, err := s.db.Count(kv.Posts, nil); err != nil {
		return nil, fmt.Errorf("open the timeline: %w", err)
	} else if n > 0 {
		s.changes.Store(1)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.node != nil {
		s.node.Host().SetStreamHandler(p2p.ProtoFeed, s.handleFeed)
		// The node cannot forget a hook: after Close, goRun does nothing.
		s.node.OnFriendConnected(func(p peer.ID) { s.goRun(func(ctx context.Context) { s.pull(ctx, p) }) })
	}
	return s, nil
}

// enter counts one piece of the service's work in (wg); false once Close
// has begun, when the work must not start.
func (s *Service) enter() bool {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.closing {
		return false
	}
	s.wg.Add(1)
	return true
}

// goRun runs f in a goroutine of the service, under its context; nothing
// once Close has begun.
func (s *Service) goRun(f func(ctx context.Context)) {
	if !s.enter() {
		return
	}
	go func() {
		defer s.wg.Done()
		f(s.ctx)
	}()
}

// begin counts in work done on the caller's goroutine (Run, Import): it
// returns ctx, ended by Close too, and done, to call when the work ends.
// It fails with ErrClosed once Close has begun.
func (s *Service) begin(ctx context.Context) (_ context.Context, done func(), _ error) {
	if !s.enter() {
		return nil, nil, ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	return ctx, func() {
		stop()
		cancel()
		s.wg.Done()
	}, nil
}

// openIndex opens the search index, rebuilding it from the entries when it
// is missing, damaged or behind.
func (s *Service) openIndex(ctx context.Context) error {
	var idx *search.Index
	var err error
	if s.cfg.SearchDir == "" {
		idx, err = search.OpenMem()
	} else {
		idx, err = search.Open(s.cfg.SearchDir)
		if errors.Is(err, search.ErrDamaged) {
			s.log.Warn("the search index is damaged; rebuilding it", "err", err)
			if err := os.RemoveAll(s.cfg.SearchDir); err != nil {
				return fmt.Errorf("the search index is damaged, and could not be removed to build it anew (remove %s, then start again): %w", s.cfg.SearchDir, err)
			}
			idx, err = search.Open(s.cfg.SearchDir)
		}
	}
	if err != nil {
		return fmt.Errorf("open the search index: %w", err)
	}
	s.index = idx
	n, _ := idx.Count()
	total, _ := s.db.Count(kv.Posts, pfxEntry)
	if int(n) != total {
		return s.Reindex(ctx)
	}
	return nil
}

// Reindex rebuilds the search index from the stored entries.
func (s *Service) Reindex(ctx context.Context) error {
	start := time.Now()
	var batch []search.Doc
	var ids []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.index.Put(batch...)
		batch = batch[:0]
		return err
	}
	err := s.db.Iterate(kv.Posts, kv.IterOptions{Prefix: pfxEntry}, func(_, v []byte) error {
		var e Entry
		if err := json.Unmarshal(v, &e); err != nil {
			return nil
		}
		ids = append(ids, e.ID)
		batch = append(batch, docOf(e))
		if len(batch) == 1000 {
			return flush()
		}
		return ctx.Err()
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return fmt.Errorf("rebuild the search index: %w", err)
	}
	s.log.Info("search index rebuilt", "entries", len(ids), "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// SetName renames the owner on the posts written from now on.
func (s *Service) SetName(name string) { s.name.Store(&name) }

// Close stops the service: it refuses new feed requests, cancels what the
// service is doing (pushes, pulls, image fetches, requests being served,
// imports, Run), waits for all of it to end, and closes the search index.
// Close the service before the node and the store it uses. A second Close
// does nothing.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		s.runMu.Lock()
		s.closing = true
		s.runMu.Unlock()
		if s.node != nil {
			s.node.Host().RemoveStreamHandler(p2p.ProtoFeed)
		}
		s.cancel()
		s.wg.Wait()
		s.closeErr = s.index.Close()
	})
	return s.closeErr
}

func docOf(e Entry) search.Doc {
	return search.Doc{ID: e.ID, Text: e.Text, Summary: e.Summary, Author: e.Author, Source: e.Source, Tags: e.Tags, Time: e.Time}
}

func timeKey(t time.Time, id string) []byte {
	k := append([]byte(nil), pfxTime...)
	k = binary.BigEndian.AppendUint64(k, uint64(t.UnixNano()))
	return append(k, id...)
}

// getEntry returns a live entry.
func (s *Service) getEntry(id string) (Entry, bool, error) {
	return s.getRecord(pfxEntry, id)
}

func (s *Service) getRecord(pfx []byte, id string) (Entry, bool, error) {
	var e Entry
	b, err := s.db.Get(kv.Posts, append(slices.Clone(pfx), id...))
	if errors.Is(err, kv.ErrNotFound) {
		return e, false, nil
	}
	if err != nil {
		return e, false, err
	}
	return e, true, json.Unmarshal(b, &e)
}

// putEntry stores an entry (replacing one with the same ID) and indexes it.
func (s *Service) putEntry(e Entry, old *Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	err = s.db.Update(func(tx *kv.Tx) error {
		if old != nil {
			if err := tx.Delete(kv.Posts, timeKey(old.Time, old.ID)); err != nil {
				return err
			}
		}
		if err := tx.Put(kv.Posts, append(slices.Clone(pfxEntry), e.ID...), b); err != nil {
			return err
		}
		return tx.Put(kv.Posts, timeKey(e.Time, e.ID), nil)
	})
	if err != nil {
		return fmt.Errorf("store entry %s: %w", e.ID, err)
	}
	s.changes.Add(1)
	return s.index.Put(docOf(e))
}

// ---- own posts ----

// NewImage is an image to attach to a post.
type NewImage struct {
	Name string
	Type string
	R    io.Reader
}

// ErrNotYours is returned when editing or deleting another's post.
var ErrNotYours = errors.New("not your post")

// ErrNoPost is wrapped when a post cannot be found.
var ErrNoPost = errors.New("no such post")

// ErrEmptyPost is returned for a post with neither text nor image.
var ErrEmptyPost = errors.New("a post needs text or an image")

// Post publishes a new post and pushes it to the friends online.
func (s *Service) Post(ctx context.Context, text string, images []NewImage) (Entry, error) {
	p := Post{Author: s.keys.PeerID(), Version: 1, Created: time.Now().UTC().Truncate(time.Millisecond), Text: strings.TrimSpace(text)}
	var id [16]byte
	rand.Read(id[:])
	p.ID = hex.EncodeToString(id[:])
	return s.publish(p, images, nil)
}

// Edit replaces the text (and, if given, the images) of an own post.
func (s *Service) Edit(ctx context.Context, id, text string, images []NewImage) (Entry, error) {
	old, err := s.ownPost(id)
	if err != nil {
		return Entry{}, err
	}
	p := *old.Post
	p.Version++
	p.Edited = time.Now().UTC().Truncate(time.Millisecond)
	p.Text = strings.TrimSpace(text)
	if images == nil {
		return s.publish(p, nil, &old)
	}
	p.Images = nil
	return s.publish(p, images, &old)
}

// Delete deletes an own post: a signed deletion supersedes it at every
// friend.
func (s *Service) Delete(ctx context.Context, id string) error {
	old, err := s.ownPost(id)
	if err != nil {
		return err
	}
	p := *old.Post
	p.Version++
	p.Edited = time.Now().UTC().Truncate(time.Millisecond)
	p.Text, p.Images, p.Deleted = "", nil, true
	_, err = s.publish(p, nil, &old)
	return err
}

func (s *Service) ownPost(id string) (Entry, error) {
	e, ok, err := s.getEntry(id)
	if err != nil {
		return e, err
	}
	if !ok || e.Post == nil || e.Post.Deleted {
		return e, fmt.Errorf("%w: %q", ErrNoPost, id)
	}
	if e.Post.Author != s.keys.PeerID() {
		return e, fmt.Errorf("%w: %s was written by %s", ErrNotYours, id, e.Author)
	}
	return e, nil
}

// publish signs and stores a post version, and pushes it to the friends
// online in the background.
func (s *Service) publish(p Post, images []NewImage, old *Entry) (Entry, error) {
	if !p.Deleted && p.Text == "" && len(images) == 0 && len(p.Images) == 0 {
		return Entry{}, ErrEmptyPost
	}
	if n := utf8.RuneCountInString(p.Text); n > MaxPostChars {
		return Entry{}, fmt.Errorf("%w: %d characters, at most %d", ErrTooLong, n, MaxPostChars)
	}
	if len(images) > MaxImages {
		return Entry{}, fmt.Errorf("at most %d images per post", MaxImages)
	}
	for _, im := range images {
		hash, size, err := s.media.put(im.R, MaxImageSize)
		if err != nil {
			return Entry{}, fmt.Errorf("image %s: %w", im.Name, err)
		}
		if err := s.db.Put(kv.Posts, append(slices.Clone(pfxOwnMedia), hash...), nil); err != nil {
			return Entry{}, err
		}
		p.Images = append(p.Images, ImageRef{Hash: hash, Name: cleanText(filepath.Base(im.Name), 255), Type: cleanText(im.Type, 100), Size: size})
	}
	p.sign(s.keys.Identity())
	if err := p.Check(); err != nil {
		return Entry{}, err
	}
	s.mu.Lock()
	e, err := s.applyPost(p, *s.name.Load(), true)
	if err == nil {
		err = s.appendOutbox(p.ID)
	}
	s.mu.Unlock()
	if err != nil {
		return Entry{}, err
	}
	what := "posted"
	switch {
	case p.Deleted:
		what = "post deleted"
	case old != nil:
		what = "post edited"
	}
	s.log.Info(what, "post", p.ID, "version", p.Version, "images", len(p.Images))
	s.goRun(func(ctx context.Context) { s.pushAll(ctx, p) })
	return e, nil
}

// applyPost stores a post version if it is newer than what is stored, and
// returns the entry. A deletion removes the entry but keeps the record (so
// that older versions arriving later stay superseded).
func (s *Service) applyPost(p Post, authorName string, own bool) (Entry, error) {
	old, ok, err := s.getEntry(p.ID)
	if err == nil && !ok {
		old, ok, err = s.getRecord(pfxDeleted, p.ID)
	}
	if err != nil {
		return Entry{}, err
	}
	if ok {
		if old.Post == nil || old.Post.Author != p.Author {
			return Entry{}, fmt.Errorf("%w: post %s belongs to another author", ErrNotAuthor, p.ID)
		}
		if old.Post.Version >= p.Version {
			return old, errOldVersion
		}
	}
	e := Entry{
		ID: p.ID, Author: authorName, AuthorID: p.Author.String(), Source: SourcePlug, Time: p.Created,
		Text: p.Text, Own: own, Edited: p.Edited, Post: &p, Tags: hashtags(p.Text),
	}
	for _, im := range p.Images {
		e.Media = append(e.Media, MediaRef{Hash: im.Hash, Name: im.Name, Type: im.Type, Size: im.Size})
	}
	if p.Deleted {
		// Out of the timeline and the search; the signed deletion stays, so
		// that an older version arriving later stays superseded.
		b, err := json.Marshal(e)
		if err != nil {
			return e, err
		}
		err = s.db.Update(func(tx *kv.Tx) error {
			if err := tx.Delete(kv.Posts, timeKey(e.Time, e.ID)); err != nil {
				return err
			}
			if err := tx.Delete(kv.Posts, append(slices.Clone(pfxEntry), e.ID...)); err != nil {
				return err
			}
			return tx.Put(kv.Posts, append(slices.Clone(pfxDeleted), e.ID...), b)
		})
		if err != nil {
			return e, err
		}
		s.changes.Add(1)
		return e, s.index.Delete(e.ID)
	}
	var prev *Entry
	if ok {
		prev = &old
	}
	if err := s.putEntry(e, prev); err != nil {
		return e, err
	}
	return e, nil
}

// appendOutbox records an own post version for friends' pulls. The
// sequence is a record of its own (not a kv sequence) so that it travels
// with the state and a recovered plug goes on counting where it was:
// friends pull "after" their cursor.
func (s *Service) appendOutbox(id string) error {
	return s.db.UpdateSync(func(tx *kv.Tx) error {
		seq, err := advanceOutbox(tx, 1)
		if err != nil {
			return err
		}
		return tx.Put(kv.Posts, binary.BigEndian.AppendUint64(slices.Clone(pfxOutbox), seq), []byte(id))
	})
}

// advanceOutbox moves the outbox sequence on by n and returns the new one.
func advanceOutbox(tx *kv.Tx, n uint64) (uint64, error) {
	var seq uint64
	if b, err := tx.Get(kv.Posts, keyOutboxSq); err == nil && len(b) == 8 {
		seq = binary.BigEndian.Uint64(b)
	}
	seq += n
	return seq, tx.Put(kv.Posts, keyOutboxSq, binary.BigEndian.AppendUint64(nil, seq))
}

// ---- timeline ----

// TimelineQuery selects timeline entries.
type TimelineQuery struct {
	Source string    // "" for every source
	Author string    // a friend's name or peer ID; "" for everyone
	Before time.Time // entries older than this (zero: newest)
	Limit  int       // 0: 50; a page may pass it by the entries that share its last entry's time
}

// Timeline returns entries newest first.
func (s *Service) Timeline(ctx context.Context, q TimelineQuery) ([]Entry, error) {
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 50
	}
	opt := kv.IterOptions{Prefix: pfxTime, Reverse: true}
	if !q.Before.IsZero() {
		opt.Start = binary.BigEndian.AppendUint64(slices.Clone(pfxTime), uint64(q.Before.UnixNano()-1))
		opt.Start = append(opt.Start, 0xff)
	}
	var out []Entry
	// A full page goes on with the entries of its last entry's time, so
	// that the next page (Before = that time) skips none of them.
	var lastTS []byte
	err := s.db.Iterate(kv.Posts, opt, func(k, _ []byte) error {
		if len(k) <= len(pfxTime)+8 {
			return nil
		}
		ts := k[len(pfxTime) : len(pfxTime)+8]
		if lastTS != nil && !bytes.Equal(ts, lastTS) {
			return kv.ErrStop
		}
		e, ok, err := s.getEntry(string(k[len(pfxTime)+8:]))
		if err != nil || !ok || (e.Post != nil && e.Post.Deleted) {
			return err
		}
		if q.Source != "" && e.Source != q.Source {
			return nil
		}
		if q.Author != "" && !strings.EqualFold(e.Author, q.Author) && e.AuthorID != q.Author {
			return nil
		}
		out = append(out, e)
		if len(out) == q.Limit {
			lastTS = slices.Clone(ts)
		}
		return ctx.Err()
	})
	return out, err
}

// Entry returns one entry.
func (s *Service) Entry(id string) (Entry, bool, error) { return s.getEntry(id) }

// OpenMedia opens a stored medium by hash.
func (s *Service) OpenMedia(hash string) (*os.File, error) { return s.media.open(hash) }

// ---- search ----

// Search runs a full-text query over posts and harvested items: the matching
// entries, best match first.
func (s *Service) Search(ctx context.Context, text, source string, limit, offset int) ([]Entry, uint64, error) {
	if limit <= 0 || limit > 1000 {
		limit = 50
	}
	res, err := s.index.Search(ctx, search.Query{Text: text, Source: source, Limit: limit, Offset: offset})
	if err != nil {
		return nil, 0, err
	}
	out := make([]Entry, 0, len(res.Hits))
	for _, h := range res.Hits {
		e, ok, err := s.getEntry(h.ID)
		if err != nil {
			return nil, 0, err
		}
		if ok && (e.Post == nil || !e.Post.Deleted) {
			out = append(out, e)
		}
	}
	return out, res.Total, nil
}

// cleanText makes a short friend- or archive-supplied string safe to keep:
// valid UTF-8, no control characters, at most max bytes.
func cleanText(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b bytes.Buffer
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > max {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// entryID is the ID of a harvested item: a hash of its dedup key.
func entryID(key string) string {
	h := blake3.Sum256([]byte("plug/item\x00" + key))
	return hex.EncodeToString(h[:16])
}

var hashtagRe = regexp.MustCompile(`(?:^|[^\p{L}\p{N}_&/#])#([\p{L}\p{N}_]{1,100})`)

// hashtags returns the #tags of a post's text, lower-cased, each once.
func hashtags(text string) []string {
	var tags []string
	for _, m := range hashtagRe.FindAllStringSubmatch(text, 50) {
		t := strings.ToLower(m[1])
		if !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	return tags
}
