package integration

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	chaosFor  = flag.Duration("chaos.duration", 5*time.Minute, "how long TestChaos runs its random schedule (-short: 1m)")
	chaosSeed = flag.Uint64("chaos.seed", 1, "the seed of TestChaos's schedule: the same seed gives the same schedule")
)

// chaos is the state of TestChaos: six plugs (the owner and five friends),
// the friends down or wiped, the owner's retained snapshots and what each
// must restore to.
type chaos struct {
	*cluster
	rng     *rand.Rand
	src     string
	expect  string          // expect/ID: the tree of snapshot ID, hard links into src's past
	down    map[string]bool // friends killed and not restarted
	wiped   map[string]bool // friends lost for good whose role no repair has given away yet
	snaps   []string        // retained snapshots, oldest first
	counts  map[string]int
	slowest map[string]time.Duration
	done    []string // the actions so far, with the friend they touched
	nfiles  int
	m       int // friends the owner can lose: at most this many are down or wiped at once
	samples []chaosSample
	started time.Time
}

type chaosSample struct {
	at         time.Duration
	rss        int64
	goroutines int
}

// TestChaos is the soak: the owner and five friends, redundancy 2, and a
// seeded random schedule of friend kills, restarts, wipes (a friend lost for
// good, replaced by a new plug), changes to the owner's sources, backups,
// forgets with prune, checks and repairs, while the owner checks and
// repairs by itself too. At no time are more friends down or lost than the
// owner can lose. At the end every retained snapshot restores
// byte-identical, verify --read-data passes, and the owner's goroutine
// count and RSS, sampled every 10 s, stayed flat.
//
// go test ./integration -run TestChaos -chaos.duration 30m -chaos.seed 7
func TestChaos(t *testing.T) {
	// The soak runs for a fixed time, the crash tests for a fixed amount of
	// work: they run side by side (go test -parallel, 2 at a time here),
	// after the other tests, which is how CI stays under 30 minutes.
	t.Parallel()
	length := *chaosFor
	if testing.Short() {
		length = min(length, time.Minute)
	}
	t.Logf("chaos: seed %d for %v (-chaos.seed, -chaos.duration)", *chaosSeed, length)
	c := &chaos{
		cluster: newCluster(t, []string{"--check-every", "30s", "--check-period", "10m", "--grace", "45s"}, "a", "b", "c", "d", "e", "f"),
		rng:     rand.New(rand.NewPCG(*chaosSeed, 0x63686173)),
		down:    map[string]bool{}, wiped: map[string]bool{}, counts: map[string]int{}, slowest: map[string]time.Duration{},
		m: 2,
	}
	c.src = filepath.Join(c.base, "src")
	c.expect = filepath.Join(c.base, "expect")
	mustPlug(t, "redundancy", "--data", c.dir("a"), "set", strconv.Itoa(c.m))
	makeFiles(t, c.src, *chaosSeed, 300, 3<<20)
	c.backupNow()

	// The sampler reads only what the schedule never changes: the owner
	// is never restarted.
	owner, ownerDir := c.d["a"], c.dir("a")
	c.started = time.Now()
	sampled := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			c.sample(owner, ownerDir)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	end := time.Now().Add(length)
	for time.Now().Before(end) && !t.Failed() {
		c.step()
	}
	close(stop)
	<-sampled
	c.finish()
}

// step runs one action chosen at random among those allowed now.
func (c *chaos) step() {
	t := c.t
	t.Helper()
	var up, down []string
	for _, n := range c.names[1:] {
		if c.down[n] {
			down = append(down, n)
		} else {
			up = append(up, n)
		}
	}
	unwell := len(down) + len(c.wiped)
	type action struct {
		name   string
		weight int
		ok     bool
		run    func()
	}
	actions := []action{
		{"change sources", 25, true, c.changeSources},
		{"backup", 20, true, c.backupNow},
		{"kill a friend", 8, unwell < c.m && len(up) > 0, func() { c.killFriend(up) }},
		{"restart a friend", 10, len(down) > 0, func() { c.restartFriend(down) }},
		{"wipe a friend", 3, unwell < c.m && len(up) > 0, func() { c.wipeFriend(up) }},
		{"forget and prune", 5, len(c.snaps) > 3, c.forget},
		{"check", 8, true, c.check},
		{"repair", 6, true, c.repair},
	}
	total := 0
	for _, a := range actions {
		if a.ok {
			total += a.weight
		}
	}
	pick := c.rng.IntN(total)
	for _, a := range actions {
		if !a.ok {
			continue
		}
		if pick < a.weight {
			c.counts[a.name]++
			c.done = append(c.done, a.name)
			t0 := time.Now()
			a.run()
			c.slowest[a.name] = max(c.slowest[a.name], time.Since(t0))
			return
		}
		pick -= a.weight
	}
}

