package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func peerID(t *testing.T, dir string) string {
	t.Helper()
	return status(t, dir)["peer_id"].(string)
}

// TestLoseThePlug is the whole story: four plugs; A backs up a tree with
// thousands of files and a few large ones; A's data directory is deleted;
// a new A is recovered from the 24 words with a plug that is not its friend
// as bootstrap; restore latest is byte-identical.
func TestLoseThePlug(t *testing.T) {
	base := t.TempDir()
	z := filepath.Join(base, "z")
	startPlug(t, z, "--bootstrap", "none", "--name", "zed")
	boot := bootstrapAddr(t, z)

	r := mustPlug(t, "init", "--data", filepath.Join(base, "a"), "--json")
	var id struct {
		PeerID string `json:"peer_id"`
		Phrase string `json:"recovery_phrase"`
	}
	fromJSON(t, r.stdout, &id)
	dirs := map[string]string{}
	daemons := map[string]*daemon{}
	for _, n := range []string{"a", "b", "c", "d"} {
		dirs[n] = filepath.Join(base, n)
		daemons[n] = startPlug(t, dirs[n], "--bootstrap", boot, "--name", n)
	}
	for _, n := range []string{"b", "c", "d"} {
		r := mustPlug(t, "invite", "--data", dirs["a"], "--json")
		var inv struct{ Code string }
		fromJSON(t, r.stdout, &inv)
		mustPlug(t, "accept", "--data", dirs[n], inv.Code)
	}
	src := filepath.Join(base, "src")
	makeFiles(t, src, 1, 3000, 24<<20, 9<<20+3)
	r = mustPlug(t, "backup", "--data", dirs["a"], "--json", src)
	var res struct {
		ID    string `json:"snapshot_id"`
		Files int64  `json:"files"`
	}
	fromJSON(t, r.stdout, &res)
	if res.Files != 3002 {
		t.Fatalf("backed up %d files, want 3002", res.Files)
	}

	// The plug is lost.
	daemons["a"].kill()
	mustOK(t, os.RemoveAll(dirs["a"]))

	a2 := filepath.Join(base, "a2")
	r = plug(t, id.Phrase+"\n", "init", "--recover", "--data", a2, "--json")
	if r.code != 0 {
		t.Fatalf("init --recover: %s", r.stderr)
	}
	start := time.Now()
	d2 := startPlug(t, a2, "--bootstrap", boot, "--name", "a")
	var snaps []struct {
		ID string `json:"id"`
	}
	deadline := time.Now().Add(3 * time.Minute)
	for len(snaps) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the recovered plug found no snapshot in 3 minutes:\n%s", d2.logText())
		}
		time.Sleep(500 * time.Millisecond)
		r := mustPlug(t, "snapshots", "--data", a2, "--json")
		fromJSON(t, r.stdout, &snaps)
	}
	t.Logf("recovered the catalog in %v", time.Since(start).Round(time.Millisecond))
	if snaps[0].ID != res.ID {
		t.Fatalf("recovered snapshot %s, want %s", snaps[0].ID, res.ID)
	}
	if fs := friendsOf(t, a2); len(fs) != 3 {
		t.Fatalf("the recovered plug lists %d friends, want 3", len(fs))
	}
	out := filepath.Join(base, "out")
	mustPlug(t, "restore", "--data", a2, "latest", "--to", out)
	sameFiles(t, src, filepath.Join(out, src))

	// Back up again from the recovered plug: what is already stored is not
	// sent again.
	r = mustPlug(t, "backup", "--data", a2, "--json", src)
	var again struct {
		NewBytes int64 `json:"new_bytes"`
	}
	fromJSON(t, r.stdout, &again)
	if again.NewBytes != 0 {
		t.Fatalf("backup after recovery stored %d new bytes of an unchanged tree", again.NewBytes)
	}
}

