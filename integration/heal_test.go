package integration

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHealsItself: with nobody typing a command, the owner's plug checks
// its friends on a schedule, replaces a friend whose shards went bad and
// one gone longer than the grace, releases the old shards of a friend that
// comes back, and shows when it checked; everything still restores.
func TestHealsItself(t *testing.T) {
	c := newCluster(t, []string{"--check-every", "2s", "--check-period", "4s", "--grace", "5s"}, "a", "b", "c", "d", "e")
	owner := status(t, c.dir("a"))["peer_id"].(string)
	src := filepath.Join(c.base, "src")
	makeFiles(t, src, 31, 40, 12<<20)
	id := c.backup(src)

	// b's disk rots: every shard it holds for a flips a byte.
	bFiles := shardFiles(t, c.dir("b"), owner)
	if len(bFiles) == 0 {
		t.Fatal("b holds no shards")
	}
	for _, p := range bFiles {
		b, err := os.ReadFile(p)
		mustOK(t, err)
		b[len(b)/2] ^= 0x40
		mustOK(t, os.WriteFile(p, b, 0o600))
	}
	bID := status(t, c.dir("b"))["peer_id"].(string)
	eventually(t, 2*time.Minute, "a did not repair b away by itself", func() bool {
		log := c.d["a"].logText()
		return strings.Contains(log, "a friend failed the check of the shards it holds for you") &&
			strings.Contains(log, `msg="repaired by itself"`) && strings.Contains(log, bID)
	})

	var st struct {
		LastCheck     time.Time `json:"last_check"`
		LastCheckAgeS int64     `json:"last_check_age_s"`
		FriendChecks  []struct {
			Name    string    `json:"name"`
			Checked time.Time `json:"checked"`
			Proved  int       `json:"proved"`
			Failed  int       `json:"failed"`
		} `json:"friend_checks"`
	}
	mustOK(t, json.Unmarshal([]byte(mustPlug(t, "status", "--data", c.dir("a"), "--json").stdout), &st))
	if st.LastCheck.IsZero() || st.LastCheckAgeS < 0 || len(st.FriendChecks) == 0 {
		t.Fatalf("status after the checks: %+v", st)
	}

	// c goes away for longer than the grace: its role goes to the others.
	cID := status(t, c.dir("c"))["peer_id"].(string)
	c.kill("c")
	eventually(t, 2*time.Minute, "a did not replace c, gone longer than the grace", func() bool {
		return strings.Count(c.d["a"].logText(), `msg="repaired by itself"`) >= 2 && strings.Contains(c.d["a"].logText(), cID)
	})
	// c comes back: the shards it held for a are no longer a's, and go.
	c.start("c")
	eventually(t, 2*time.Minute, "c still holds the shards of packs moved away from it", func() bool {
		return len(shardFiles(t, c.dir("c"), owner)) == 0
	})
	if v, code := c.verify(true); code != 0 || !v.OK {
		t.Fatalf("verify --read-data after healing: exit %d, %+v", code, v)
	}
	o := filepath.Join(c.base, "out")
	mustPlug(t, "restore", "--data", c.dir("a"), id, "--to", o)
	sameFiles(t, src, filepath.Join(o, src))
}

// TestQuotaShrinkMovesExcess: a friend cuts the room it gives the owner
// below what it holds; at the next check the owner moves the excess to its
// other friends, the friend drops it, and everything still restores.
func TestQuotaShrinkMovesExcess(t *testing.T) {
	c := newCluster(t, []string{"--check-every", "2s"}, "a", "b", "c", "d")
	owner := status(t, c.dir("a"))["peer_id"].(string)
	src := filepath.Join(c.base, "src")
	makeFiles(t, src, 37, 20, 30<<20)
	id := c.backup(src)
	held := func() int64 {
		var n int64
		for _, f := range shardFiles(t, c.dir("b"), owner) {
			fi, err := os.Stat(f)
			if errors.Is(err, fs.ErrNotExist) {
				continue // released since it was listed: the owner is moving them
			}
			mustOK(t, err)
			n += fi.Size()
		}
		return n
	}
	if held() < 4<<20 {
		t.Fatalf("b holds %d bytes: too little for the test", held())
	}
	mustPlug(t, "friends", "--data", c.dir("b"), "quota", "a", "2MiB")
	eventually(t, 2*time.Minute, "a did not move its data off b, which gives 2 MiB now", func() bool { return held() <= 2<<20 })
	if !strings.Contains(c.d["a"].logText(), "gives less room than your data there takes") {
		t.Fatalf("a's log does not say why it moves data:\n%s", c.d["a"].logText())
	}
	o := filepath.Join(c.base, "out")
	mustPlug(t, "restore", "--data", c.dir("a"), id, "--to", o)
	sameFiles(t, src, filepath.Join(o, src))
}
