package social

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/plug-net/plug/crypto"
	"github.com/plug-net/plug/crypto/cryptotest"
	"github.com/plug-net/plug/p2p"
	"github.com/plug-net/plug/p2p/holdstore"
	"github.com/plug-net/plug/store/kv"
)

// openDB opens a badger store in dir/db, closed at the end of the test.
func openDB(t testing.TB, dir string) *kv.DB {
	t.Helper()
	db, err := kv.Open(filepath.Join(dir, "db"), kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close the database: %v", err)
		}
	})
	return db
}

// newService opens a Service without a network (Node nil) on a fresh
// badger store, with its search index on disk.
func newService(t testing.TB, name string) *Service {
	t.Helper()
	return newServiceWith(t, name, cryptotest.NewKeys(t), t.TempDir())
}

// newServiceWith opens a Service without a network for keys on dir (a
// store, state folder and search index of its own).
func newServiceWith(t testing.TB, name string, keys *crypto.Keys, dir string) *Service {
	t.Helper()
	db := openDB(t, dir)
	s, err := New(context.Background(), Config{
		DB: db, Keys: keys, Name: name,
		Dir: filepath.Join(dir, "social"), SearchDir: filepath.Join(dir, "search"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close %s's service: %v", name, err)
		}
	})
	return s
}

// logBuffer collects what a plug logs, for tests that check a refusal is
// logged.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the logged lines that contain every one of parts.
func (l *logBuffer) lines(parts ...string) []string {
	var out []string
	for line := range strings.Lines(l.String()) {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

// testPlug is a whole plug's social half on 127.0.0.1: keys from a new
// phrase, a badger store, a libp2p host and p2p.Node, and a Service with
// its search index on disk. stop and start simulate the plug going offline
// and coming back (on another port, with the same store).
type testPlug struct {
	t    testing.TB
	name string
	dir  string
	keys *crypto.Keys
	logs *logBuffer

	db   *kv.DB
	host host.Host
	node *p2p.Node
	svc  *Service
}

func newPlug(t testing.TB, name string) *testPlug {
	t.Helper()
	tp := &testPlug{t: t, name: name, dir: t.TempDir(), keys: cryptotest.NewKeys(t), logs: &logBuffer{}}
	tp.start()
	t.Cleanup(tp.stop)
	return tp
}

func (tp *testPlug) start() {
	tp.t.Helper()
	db, err := kv.Open(filepath.Join(tp.dir, "db"), kv.Options{})
	if err != nil {
		tp.t.Fatal(err)
	}
	held, _, err := holdstore.Open(filepath.Join(tp.dir, "shards"), db)
	if err != nil {
		tp.t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(tp.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("plug", tp.name)
	n, err := p2p.NewNode(p2p.Config{
		HostConfig: p2p.HostConfig{Key: tp.keys.LibP2PKey(), ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}},
		DB:         db, Held: held, Name: tp.name, Rendezvous: tp.keys.RendezvousKey(), NoBootstrap: true, Logger: log,
	})
	if err != nil {
		tp.t.Fatal(err)
	}
	h := n.Host()
	s, err := New(context.Background(), Config{
		DB: db, Keys: tp.keys, Node: n, Name: tp.name, Logger: log,
		Dir: filepath.Join(tp.dir, "social"), SearchDir: filepath.Join(tp.dir, "search"),
	})
	if err != nil {
		tp.t.Fatal(err)
	}
	tp.db, tp.host, tp.node, tp.svc = db, h, n, s
}

// stop takes the plug offline: service, node, host and store closed.
func (tp *testPlug) stop() {
	if tp.svc == nil {
		return
	}
	if err := errors.Join(tp.svc.Close(), tp.node.Close(), tp.host.Close(), tp.db.Close()); err != nil {
		tp.t.Errorf("stop %s's plug: %v", tp.name, err)
	}
	tp.db, tp.host, tp.node, tp.svc = nil, nil, nil, nil
}

func (tp *testPlug) id() peer.ID { return tp.keys.PeerID() }

// pair makes b accept an invite of a: both list each other, by name.
func pair(t testing.TB, a, b *testPlug) {
	t.Helper()
	inv, err := a.node.CreateInvite(0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := b.node.Accept(ctx, inv.Code(), nil); err != nil {
		t.Fatalf("%s accepts %s's invite: %v", b.name, a.name, err)
	}
	if !a.node.IsFriend(b.id()) || !b.node.IsFriend(a.id()) {
		t.Fatalf("after pairing, %s and %s do not list each other", a.name, b.name)
	}
}

// connect makes from dial to (as a plug coming back online does).
func connect(t testing.TB, from, to *testPlug) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := from.node.Connect(ctx, to.id()); err != nil {
		t.Fatalf("%s connects to %s: %v", from.name, to.name, err)
	}
}

// waitFor is the deadline for what happens asynchronously between plugs.
const waitFor = 30 * time.Second

// eventually polls cond until it holds, and fails the test with what when
// waitFor passes first. It asserts an outcome, never a duration.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not true after %v: %s", waitFor, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// live returns the live entry id of s (ok false when absent or deleted).
func live(t testing.TB, s *Service, id string) (Entry, bool) {
	t.Helper()
	e, ok, err := s.Entry(id)
	if err != nil {
		t.Fatalf("Entry(%s): %v", id, err)
	}
	return e, ok
}

// timeline returns every entry of s matching q (all pages).
func timeline(t testing.TB, s *Service, q TimelineQuery) []Entry {
	t.Helper()
	q.Limit = 1000
	es, err := s.Timeline(context.Background(), q)
	if err != nil {
		t.Fatalf("Timeline(%+v): %v", q, err)
	}
	return es
}

// ids returns the IDs of entries, in order.
func ids(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// find returns the IDs that a query finds on s.
func find(t testing.TB, s *Service, q, source string) []string {
	t.Helper()
	es, _, err := s.Search(context.Background(), q, source, 1000, 0)
	if err != nil {
		t.Fatalf("Search(%q): %v", q, err)
	}
	return ids(es)
}

// signedPost makes a post record signed with keys, as its author's plug
// does.
func signedPost(keys *crypto.Keys, id, text string, version uint64, created time.Time) Post {
	p := Post{ID: id, Author: keys.PeerID(), Version: version, Created: created.UTC().Truncate(time.Millisecond), Text: text}
	if version > 1 {
		p.Edited = p.Created.Add(time.Duration(version) * time.Minute)
	}
	p.sign(keys.Identity())
	return p
}

// fixtures returns the folder of the real exports (README.md there says
// where they come from): $PLUG_FIXTURES, else the copy in the repository's
// testdata/fixtures.
func fixtures(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("PLUG_FIXTURES")
	if dir == "" {
		dir = filepath.Join("..", "testdata", "fixtures")
	}
	if _, err := os.Stat(filepath.Join(dir, "mastodon-archive", "outbox.json")); err != nil {
		t.Fatalf("the real exports are not in %s (%v): set PLUG_FIXTURES to the folder holding mastodon-archive/ and twitter-archive/", dir, err)
	}
	return dir
}