// changeSources adds, replaces and deletes files of the owner's sources.
// A file is never changed in place (a new one is renamed over it), so the
// hard links of the snapshots' expected trees keep their contents.
func (c *chaos) changeSources() {
	t := c.t
	var files []string
	mustOK(t, filepath.WalkDir(c.src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	}))
	for range 1 + c.rng.IntN(40) {
		c.nfiles++
		p := filepath.Join(c.src, fmt.Sprintf("new%02d", c.rng.IntN(20)), fmt.Sprintf("n%05d", c.nfiles))
		size := c.rng.IntN(16 << 10)
		if c.rng.IntN(20) == 0 {
			size = 1<<20 + c.rng.IntN(3<<20)
		}
		c.writeFile(p, size)
	}
	for range c.rng.IntN(10) {
		if len(files) > 0 {
			c.writeFile(files[c.rng.IntN(len(files))], c.rng.IntN(32<<10))
		}
	}
	for range c.rng.IntN(15) {
		if len(files) > 100 {
			i := c.rng.IntN(len(files))
			if err := os.Remove(files[i]); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
	}
}

// fail ends the test with what the schedule did last and the owner's
// latest log lines.
func (c *chaos) fail(format string, args ...any) {
	c.t.Helper()
	log := strings.Split(c.d["a"].logText(), "\n")
	log = log[max(0, len(log)-80):]
	c.t.Fatalf("chaos (seed %d, %v in, after %s): %s\nthe owner's last log lines:\n%s", *chaosSeed, time.Since(c.started).Round(time.Second),
		strings.Join(c.done[max(0, len(c.done)-8):], ", "), fmt.Sprintf(format, args...), strings.Join(log, "\n"))
}

// writeFile puts size random bytes at p, through a new file renamed there.
func (c *chaos) writeFile(p string, size int) {
	t := c.t
	mustOK(t, os.MkdirAll(filepath.Dir(p), 0o755))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(c.rng.Uint32())
	}
	tmp := p + ".new"
	mustOK(t, os.WriteFile(tmp, b, 0o644))
	mustOK(t, os.Rename(tmp, p))
}

// run runs a plug command that must succeed, again while the owner is
// busy with a job of its own (its checks and repairs).
func (c *chaos) run(args ...string) result {
	t := c.t
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		r := plug(t, "", args...)
		if r.code == 0 {
			return r
		}
		if !strings.Contains(r.stderr, "busy") || time.Now().After(deadline) {
			c.fail("plug %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		time.Sleep(time.Second) // the owner's own job holds the lock; it ends by itself
	}
}

// backupNow backs the sources up and keeps what the snapshot must restore
// to, as hard links.
func (c *chaos) backupNow() {
	t := c.t
	r := c.run("backup", "--data", c.dir("a"), "--json", c.src)
	var res struct {
		ID string `json:"snapshot_id"`
	}
	fromJSON(t, r.stdout, &res)
	dst := filepath.Join(c.expect, res.ID)
	mustOK(t, filepath.WalkDir(c.src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(c.src, p)
		q := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(q, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			tg, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(tg, q)
		default:
			return os.Link(p, q)
		}
	}))
	c.snaps = append(c.snaps, res.ID)
}

func (c *chaos) killFriend(up []string) {
	n := up[c.rng.IntN(len(up))]
	c.done[len(c.done)-1] += " " + n
	c.kill(n)
	c.down[n] = true
}

func (c *chaos) restartFriend(down []string) {
	n := down[c.rng.IntN(len(down))]
	c.done[len(c.done)-1] += " " + n
	c.start(n)
	delete(c.down, n)
}

// wipeFriend loses a friend for good: its plug and data are gone, the owner
// removes it, and a new plug takes its place as a new friend.
func (c *chaos) wipeFriend(up []string) {
	t := c.t
	n := up[c.rng.IntN(len(up))]
	c.done[len(c.done)-1] += " " + n
	c.kill(n)
	mustOK(t, os.RemoveAll(c.dir(n)))
	c.run("friends", "--data", c.dir("a"), "remove", n)
	c.start(n)
	c.pair("a", n)
	c.wiped[n] = true
}

// forget keeps the last three snapshots and prunes.
func (c *chaos) forget() {
	t := c.t
	c.run("forget", "--data", c.dir("a"), "--keep-last", "3", "--prune")
	var snaps []struct {
		ID string `json:"id"`
	}
	fromJSON(t, c.run("snapshots", "--data", c.dir("a"), "--json").stdout, &snaps)
	keep := map[string]bool{}
	for _, s := range snaps {
		keep[s.ID] = true
	}
	c.snaps = slices.DeleteFunc(c.snaps, func(id string) bool {
		if keep[id] {
			return false
		}
		mustOK(t, os.RemoveAll(filepath.Join(c.expect, id)))
		return true
	})
	if len(c.snaps) != len(snaps) {
		t.Fatalf("after forget the owner lists %d snapshots, the test kept %d: %v", len(snaps), len(c.snaps), c.snaps)
	}
}

// check runs verify: redundancy may be below target while friends are
// down, but nothing is ever lost.
func (c *chaos) check() {
	v, code := c.verify(false)
	if len(v.LostPacks) > 0 || v.HeadPacksUnknown > 0 || code > 1 {
		c.fail("verify exit %d with %d friends down and %d lost: %+v", code, len(c.down), len(c.wiped), v)
	}
}

