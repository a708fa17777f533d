package integration

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type redundancyJSON struct {
	Target   int     `json:"target"`
	Auto     bool    `json:"auto"`
	K        int     `json:"k"`
	M        int     `json:"m"`
	Friends  int     `json:"friends"`
	Overhead float64 `json:"overhead"`
	Pending  int     `json:"pending"`
}

func redundancy(t *testing.T, dir string, args ...string) redundancyJSON {
	t.Helper()
	r := mustPlug(t, append([]string{"redundancy", "--data", dir, "--json"}, args...)...)
	var red redundancyJSON
	fromJSON(t, r.stdout, &red)
	return red
}

// onlineFriends counts the owner's friends online now.
func onlineFriends(t *testing.T, dir string) int {
	t.Helper()
	var fs []struct{ Online bool }
	fromJSON(t, mustPlug(t, "friends", "--data", dir, "--json").stdout, &fs)
	n := 0
	for _, f := range fs {
		if f.Online {
			n++
		}
	}
	return n
}

// TestSixFriendsTargetTwo: with six friends the default target is 2; any
// two friends may be gone and a restore is byte-identical; with three gone
// the restore fails cleanly.
func TestSixFriendsTargetTwo(t *testing.T) {
	friends := []string{"b", "c", "d", "e", "f", "g"}
	c := newCluster(t, nil, append([]string{"a"}, friends...)...)
	if red := redundancy(t, c.dir("a")); red != (redundancyJSON{Target: 2, Auto: true, K: 4, M: 2, Friends: 6, Overhead: 1.5}) {
		t.Fatalf("six friends: %+v, want auto target 2, 4+2, overhead 1.5", red)
	}
	src := filepath.Join(c.base, "src")
	makeFiles(t, src, 17, 60, 24<<20)
	id := c.backup(src)
	rng := rand.New(rand.NewPCG(2026, 12))
	seen := map[string]bool{}
	for round := 0; round < 3; round++ {
		var pair []string
		for {
			p := rng.Perm(len(friends))[:2]
			pair = []string{friends[min(p[0], p[1])], friends[max(p[0], p[1])]}
			if !seen[pair[0]+pair[1]] {
				seen[pair[0]+pair[1]] = true
				break
			}
		}
		for _, n := range pair {
			c.kill(n)
		}
		o := filepath.Join(c.base, fmt.Sprintf("out-%d", round))
		mustPlug(t, "restore", "--data", c.dir("a"), id, "--to", o)
		sameFiles(t, src, filepath.Join(o, src))
		for _, n := range pair {
			c.start(n)
		}
		eventually(t, time.Minute, "the restarted friends did not come back online", func() bool { return onlineFriends(t, c.dir("a")) == 6 })
	}
	for _, n := range []string{"b", "d", "f"} {
		c.kill(n)
	}
	r := plug(t, "", "restore", "--data", c.dir("a"), id, "--to", filepath.Join(c.base, "out-3"))
	if r.code != 1 || !strings.Contains(r.stderr, "not enough shards") {
		t.Fatalf("restore with three of six friends gone: exit %d, want 1 and \"not enough shards\"\n%s", r.code, r.stderr)
	}
}

// TestRecodeTarget: the target goes from 1 to 2 with data stored; the
// owner is killed during the re-coding, restarts and finishes it; then
// losing two friends restores byte-identical.
func TestRecodeTarget(t *testing.T) {
	c := newCluster(t, []string{"--backup-settle", "1s"}, "a", "b", "c", "d", "e", "f", "g")
	if red := redundancy(t, c.dir("a"), "set", "1"); red.Target != 1 || red.Auto || red.K != 5 || red.M != 1 || red.Overhead != 1.2 {
		t.Fatalf("set 1: %+v", red)
	}
	src := filepath.Join(c.base, "src")
	makeFiles(t, src, 23, 40, 100<<20, 60<<20)
	id := c.backup(src)
	if r := plug(t, "", "redundancy", "--data", c.dir("a"), "set", "6"); r.code != 1 || !strings.Contains(r.stderr, "pair with 1 more friend") {
		t.Fatalf("a target six friends cannot meet: exit %d\n%s", r.code, r.stderr)
	}
	red := redundancy(t, c.dir("a"), "set", "2")
	if red.Target != 2 || red.K != 4 || red.M != 2 || red.Pending == 0 {
		t.Fatalf("set 2: %+v, want 4+2 with packs to re-code", red)
	}
	eventually(t, 2*time.Minute, "no pack was re-coded", func() bool { return strings.Contains(c.d["a"].logText(), "pack re-coded") })
	c.kill("a")
	if log := c.d["a"].logText(); strings.Contains(log, "re-coding done") {
		t.Fatalf("the re-coding finished before the kill: the test needs more packs\n%s", log)
	}
	c.start("a")
	// Done: every pack in the new shape, the head record published and
	// the old shards released.
	eventually(t, 3*time.Minute, "the re-coding did not finish after the restart", func() bool { return strings.Contains(c.d["a"].logText(), "re-coding done") })
	if log := c.d["a"].logText(); !strings.Contains(log, "re-coding started") {
		t.Fatalf("the restarted plug had nothing left to re-code:\n%s", log)
	}
	if red := redundancy(t, c.dir("a")); red.Pending != 0 {
		t.Fatalf("re-coding done, but %d packs are in the old shape", red.Pending)
	}
	if v, code := c.verify(true); code != 0 || !v.OK || v.CanLose != 2 {
		t.Fatalf("verify --read-data after re-coding: exit %d, %+v", code, v)
	}
	c.kill("c")
	c.kill("f")
	o := filepath.Join(c.base, "out")
	mustPlug(t, "restore", "--data", c.dir("a"), id, "--to", o)
	sameFiles(t, src, filepath.Join(o, src))
}
