package integration

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var idleFor = flag.Duration("idle.duration", 5*time.Minute, "how long TestIdleCPU measures the idle owner's CPU (-short: 1m)")

// The pocket budget (issue 13): what a plug may cost the small board it runs
// on.
const (
	// budgetMemory is the memory limit the owner backs up and restores
	// under: half of a 512 MiB board, page cache included.
	budgetMemory = 256 << 20
	// budgetIdleCPU is the share of one core an idle plug may use.
	budgetIdleCPU = 0.005
	// idleWarmUp is how long the owner is left to settle once its backup
	// finished and its friends are online, before the idle window opens:
	// the head record's publication and the friends' usage questions, the
	// first DHT provides of the rendezvous keys and the routing table's
	// first refresh all follow a backup or a start within seconds. It is
	// part of the measurement's design, not a wait for something.
	idleWarmUp = 30 * time.Second
)

// TestMemoryLimit: the owner plug backs up 1 GiB of random data (a few
// large files and some small ones) to three friends and restores it
// byte-identical while it runs inside a memory cgroup limited to 256 MiB,
// page cache included, without being killed. It logs the cgroup's peak,
// the peak of its anonymous memory, the plug's own VmHWM and how long the
// backup and the restore took.
//
// The cgroup is made by the test (cgroup v2 when the memory controller is
// there, else the v1 memory hierarchy), holds only the owner's process from
// its first instruction, and is removed at the end. It needs root and a
// memory cgroup: without them the test skips, unless PLUG_REQUIRE_ROOT is
// set (CI), where it fails. With -short it moves 256 MiB, as much as the
// limit.
func TestMemoryLimit(t *testing.T) {
	t.Parallel() // fixed work, mostly I/O: beside the crash tests and the soak, see TestChaos
	cg := newMemCgroup(t, budgetMemory)
	total := int64(1 << 30)
	sizes := []int64{384 << 20, 256 << 20, 256 << 20, 127<<20 + 12345}
	if testing.Short() {
		total = 256 << 20
		sizes = []int64{96 << 20, 64 << 20, 64 << 20, 31<<20 + 12345}
	}

	// The cluster of newCluster, but with the owner started inside the
	// cgroup, so that all its life is counted there.
	c := &cluster{t: t, base: t.TempDir(), names: []string{"a", "b", "c", "d"}, d: map[string]*daemon{}, args: map[string][]string{}}
	c.start("z", "--bootstrap", "none", "--name", "zed")
	c.boot = bootstrapAddr(t, c.dir("z"))
	c.args["a"] = []string{"--bootstrap", c.boot, "--name", "a"}
	c.d["a"] = cg.startPlug(t, c.dir("a"), c.args["a"]...)
	for _, n := range c.names[1:] {
		c.start(n, "--bootstrap", c.boot, "--name", n)
		c.pair("a", n)
	}
	owner := c.d["a"]
	pid := owner.cmd.Process.Pid
	if !slices.Contains(cg.pids(t), pid) || len(cg.pids(t)) != 1 {
		t.Fatalf("the cgroup %s holds %v, want only the owner's process %d", cg.dir, cg.pids(t), pid)
	}

	src := filepath.Join(c.base, "src")
	want := writeRandomTree(t, src, 2026, sizes, total)
	sampler := cg.sampleAnon()

	start := time.Now()
	r := runCommand(t, plugCommand(nil, "backup", "--data", c.dir("a"), "--json", src), "", 15*time.Minute)
	backupTime := time.Since(start)
	if r.code != 0 {
		cg.failKilled(t, owner)
		t.Fatalf("backup of %d MiB under a %d MiB limit: exit %d\n%s\n%s", total>>20, budgetMemory>>20, r.code, r.stderr, owner.logText())
	}
	var snap struct {
		ID       string `json:"snapshot_id"`
		NewBytes int64  `json:"new_bytes"`
	}
	fromJSON(t, r.stdout, &snap)
	if snap.NewBytes < total {
		t.Fatalf("the backup stored %d new bytes of %d bytes of random data", snap.NewBytes, total)
	}

	out := filepath.Join(c.base, "out")
	start = time.Now()
	r = runCommand(t, plugCommand(nil, "restore", "--data", c.dir("a"), snap.ID, "--to", out), "", 15*time.Minute)
	restoreTime := time.Since(start)
	if r.code != 0 {
		cg.failKilled(t, owner)
		t.Fatalf("restore of %d MiB under a %d MiB limit: exit %d\n%s\n%s", total>>20, budgetMemory>>20, r.code, r.stderr, owner.logText())
	}
	anonPeak := sampler.stop()
	hwm := procStatus(t, pid, "VmHWM")
	cg.failKilled(t, owner)
	peak, peakName := cg.peak(t)

	got := hashFiles(t, filepath.Join(out, src))
	if len(got) != len(want) {
		t.Fatalf("restored %d files, want %d", len(got), len(want))
	}
	for name, h := range want {
		if got[name] != h {
			t.Fatalf("restored %s differs from the original (sha256 %s, want %s)", name, got[name], h)
		}
	}
	peakText := fmt.Sprintf("%d MiB (%s, page cache included)", peak>>20, peakName)
	if peak < 0 {
		peakText = fmt.Sprintf("not kept by this kernel (no %s)", peakName)
	}
	t.Logf("owner peak under %d MiB limit (cgroup %s): cgroup peak %s, anonymous peak %d MiB (sampled), VmHWM %d MiB; %d MiB backed up in %.1fs, restored in %.1fs",
		budgetMemory>>20, cg.version(), peakText, anonPeak>>20, hwm>>20, total>>20, backupTime.Seconds(), restoreTime.Seconds())
}