// TestBadShardsAndLostFriends: a friend that flips bits in, truncates or
// substitutes its shards cannot spoil a restore, and is reported; with m
// friends wiped the restore is byte-identical; with m+1 it fails with "not
// enough shards", naming the lost files, and leaves no partial file.
func TestBadShardsAndLostFriends(t *testing.T) {
	c := newCluster(t, nil, "a", "b", "c", "d")
	src := filepath.Join(c.base, "src")
	makeFiles(t, src, 2, 300, 20<<20, 3<<20)
	c.backup(src)
	owner := peerID(t, c.dir("a"))

	faults := []struct {
		friend string
		name   string
		damage func(t *testing.T, files []string)
	}{
		{"b", "flip bits", func(t *testing.T, files []string) {
			for _, f := range files {
				fh, err := os.OpenFile(f, os.O_RDWR, 0)
				mustOK(t, err)
				b := make([]byte, 1)
				_, err = fh.ReadAt(b, 100)
				mustOK(t, err)
				b[0] ^= 0xff
				_, err = fh.WriteAt(b, 100)
				mustOK(t, err)
				mustOK(t, fh.Close())
			}
		}},
		{"c", "truncate", func(t *testing.T, files []string) {
			for _, f := range files {
				fi, err := os.Stat(f)
				mustOK(t, err)
				mustOK(t, os.Truncate(f, fi.Size()/2))
			}
		}},
		{"d", "substitute", func(t *testing.T, files []string) {
			// Each shard is replaced by a shard of the same pack held by b:
			// valid data of the owner's, of the right size, in the wrong
			// place (a pack's shards are all of one size).
			bySize := map[int64][]byte{}
			for _, f := range shardFiles(t, c.dir("b"), owner) {
				b, err := os.ReadFile(f)
				mustOK(t, err)
				bySize[int64(len(b))] = b
			}
			substituted := 0
			for _, f := range files {
				fi, err := os.Stat(f)
				mustOK(t, err)
				if other, ok := bySize[fi.Size()]; ok {
					mustOK(t, os.WriteFile(f, other, 0o600))
					substituted++
				}
			}
			if substituted == 0 {
				t.Fatal("no shard of d's could be substituted: the test damages nothing")
			}
		}},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			files := shardFiles(t, c.dir(f.friend), owner)
			if len(files) == 0 {
				t.Fatalf("%s holds no shards", f.friend)
			}
			saved := map[string][]byte{}
			for _, p := range files {
				b, err := os.ReadFile(p)
				mustOK(t, err)
				saved[p] = b
			}
			// Put the shards back however the subtest ends, so that a
			// failure here does not spoil the ones after it.
			defer func() {
				for p, b := range saved {
					mustOK(t, os.WriteFile(p, b, 0o600))
				}
			}()
			f.damage(t, files)
			out := filepath.Join(t.TempDir(), "out")
			r := mustPlug(t, "restore", "--data", c.dir("a"), "latest", "--to", out)
			sameFiles(t, src, filepath.Join(out, src))
			// The restore reports the bad shards it met; one that asked
			// the other friends first (the fetcher learns whom to ask) met
			// none, and a full verification finds them.
			if !strings.Contains(r.stderr, "returned a corrupt shard") {
				v, _ := c.verify(true)
				found := false
				for _, fc := range v.Friends {
					found = found || (fc.Name == f.friend && fc.Corrupt+fc.Missing > 0)
				}
				if !found {
					t.Fatalf("the bad shards were neither met by the restore nor found by verify --read-data: %+v\n%s", v.Friends, r.stderr)
				}
			}
		})
	}

	t.Run("m friends wiped", func(t *testing.T) {
		c.kill("d")
		mustOK(t, os.RemoveAll(c.dir("d")))
		out := filepath.Join(t.TempDir(), "out")
		mustPlug(t, "restore", "--data", c.dir("a"), "latest", "--to", out)
		sameFiles(t, src, filepath.Join(out, src))
		v, code := c.verify(false)
		if code != 1 || v.OK || v.CanLose != 0 {
			t.Fatalf("verify with a friend gone: exit %d, %+v; want exit 1, can lose 0", code, v)
		}
	})

	t.Run("m+1 friends wiped", func(t *testing.T) {
		c.kill("c")
		mustOK(t, os.RemoveAll(c.dir("c")))
		out := filepath.Join(t.TempDir(), "out")
		r := plug(t, "", "restore", "--data", c.dir("a"), "latest", "--to", out)
		if r.code != 1 || !strings.Contains(r.stderr, "not enough shards") || !strings.Contains(r.stderr, "files of the snapshot could not be restored ("+src) {
			t.Fatalf("restore with m+1 friends gone: exit %d\n%s", r.code, r.stderr)
		}
		var partial []string
		err := filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				rel, _ := filepath.Rel(filepath.Join(out, src), p)
				want, _ := os.ReadFile(filepath.Join(src, rel))
				got, _ := os.ReadFile(p)
				if !bytes.Equal(want, got) {
					partial = append(partial, rel)
				}
			}
			return nil
		})
		mustOK(t, err)
		if len(partial) > 0 {
			t.Fatalf("partial or garbage files left: %v", partial)
		}
		v, code := c.verify(false)
		if code != 1 || len(v.LostPacks) == 0 {
			t.Fatalf("verify with m+1 friends gone: exit %d, %+v", code, v)
		}
	})
}