// repair gives the role of the friends lost (and gone past --grace) to
// others; a repair that finished clears the wiped friends.
func (c *chaos) repair() {
	t := c.t
	r := plug(t, "", "repair", "--data", c.dir("a"), "--json")
	var rep struct {
		Failed []string `json:"failed"`
	}
	if r.code == 0 {
		fromJSON(t, r.stdout, &rep)
		if len(rep.Failed) == 0 {
			clear(c.wiped)
		}
		return
	}
	// With friends down there may be too few to place a rebuilt shard
	// on: that is said, and nothing is lost.
	if !strings.Contains(r.stderr, "busy") && !strings.Contains(r.stderr, "could not be repaired") {
		c.fail("repair: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// sample reads the owner's RSS (from /proc) and goroutine count (from its
// profile endpoint).
func (c *chaos) sample(d *daemon, dir string) {
	s := chaosSample{at: time.Since(c.started)}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				s.rss = kb << 10
			}
		}
	}
	s.goroutines = goroutines(c.t, dir)
	c.samples = append(c.samples, s)
}

// goroutines asks a plug's API for its goroutine count (-1 if it cannot).
func goroutines(t *testing.T, dir string) int {
	addr, err1 := os.ReadFile(filepath.Join(dir, "api.addr"))
	tok, err2 := os.ReadFile(filepath.Join(dir, "api.token"))
	if err1 != nil || err2 != nil {
		return -1
	}
	req, err := http.NewRequestWithContext(t.Context(), "GET", "http://"+strings.TrimSpace(string(addr))+"/debug/pprof/goroutine?debug=1", nil)
	if err != nil {
		return -1
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer func() { _ = resp.Body.Close() }() // read only
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return -1
	}
	first, _, _ := strings.Cut(buf.String(), "\n")
	n, err := strconv.Atoi(strings.TrimPrefix(first, "goroutine profile: total "))
	if err != nil {
		return -1
	}
	return n
}

// finish brings every friend back, repairs, and checks: verify --read-data,
// every retained snapshot restores byte-identical, and the owner's
// goroutines and RSS stayed flat.
func (c *chaos) finish() {
	t := c.t
	for n := range c.down {
		c.start(n)
	}
	clear(c.down)
	eventually(t, 2*time.Minute, "not every friend came back online", func() bool { return onlineFriends(t, c.dir("a")) == len(c.names)-1 })
	c.run("repair", "--data", c.dir("a"))
	v, code := c.verify(true)
	if code != 0 || !v.OK || v.CanLose != c.m {
		t.Fatalf("chaos (seed %d): at the end, verify --read-data exit %d: %+v", *chaosSeed, code, v)
	}
	for _, id := range c.snaps {
		o := filepath.Join(c.base, "out", id)
		c.run("restore", "--data", c.dir("a"), id, "--to", o)
		sameFiles(t, filepath.Join(c.expect, id), filepath.Join(o, c.src))
	}
	c.sample(c.d["a"], c.dir("a"))

	var b strings.Builder
	names := make([]string, 0, len(c.counts))
	for n := range c.counts {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(&b, "%s %d (slowest %v), ", n, c.counts[n], c.slowest[n].Round(100*time.Millisecond))
	}
	t.Logf("chaos (seed %d): %s%d snapshots retained, all restored byte-identical", *chaosSeed, b.String(), len(c.snaps))
	b.Reset()
	for _, s := range c.samples {
		fmt.Fprintf(&b, "\n  %6s  rss %4d MiB  goroutines %4d", s.at.Round(time.Second), s.rss>>20, s.goroutines)
	}
	t.Logf("the owner over time:%s", b.String())
	c.flat()
}

// flat fails when the owner's goroutines or RSS at the end are well above
// what they were once it was warm (after the first quarter of the run).
func (c *chaos) flat() {
	t := c.t
	if len(c.samples) < 4 {
		return
	}
	warm := c.samples[len(c.samples)/4]
	last := c.samples[len(c.samples)-1]
	var peak chaosSample
	for _, s := range c.samples[len(c.samples)/4:] {
		peak.rss = max(peak.rss, s.rss)
		peak.goroutines = max(peak.goroutines, s.goroutines)
	}
	if warm.goroutines <= 0 || last.goroutines <= 0 {
		t.Fatalf("could not read the owner's goroutine count: %+v", c.samples)
	}
	if last.goroutines > warm.goroutines*3/2+50 {
		t.Errorf("the owner's goroutines grew from %d (warm) to %d at the end", warm.goroutines, last.goroutines)
	}
	if last.rss > 2*warm.rss+(64<<20) {
		t.Errorf("the owner's RSS grew from %d MiB (warm) to %d MiB at the end", warm.rss>>20, last.rss>>20)
	}
	t.Logf("owner: goroutines %d warm, %d peak, %d at the end; RSS %d MiB warm, %d MiB peak, %d MiB at the end",
		warm.goroutines, peak.goroutines, last.goroutines, warm.rss>>20, peak.rss>>20, last.rss>>20)
}