// TestIdleCPU: an owner with two friends and one finished backup, left
// alone, uses at most 0.5% of one core. The window opens once the backup
// has finished, both friends are online and idleWarmUp has passed; it lasts
// -idle.duration (5 minutes, 1 with -short), and the CPU time is the
// owner's utime and stime from /proc. The friends and the bootstrap plug
// run all along. The owner's RSS at the end is logged.
func TestIdleCPU(t *testing.T) {
	t.Parallel() // it mostly waits: beside the other long tests, see TestChaos
	length := *idleFor
	if testing.Short() {
		length = min(length, time.Minute)
	}
	c := newCluster(t, nil, "a", "b", "c")
	src := filepath.Join(c.base, "src")
	makeFiles(t, src, 31, 200, 6<<20)
	c.backup(src)
	eventually(t, time.Minute, "the owner's two friends were not both online after its backup", func() bool {
		return onlineFriends(t, c.dir("a")) == 2
	})
	owner := c.d["a"]
	pid := owner.cmd.Process.Pid
	hz := clockTicks()
	select {
	case <-time.After(idleWarmUp):
	case <-owner.done:
		t.Fatalf("the owner exited while it settled: %v\n%s", owner.err, owner.logText())
	}

	t.Logf("idle: measuring the owner's CPU for %v after a %v warm-up (-idle.duration)", length, idleWarmUp)
	startTicks, start := cpuTicks(t, pid), time.Now()
	prevTicks, prev := startTicks, start
	var minutes []string
	end := start.Add(length)
	for now := start; now.Before(end); now = time.Now() {
		select {
		case <-time.After(min(time.Minute, end.Sub(now))):
		case <-owner.done:
			t.Fatalf("the owner exited while idle: %v\n%s", owner.err, owner.logText())
		}
		ticks, at := cpuTicks(t, pid), time.Now()
		minutes = append(minutes, fmt.Sprintf("%.2f%%", cpuShare(ticks-prevTicks, hz, at.Sub(prev))*100))
		prevTicks, prev = ticks, at
	}
	share := cpuShare(prevTicks-startTicks, hz, prev.Sub(start))
	rss := procStatus(t, pid, "VmRSS")
	t.Logf("idle owner: %.3f%% of one core over %v (%d ticks of 1/%d s; per minute: %s), RSS %d MiB at the end",
		share*100, prev.Sub(start).Round(time.Second), prevTicks-startTicks, hz, strings.Join(minutes, " "), rss>>20)
	if share > budgetIdleCPU {
		t.Errorf("the idle owner used %.3f%% of one core, more than %.1f%% (its /debug/pprof/profile or /debug/pprof/trace over an idle minute says what wakes it)", share*100, budgetIdleCPU*100)
	}
}

