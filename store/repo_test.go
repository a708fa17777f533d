package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/plug-net/plug/crypto"
	"github.com/plug-net/plug/crypto/cryptotest"
	"github.com/plug-net/plug/store/archiver"
	"github.com/plug-net/plug/store/catalog"
	"github.com/plug-net/plug/store/check"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/head"
	"github.com/plug-net/plug/store/kv"
	"github.com/plug-net/plug/store/restorer"
	"github.com/plug-net/plug/store/seal"
	"github.com/plug-net/plug/store/target"
)

// memNet is the in-memory network of store tests: friends are MemTargets.
type memNet struct {
	mu      sync.Mutex
	holders []*target.MemTarget
	friends []head.Friend
}

func newMemNet(n int) *memNet {
	m := &memNet{}
	for i := range n {
		_, pub, _ := p2pcrypto.GenerateEd25519Key(nil)
		id, _ := peer.IDFromPublicKey(pub)
		t := target.NewMemTarget(id.String())
		m.holders = append(m.holders, t)
		m.friends = append(m.friends, head.Friend{PeerID: id.String(), Name: fmt.Sprintf("friend-%d", i)})
	}
	return m
}

func (m *memNet) Reachable(ctx context.Context) []target.Holder {
	var out []target.Holder
	for _, h := range m.holders {
		if m.Holder(h.Name()) == nil {
			continue // no longer a friend
		}
		if _, err := h.HasShard(ctx, [32]byte{}); err == nil {
			out = append(out, h)
		}
	}
	return out
}

// Holder returns a friend by name, as the plug's network does: nil once it
// is no longer a friend.
func (m *memNet) Holder(name string) target.Holder {
	m.mu.Lock()
	friend := slices.ContainsFunc(m.friends, func(f head.Friend) bool { return f.PeerID == name })
	m.mu.Unlock()
	if !friend {
		return nil
	}
	for _, h := range m.holders {
		if h.Name() == name {
			return h
		}
	}
	return nil
}

// remove ends the friendship with holder name.
func (m *memNet) remove(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.friends = slices.DeleteFunc(m.friends, func(f head.Friend) bool { return f.PeerID == name })
}

func (m *memNet) Friends() []head.Friend {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]head.Friend(nil), m.friends...)
}

func (m *memNet) ImportFriends(fs []head.Friend) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.friends = append([]head.Friend(nil), fs...)
	return len(fs), nil
}

func (m *memNet) FindHolders(ctx context.Context) []target.Holder { return m.Reachable(ctx) }

