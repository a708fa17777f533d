package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cluster is a bootstrap-only plug and named plugs on 127.0.0.1, the first
// of which (the owner) is paired with all the others.
type cluster struct {
	t     *testing.T
	base  string
	boot  string
	names []string
	d     map[string]*daemon
	args  map[string][]string
}

func newCluster(t *testing.T, ownerArgs []string, names ...string) *cluster {
	t.Helper()
	return newClusterIn(t, t.TempDir(), ownerArgs, names...)
}

// newClusterIn is newCluster with the plugs' folders under base (where a
// test may have mounted something first).
func newClusterIn(t *testing.T, base string, ownerArgs []string, names ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, base: base, names: names, d: map[string]*daemon{}, args: map[string][]string{}}
	c.start("z", "--bootstrap", "none", "--name", "zed")
	c.boot = bootstrapAddr(t, c.dir("z"))
	for i, n := range names {
		args := []string{"--bootstrap", c.boot, "--name", n}
		if i == 0 {
			args = append(args, ownerArgs...)
		}
		c.start(n, args...)
	}
	for _, n := range names[1:] {
		c.pair(names[0], n)
	}
	return c
}

func (c *cluster) dir(name string) string { return filepath.Join(c.base, name) }

func (c *cluster) start(name string, args ...string) {
	c.t.Helper()
	if args == nil {
		args = c.args[name]
	}
	c.args[name] = args
	c.d[name] = startPlug(c.t, c.dir(name), args...)
}

// kill ends a plug with SIGKILL.
func (c *cluster) kill(name string) {
	c.d[name].kill()
}

func (c *cluster) pair(inviter, acceptor string) {
	c.t.Helper()
	r := mustPlug(c.t, "invite", "--data", c.dir(inviter), "--json")
	var inv struct{ Code string }
	fromJSON(c.t, r.stdout, &inv)
	mustPlug(c.t, "accept", "--data", c.dir(acceptor), inv.Code)
}

// backup runs plug backup --json on the owner and returns the snapshot ID.
func (c *cluster) backup(paths ...string) string {
	c.t.Helper()
	r := mustPlug(c.t, append([]string{"backup", "--data", c.dir(c.names[0]), "--json"}, paths...)...)
	var res struct {
		ID string `json:"snapshot_id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.ID == "" {
		c.t.Fatalf("backup --json: %v %q", err, r.stdout)
	}
	return res.ID
}

type verifyJSON struct {
	OK               bool     `json:"ok"`
	CanLose          int      `json:"can_lose"`
	HeadVersion      uint64   `json:"head_version"`
	HeadPacksUnknown int      `json:"head_packs_unknown"`
	LostPacks        []string `json:"lost_packs"`
	Friends          []struct {
		PeerID  string `json:"peer_id"`
		Name    string `json:"name"`
		Shards  int    `json:"shards"`
		Proved  int    `json:"proved"`
		Missing int    `json:"missing"`
		Corrupt int    `json:"corrupt"`
		Offline bool   `json:"offline"`
	} `json:"friends"`
}

// verify runs plug verify --json on the owner.
func (c *cluster) verify(readData bool) (verifyJSON, int) {
	c.t.Helper()
	args := []string{"verify", "--data", c.dir(c.names[0]), "--json"}
	if readData {
		args = append(args, "--read-data")
	}
	r := plug(c.t, "", args...)
	var v verifyJSON
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		c.t.Fatalf("verify --json: exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	return v, r.code
}

// makeFiles writes n small files in nested folders and a few large ones
// under dir, deterministically from seed.
func makeFiles(t *testing.T, dir string, seed uint64, n int, large ...int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("d%02d/e%02d/f%05d.txt", i%17, i%5, i))
		mustOK(t, os.MkdirAll(filepath.Dir(p), 0o755))
		b := make([]byte, rng.IntN(8000))
		for j := range b {
			b[j] = byte('a' + rng.IntN(26))
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, size := range large {
		var key [32]byte
		key[0], key[1] = byte(seed), byte(i)
		b := make([]byte, size)
		rand.NewChaCha8(key).Read(b)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("large-%d.bin", i)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mustOK(t, os.Symlink("large-0.bin", filepath.Join(dir, "link")))
}

// treeHash hashes every file's path, mode, content and symlink target.
func treeHash(t *testing.T, root string) (string, int) {
	t.Helper()
	h := sha256.New()
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %v\n", rel, fi.Mode())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			tg, _ := os.Readlink(p)
			fmt.Fprintf(h, "-> %s\n", tg)
		case fi.Mode().IsRegular():
			n++
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(h, f)
			_ = f.Close() // opened to read only: closing it loses nothing
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// sameFiles fails unless got holds exactly the tree want.
func sameFiles(t *testing.T, want, got string) {
	t.Helper()
	wh, wn := treeHash(t, want)
	gh, gn := treeHash(t, got)
	if wh != gh {
		t.Fatalf("restored tree %s (%d files) differs from %s (%d files)", got, gn, want, wn)
	}
}

// shardFiles lists the shard files a friend holds for owner.
func shardFiles(t *testing.T, friendDir, ownerID string) []string {
	t.Helper()
	var out []string
	entries, _ := os.ReadDir(filepath.Join(friendDir, "shards", ownerID))
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".obao") && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, filepath.Join(friendDir, "shards", ownerID, e.Name()))
		}
	}
	return out
}