// memCgroup is a memory cgroup made for one test, limited and removed when
// the test ends.
type memCgroup struct {
	dir string
	v2  bool
}

// needRoot says why a test cannot run here: it skips, or fails when
// PLUG_REQUIRE_ROOT is set (CI), where it must run.
func needRoot(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("PLUG_REQUIRE_ROOT") != "" {
		t.Fatal(msg + " (PLUG_REQUIRE_ROOT is set)")
	}
	t.Skip(msg)
}

// newMemCgroup makes a memory cgroup limited to limit bytes, swap
// included: under cgroup v2 when its memory controller is available, else
// in the v1 memory hierarchy.
func newMemCgroup(t *testing.T, limit int64) *memCgroup {
	t.Helper()
	if os.Geteuid() != 0 {
		needRoot(t, "this test runs the owner in a memory cgroup it makes and needs root")
	}
	v2, v1, v2err := findMemCgroupParents()
	var cg *memCgroup
	switch {
	case v2 != "":
		dir, err := os.MkdirTemp(v2, "plug-test-")
		mustOK(t, err)
		cg = &memCgroup{dir: dir, v2: true}
		t.Cleanup(func() { cg.remove(t) })
		cg.write(t, "memory.max", limit)
		if cg.has("memory.swap.max") {
			cg.write(t, "memory.swap.max", 0)
		}
	case v1 != "":
		dir, err := os.MkdirTemp(v1, "plug-test-")
		mustOK(t, err)
		cg = &memCgroup{dir: dir}
		t.Cleanup(func() { cg.remove(t) })
		cg.write(t, "memory.limit_in_bytes", limit)
		if cg.has("memory.memsw.limit_in_bytes") { // so that swap does not hide the limit
			cg.write(t, "memory.memsw.limit_in_bytes", limit)
		}
	default:
		needRoot(t, "this test needs a memory cgroup and found none: no cgroup v2 with the memory controller (%v), no cgroup v1 memory hierarchy", v2err)
	}
	return cg
}

// findMemCgroupParents finds where a memory cgroup can be made: in cgroup
// v2, the deepest cgroup above the test's own that has the memory
// controller in its cgroup.subtree_control (else the root of the mount,
// where it is enabled); in cgroup v1, the root of the memory hierarchy.
func findMemCgroupParents() (v2, v1 string, v2err error) {
	own := ""
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if p, ok := strings.CutPrefix(l, "0::"); ok {
				own = p
			}
		}
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", "", err
	}
	v2err = errors.New("no cgroup2 mount")
	for _, l := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 {
			continue
		}
		root, mnt, fstype := f[3], f[4], g[0]
		switch {
		case fstype == "cgroup2" && v2 == "":
			v2, v2err = memV2Parent(mnt, root, own)
		case fstype == "cgroup" && v1 == "" && slices.Contains(strings.Split(g[2], ","), "memory"):
			if _, err := os.Stat(filepath.Join(mnt, "memory.limit_in_bytes")); err == nil {
				v1 = mnt
			}
		}
	}
	return v2, v1, v2err
}