func newTestRepo(t *testing.T, keys *crypto.Keys, net Network) *Repo {
	t.Helper()
	r, err := NewRepo(Config{DB: openKV(t), Keys: keys, Net: net, Host: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// makeTree writes a tree of files of many kinds under dir.
func makeTree(t *testing.T, dir string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "a/b/c"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "empty-dir"), 0o700))
	must(os.WriteFile(filepath.Join(dir, "big"), randBytes(11, 13<<20+17), 0o644))
	must(os.WriteFile(filepath.Join(dir, "empty"), nil, 0o600))
	must(os.WriteFile(filepath.Join(dir, "exec.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	for i := range 200 {
		must(os.WriteFile(filepath.Join(dir, "a/b/c", fmt.Sprintf("f%03d", i)), []byte(fmt.Sprintf("file %d\n", i)), 0o640))
	}
	must(os.WriteFile(filepath.Join(dir, "a/dup1"), randBytes(12, 300_000), 0o644))
	must(os.WriteFile(filepath.Join(dir, "a/dup2"), randBytes(12, 300_000), 0o644)) // same bytes: dedup
	must(os.WriteFile(filepath.Join(dir, "caf\xe9-latin1"), []byte("not UTF-8 name"), 0o644))
	must(os.Symlink("big", filepath.Join(dir, "link")))
	must(os.Symlink("/nonexistent/target", filepath.Join(dir, "a/dangling")))
	old := time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)
	must(os.Chtimes(filepath.Join(dir, "exec.sh"), old, old))
	must(os.Chtimes(filepath.Join(dir, "a/b"), old, old))
}

// sameTree compares two trees: content, modes, mtimes and symlinks.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		q := filepath.Join(got, rel)
		wi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		gi, err := os.Lstat(q)
		if err != nil {
			return fmt.Errorf("%s missing in the restore: %w", rel, err)
		}
		n++
		if wi.Mode() != gi.Mode() {
			return fmt.Errorf("%s: mode %v, want %v", rel, gi.Mode(), wi.Mode())
		}
		switch {
		case wi.Mode()&fs.ModeSymlink != 0:
			wt, _ := os.Readlink(p)
			gt, _ := os.Readlink(q)
			if wt != gt {
				return fmt.Errorf("%s: symlink to %q, want %q", rel, gt, wt)
			}
		case wi.Mode().IsRegular():
			wb, _ := os.ReadFile(p)
			gb, _ := os.ReadFile(q)
			if !bytes.Equal(wb, gb) {
				return fmt.Errorf("%s: content differs", rel)
			}
			fallthrough
		case wi.IsDir():
			if !wi.ModTime().Equal(gi.ModTime()) && rel != "." {
				return fmt.Errorf("%s: mtime %v, want %v", rel, gi.ModTime(), wi.ModTime())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing extra in the restore.
	m := 0
	mustOK(t, filepath.WalkDir(got, func(string, fs.DirEntry, error) error { m++; return nil }))
	if m != n {
		t.Fatalf("restore has %d entries, source %d", m, n)
	}
}

func TestBackupRestoreRecover(t *testing.T) {
	keys := cryptotest.FixedKeys(t)
	net := newMemNet(4) // k=3, m=1
	r := newTestRepo(t, keys, net)
	src := t.TempDir()
	makeTree(t, src)
	ctx := t.Context()

	var last archiver.Progress
	snap, err := r.Backup(ctx, []string{src}, BackupOptions{Progress: func(p archiver.Progress) { last = p }})
	if err != nil {
		t.Fatal(err)
	}
	if last.Phase != "done" || last.Files != snap.Files || snap.Files != 206 || snap.Errors != 0 {
		t.Fatalf("snapshot %+v, last progress %+v", snap, last)
	}
	if snap.NewBytes >= snap.Bytes {
		t.Fatalf("dup1/dup2 did not deduplicate: new %d of %d bytes", snap.NewBytes, snap.Bytes)
	}

	out := t.TempDir()
	if _, err := r.Restore(ctx, snap, out, restorer.Options{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, filepath.Join(out, src))

	t.Run("restore never overwrites silently", func(t *testing.T) {
		mustOK(t, os.WriteFile(filepath.Join(out, src, "exec.sh"), []byte("mine"), 0o644))
		_, err := r.Restore(ctx, snap, out, restorer.Options{})
		if !errors.Is(err, restorer.ErrExists) {
			t.Fatalf("restore over existing files: %v, want ErrExists", err)
		}
		if b, _ := os.ReadFile(filepath.Join(out, src, "exec.sh")); string(b) != "mine" {
			t.Fatal("an existing file was replaced")
		}
		if _, err := r.Restore(ctx, snap, out, restorer.Options{Overwrite: true}); err != nil {
			t.Fatal(err)
		}
		sameTree(t, src, filepath.Join(out, src))
	})

	t.Run("restore one path", func(t *testing.T) {
		o := t.TempDir()
		if _, err := r.Restore(ctx, snap, o, restorer.Options{Path: filepath.Join(src, "a/b")}); err != nil {
			t.Fatal(err)
		}
		sameTree(t, filepath.Join(src, "a/b"), filepath.Join(o, src, "a/b"))
		if _, err := os.Stat(filepath.Join(o, src, "big")); !os.IsNotExist(err) {
			t.Fatal("restoring a/b restored more")
		}
	})

	t.Run("unchanged tree sends no data", func(t *testing.T) {
		before := shardBytes(net)
		s2, err := r.Backup(ctx, []string{src}, BackupOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s2.NewBytes != 0 || s2.Parent != snap.ID {
			t.Fatalf("second backup: new %d bytes, parent %s", s2.NewBytes, s2.Parent.Short())
		}
		// Only metadata moved: the head's index segment, at most a small pack.
		if grew := shardBytes(net) - before; grew > 64<<10 {
			t.Fatalf("unchanged re-backup sent %d bytes of shards", grew)
		}
	})

	t.Run("recover from the head record alone", func(t *testing.T) {
		r2 := newTestRepo(t, keys, net) // new hardware: an empty store
		doc, err := r2.Recover(ctx)
		if err != nil {
			t.Fatal(err)
		}
		snaps, _ := r2.Snapshots()
		if len(snaps) != 2 || doc.Version != r.HeadVersion() {
			t.Fatalf("recovered %d snapshots, head version %d (want 2, %d)", len(snaps), doc.Version, r.HeadVersion())
		}
		latest, err := r2.FindSnapshot("latest")
		if err != nil {
			t.Fatal(err)
		}
		o := t.TempDir()
		if _, err := r2.Restore(ctx, latest, o, restorer.Options{}); err != nil {
			t.Fatal(err)
		}
		sameTree(t, src, filepath.Join(o, src))
	})

	t.Run("a friend alters, truncates or substitutes shards", func(t *testing.T) {
		other := net.holders[3].IDs()
		for i, id := range net.holders[0].IDs() {
			net.holders[0].Tamper(id, func(b []byte) []byte {
				switch i % 3 {
				case 0:
					b[len(b)/2] ^= 1
					return b
				case 1:
					return b[:len(b)-1]
				}
				x, _ := net.holders[3].GetShard(ctx, other[i%len(other)]) // a valid shard of the owner's
				return x
			})
		}
		r3 := newTestRepo(t, keys, net)
		if _, err := r3.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		o := t.TempDir()
		st, err := r3.Restore(ctx, snap, o, restorer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		sameTree(t, src, filepath.Join(o, src))
		// The restore names only the bad shards it met (the fetcher may
		// have learned during the recovery to ask friend-0 last).
		for _, b := range st.BadShards {
			if b.Holder != net.holders[0].Name() || b.Problem != "corrupt" {
				t.Fatalf("reported %+v, want only friend-0's shards as corrupt", b)
			}
		}
		v, err := r3.Verify(ctx, check.Options{ReadData: true})
		if err != nil && !errors.Is(err, check.ErrCorrupt) {
			t.Fatal(err)
		}
		for _, f := range v.Friends {
			if (f.Corrupt > 0) != (f.PeerID == net.holders[0].Name()) {
				t.Fatalf("verify --read-data: %+v, want friend-0's shards, and only them, corrupt", v.Friends)
			}
		}
	})

	t.Run("m friends wiped", func(t *testing.T) {
		net.holders[1].Wipe() // with friend-0's shards bad too, that is m+1
		o := t.TempDir()
		_, err := r.Restore(ctx, snap, o, restorer.Options{})
		if !errors.Is(err, seal.ErrNotEnoughShards) || !strings.Contains(err.Error(), "could not be restored") {
			t.Fatalf("restore with m+1 friends lost: %v, want ErrNotEnoughShards naming the files", err)
		}
		var files []string
		err = filepath.WalkDir(o, func(p string, d fs.DirEntry, err error) error {
			if d != nil && d.Type().IsRegular() {
				b, _ := os.ReadFile(p)
				rel, _ := filepath.Rel(filepath.Join(o, src), p)
				want, _ := os.ReadFile(filepath.Join(src, rel))
				if !bytes.Equal(b, want) || strings.HasPrefix(d.Name(), ".plug-restore-") {
					files = append(files, rel)
				}
			}
			return nil
		})
		mustOK(t, err)
		if len(files) > 0 {
			t.Fatalf("partial or wrong files left: %v", files)
		}
	})
}

func shardBytes(n *memNet) int64 {
	var sum int64
	for _, h := range n.holders {
		_, b := h.Len()
		sum += b
	}
	return sum
}

func TestBackupTooFewFriends(t *testing.T) {
	r := newTestRepo(t, cryptotest.FixedKeys(t), newMemNet(1))
	_, err := r.Backup(t.Context(), []string{t.TempDir()}, BackupOptions{})
	if !errors.Is(err, target.ErrTooFewFriends) || !strings.Contains(err.Error(), "pair with 1 more") {
		t.Fatalf("backup with one friend: %v", err)
	}
}

func TestBackupSkipsUnreadable(t *testing.T) {
	r := newTestRepo(t, cryptotest.FixedKeys(t), newMemNet(2))
	src := t.TempDir()
	mustOK(t, os.WriteFile(filepath.Join(src, "ok"), []byte("fine"), 0o644))
	mustOK(t, os.WriteFile(filepath.Join(src, "secret"), []byte("x"), 0o600))
	// Tests run as root, who reads everything: fail the open as it fails
	// for a file the plug's user may not read.
	r.openFile = func(p string) (*archiver.File, error) {
		if filepath.Base(p) == "secret" {
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrPermission}
		}
		return archiver.OpenForBackup(p)
	}
	var warned []string
	var mu sync.Mutex
	snap, err := r.Backup(t.Context(), []string{src}, BackupOptions{Warn: func(p string, err error) {
		mu.Lock()
		warned = append(warned, p)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatalf("one unreadable file failed the backup: %v", err)
	}
	if snap.Files != 1 || snap.Errors != 1 || len(warned) != 1 || filepath.Base(warned[0]) != "secret" {
		t.Fatalf("snapshot %+v, warned %v: want 1 file, 1 error about secret", snap, warned)
	}
	o := t.TempDir()
	if _, err := r.Restore(t.Context(), snap, o, restorer.Options{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(o, src, "ok")); string(b) != "fine" {
		t.Fatal("the readable file was not backed up")
	}
}

// TestIndexInSegments: an index larger than one segment goes out as several
// (each segment held alone while written), for the pending packs and for a
// full index alike, and a plug recovered from either knows every chunk.
func TestIndexInSegments(t *testing.T) {
	defer func(n int) { segmentSize = n }(segmentSize)
	segmentSize = 3000 // ~60 entries
	keys, net, r, src, snap := backedUpTree(t)
	ctx := t.Context()
	recoverAndRestore := func(what string) {
		t.Helper()
		refs, err := r.loadRefs(keyIndexRefs)
		if err != nil || len(refs) < 2 {
			t.Fatalf("%s: the head names %d index segments (%v), want several", what, len(refs), err)
		}
		r2 := newTestRepo(t, keys, net)
		if _, err := r2.Recover(ctx); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		n, n2 := 0, 0
		mustOK(t, r.cat.EachChunk(func(id data.ID, ref catalog.ChunkRef) error {
			if ref.Type != data.IndexBlob {
				n++
				if ok, err := r2.cat.HasChunk(id); err != nil || !ok {
					t.Errorf("%s: the recovered plug does not know chunk %s (%v)", what, id.Short(), err)
				}
			}
			return nil
		}))
		mustOK(t, r2.cat.EachChunk(func(_ data.ID, ref catalog.ChunkRef) error {
			if ref.Type != data.IndexBlob {
				n2++
			}
			return nil
		}))
		if n2 != n || n < 200 {
			t.Fatalf("%s: recovered %d chunks of %d", what, n2, n)
		}
		o := t.TempDir()
		if _, err := r2.Restore(ctx, snap, o, restorer.Options{}); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		sameTree(t, src, filepath.Join(o, src))
	}
	recoverAndRestore("pending packs")
	if ids, err := r.cat.PendingPacks(); err != nil || len(ids) != 0 {
		t.Fatalf("%d packs still pending after the publish (%v)", len(ids), err)
	}
	mustOK(t, r.db.Put(kv.Local, keyIndexFull, []byte{1}))
	mustOK(t, r.Publish(ctx))
	recoverAndRestore("full index")
}

// TestUnchangedFilesTrustTheParent: an unchanged file's chunks are not
// looked up when no chunk has left the index since the parent snapshot; once
// one has (a prune, a pack dropped), they are, and a file whose chunks went
// is stored again rather than named by a snapshot that cannot restore it.
func TestUnchangedFilesTrustTheParent(t *testing.T) {
	keys, net, r, src, s1 := backedUpTree(t)
	ctx := t.Context()
	if !r.parentStored(s1.ID) {
		t.Fatal("a fresh snapshot is not trusted as a parent")
	}
	// Drop the pack of one file's chunks, as a lost pack would be.
	f := filepath.Join(src, "exec.sh")
	tree, err := r.LoadTree(ctx, s1.Tree)
	if err != nil {
		t.Fatal(err)
	}
	node := findNode(t, r, tree, f)
	ref, ok, err := r.cat.Chunk(node.Content[0])
	if err != nil || !ok {
		t.Fatalf("chunk of %s not in the catalog (%v)", f, err)
	}
	var inPack []data.ID
	mustOK(t, r.cat.EachChunk(func(id data.ID, cr catalog.ChunkRef) error {
		if cr.Pack == ref.Pack {
			inPack = append(inPack, id)
		}
		return nil
	}))
	mustOK(t, r.cat.DropPack(ref.Pack, inPack))
	if r.parentStored(s1.ID) {
		t.Fatal("the parent is still trusted after chunks left the index")
	}
	s2, err := r.Backup(ctx, []string{src}, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s2.NewBytes == 0 {
		t.Fatal("the backup after the drop stored nothing again: it trusted its parent")
	}
	o := t.TempDir()
	if _, err := r.Restore(ctx, s2, o, restorer.Options{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, filepath.Join(o, src))
	if !r.parentStored(s2.ID) {
		t.Fatal("the new snapshot is not trusted as a parent")
	}
	s3, err := r.Backup(ctx, []string{src}, BackupOptions{})
	if err != nil || s3.NewBytes != 0 || s3.Files != s2.Files {
		t.Fatalf("unchanged re-backup: %+v %v", s3, err)
	}
	// A recovered plug has no notes: it looks its chunks up.
	r2 := newTestRepo(t, keys, net)
	if _, err := r2.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if r2.parentStored(s3.ID) {
		t.Fatal("a recovered plug trusts a parent it did not make")
	}
}

// backedUpTree backs up makeTree's tree with four friends in memory.
func backedUpTree(t *testing.T) (*crypto.Keys, *memNet, *Repo, string, data.Snapshot) {
	t.Helper()
	keys := cryptotest.FixedKeys(t)
	net := newMemNet(4)
	r := newTestRepo(t, keys, net)
	src := t.TempDir()
	makeTree(t, src)
	snap, err := r.Backup(t.Context(), []string{src}, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return keys, net, r, src, snap
}

// findNode walks tree down to the file at path.
func findNode(t *testing.T, r *Repo, tree *data.Tree, path string) *data.Node {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i, p := range parts {
		n := tree.Find(p)
		if n == nil {
			t.Fatalf("%s: no %s in the snapshot", path, p)
		}
		if i == len(parts)-1 {
			return n
		}
		var err error
		if tree, err = r.LoadTree(t.Context(), n.Subtree); err != nil {
			t.Fatal(err)
		}
	}
	return nil
}