// memV2Parent finds, in the cgroup2 mount at mnt (of the hierarchy's root
// at root), a cgroup whose children may use the memory controller: the
// deepest above the cgroup own that already has it, else mnt once it is
// enabled there.
func memV2Parent(mnt, root, own string) (string, error) {
	if ctl, err := os.ReadFile(filepath.Join(mnt, "cgroup.controllers")); err != nil || !slices.Contains(strings.Fields(string(ctl)), "memory") {
		return "", fmt.Errorf("the cgroup2 mount at %s has no memory controller", mnt)
	}
	rel := "" // own's path under the mount: none when own is not under the mount's root
	if root == "/" || own == root || strings.HasPrefix(own, root+"/") {
		rel = strings.TrimPrefix(own, root)
	}
	for dir := filepath.Join(mnt, rel); strings.HasPrefix(dir, mnt); dir = filepath.Dir(dir) {
		if sub, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control")); err == nil && slices.Contains(strings.Fields(string(sub)), "memory") {
			return dir, nil
		}
		if dir == mnt {
			break
		}
	}
	if err := os.WriteFile(filepath.Join(mnt, "cgroup.subtree_control"), []byte("+memory"), 0); err != nil {
		return "", fmt.Errorf("enable the memory controller for the children of %s: %w (a cgroup that holds processes cannot)", mnt, err)
	}
	return mnt, nil
}

func (cg *memCgroup) version() string {
	if cg.v2 {
		return "v2 " + cg.dir
	}
	return "v1 " + cg.dir
}

func (cg *memCgroup) has(name string) bool {
	_, err := os.Stat(filepath.Join(cg.dir, name))
	return err == nil
}

func (cg *memCgroup) write(t *testing.T, name string, v int64) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(cg.dir, name), []byte(strconv.FormatInt(v, 10)), 0); err != nil {
		t.Fatalf("set %s of the cgroup %s: %v", name, cg.dir, err)
	}
}

// read returns the number in the file name, or the value of key in it
// ("key N" lines) when key is not empty; -1 when there is none.
func (cg *memCgroup) read(name, key string) int64 {
	b, err := os.ReadFile(filepath.Join(cg.dir, name))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if key == "" && len(f) == 1 || len(f) == 2 && f[0] == key {
			if n, err := strconv.ParseInt(f[len(f)-1], 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}

// pids lists the processes in the cgroup.
func (cg *memCgroup) pids(t *testing.T) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cg.dir, "cgroup.procs"))
	mustOK(t, err)
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// startPlug starts "plug up" on dir as startPlug does, but inside the
// cgroup from its first instruction: a shell puts itself in and then
// becomes the plug.
func (cg *memCgroup) startPlug(t *testing.T, dir string, args ...string) *daemon {
	t.Helper()
	up := plugCommand(nil, append([]string{"up", "--data", dir, "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0"}, args...)...)
	cmd := exec.Command("sh", append([]string{"-c", `echo $$ > "$0" && exec "$@"`, filepath.Join(cg.dir, "cgroup.procs")}, up.Args...)...)
	cmd.Env = up.Env
	return startDaemon(t, cmd, dir, 60*time.Second, func() bool {
		if _, err := os.Stat(filepath.Join(dir, "api.addr")); err != nil {
			return false
		}
		return plug(t, "", "status", "--data", dir, "--json").code == 0
	})
}

// oomKills counts the processes the kernel's OOM killer ended in the
// cgroup.
func (cg *memCgroup) oomKills() int64 {
	if cg.v2 {
		return cg.read("memory.events", "oom_kill")
	}
	return cg.read("memory.oom_control", "oom_kill")
}

// failKilled fails the test when the OOM killer ended a process in the
// cgroup or the daemon is no longer running.
func (cg *memCgroup) failKilled(t *testing.T, d *daemon) {
	t.Helper()
	if n := cg.oomKills(); n > 0 {
		t.Fatalf("the owner was killed by the OOM killer under the %d MiB limit (oom_kill %d in %s; cgroup peak %d MiB)", budgetMemory>>20, n, cg.dir, max(cg.read("memory.peak", ""), cg.read("memory.max_usage_in_bytes", ""))>>20)
	}
	select {
	case <-d.done:
		t.Fatalf("the owner exited under the %d MiB limit: %v\n%s", budgetMemory>>20, d.err, d.logText())
	default:
	}
}

// peak returns the cgroup's peak usage (page cache included) and the file
// it comes from, or -1 when the kernel keeps none.
func (cg *memCgroup) peak(t *testing.T) (int64, string) {
	t.Helper()
	name := "memory.max_usage_in_bytes"
	if cg.v2 {
		name = "memory.peak" // since Linux 5.19
	}
	return cg.read(name, ""), name
}

// anonSampler follows the peak of the cgroup's anonymous memory (the
// processes' own, without page cache), which neither cgroup version keeps.
type anonSampler struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	peak  int64
}

func (cg *memCgroup) sampleAnon() *anonSampler {
	key := "rss" // v1: anonymous and swap cache
	if cg.v2 {
		key = "anon"
	}
	s := &anonSampler{stopc: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			s.peak = max(s.peak, cg.read("memory.stat", key))
			select {
			case <-s.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *anonSampler) stop() int64 {
	close(s.stopc)
	s.wg.Wait()
	return s.peak
}

// remove ends what still runs in the cgroup and removes it.
func (cg *memCgroup) remove(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pids := cg.pids(t)
		err := syscall.Rmdir(cg.dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("remove the cgroup %s (holding %v): %v", cg.dir, pids, err)
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL) // it may have ended meanwhile
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeRandomTree writes files of the given sizes of random bytes under
// dir and small ones up to total bytes in all, streaming, and returns each
// file's SHA-256 by its path under dir.
func writeRandomTree(t *testing.T, dir string, seed uint64, sizes []int64, total int64) map[string]string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	left := total
	for _, s := range sizes {
		left -= s
	}
	for i := 0; left > 0; i++ { // small files fill what the large leave
		s := min(left, 1+rng.Int64N(256<<10))
		sizes = append(sizes, s)
		left -= s
	}
	out := map[string]string{}
	buf := make([]byte, 1<<20)
	for i, size := range sizes {
		name := fmt.Sprintf("large-%d.bin", i)
		if i >= 4 {
			name = fmt.Sprintf("small/s%02d/f%04d.bin", i%16, i)
		}
		p := filepath.Join(dir, name)
		mustOK(t, os.MkdirAll(filepath.Dir(p), 0o755))
		var key [32]byte
		key[0], key[1], key[2] = byte(seed), byte(i), byte(i>>8)
		gen := rand.NewChaCha8(key)
		f, err := os.Create(p)
		mustOK(t, err)
		h := sha256.New()
		w := bufio.NewWriterSize(f, 1<<20)
		for n := size; n > 0; n -= int64(len(buf)) {
			b := buf[:min(int64(len(buf)), n)]
			_, _ = gen.Read(b) // ChaCha8's Read never fails
			h.Write(b)
			if _, err := w.Write(b); err != nil {
				t.Fatal(err)
			}
		}
		mustOK(t, w.Flush())
		mustOK(t, f.Close())
		out[name] = hex.EncodeToString(h.Sum(nil))
	}
	return out
}

// hashFiles returns the SHA-256 of every regular file under dir by its path
// under dir, reading each as a stream.
func hashFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = bufio.NewReaderSize(f, 1<<20).WriteTo(h)
		_ = f.Close() // opened to read only: closing it loses nothing
		out[rel] = hex.EncodeToString(h.Sum(nil))
		return err
	})
	mustOK(t, err)
	return out
}

// procStatus returns a size (in bytes) from /proc/PID/status, such as
// VmHWM or VmRSS.
func procStatus(t *testing.T, pid int, key string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	mustOK(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == key+":" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			mustOK(t, err)
			return kb << 10
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, key)
	return 0
}

// cpuTicks returns the CPU time process pid used so far, user and system,
// in clock ticks (/proc/PID/stat).
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	mustOK(t, err)
	// The command's name, in parentheses, may hold spaces: the fields
	// after it start with the state (field 3); utime and stime are 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	mustOK(t, errors.Join(err1, err2))
	return utime + stime
}

// clockTicks is the kernel's clock ticks per second for /proc times
// (getconf CLK_TCK; 100 when it cannot say).
func clockTicks() int64 {
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}

// cpuShare is the share of one core that ticks of CPU time are over d.
func cpuShare(ticks, hz int64, d time.Duration) float64 {
	return float64(ticks) / float64(hz) / d.Seconds()
}
