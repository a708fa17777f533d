// Package netlab builds small internets in Linux network namespaces for
// tests: public hosts on an "internet" bridge, and homes, each a LAN behind
// its own router that masquerades the way home routers do (and, as they do,
// drops unsolicited traffic to itself). A test runs real plug processes on
// the hosts with Host.Command.
//
// Addresses come only from the benchmarking range 198.18.0.0/15: the
// internet is 198.18.0.0/24 (public hosts from .11, routers from .101), home
// N's LAN is 198.19.N.0/24 (router .1, hosts from .11). Everything the lab
// makes is removed by Close, which New registers with t.Cleanup, also when
// the test fails.
//
// It needs root, iproute2 (ip, tc) and nftables (nft). Where they are
// missing New skips the test, saying why, unless PLUG_REQUIRE_NETLAB is set
// (as CI does): then it fails.
package netlab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Require is the environment variable that turns a skip into a failure.
const Require = "PLUG_REQUIRE_NETLAB"

// nsPrefix starts the name of every namespace the lab makes.
const nsPrefix = "plab"

var labSeq atomic.Int64

// Lab is one small internet.
type Lab struct {
	t    testing.TB
	name string // namespace name prefix: plab<pid>-<seq>-
	inet string // the internet's namespace (a bridge)

	mu     sync.Mutex
	spaces []string // namespaces made, in order
	public int      // public hosts made
	homes  []*Home
	links  int // veth pairs made (names inside the internet's namespace)
	closed bool
}

// Home is a LAN behind a router.
type Home struct {
	lab    *Lab
	Name   string
	Index  int          // N in 198.19.N.0/24
	Router string       // the router's namespace
	WAN    netip.Addr   // the router's address on the internet
	LAN    netip.Prefix // the home network
	hosts  int
}

// Host is a machine: a namespace with one network interface, eth0.
type Host struct {
	lab  *Lab
	Name string
	NS   string // its namespace
	mu   sync.Mutex
	addr netip.Addr
	home *Home // nil for a public host
	port string
}

// HomeOptions shape a home's router.
type HomeOptions struct {
	// Symmetric makes the router's NAT symmetric (masquerade
	// random,fully-random): each connection leaves from a new random port,
	// and hole punching cannot work.
	Symmetric bool
}

// Available reports why a lab cannot be built here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root to make network namespaces")
	}
	for _, tool := range []string{"ip", "nft", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("needs %s (apt-get install iproute2 nftables): %v", tool, err)
		}
	}
	probe := fmt.Sprintf("%s%d-probe", nsPrefix, os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		return fmt.Errorf("cannot make a network namespace: %v: %s", err, bytes.TrimSpace(out))
	}
	if out, err := exec.Command("ip", "netns", "del", probe).CombinedOutput(); err != nil {
		return fmt.Errorf("cannot delete a network namespace: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// New builds an empty internet, or skips the test (fails it when
// PLUG_REQUIRE_NETLAB is set) where a lab cannot be built.
func New(t testing.TB) *Lab {
	t.Helper()
	if emu := os.Getenv("PLUG_TEST_EXEC"); emu != "" {
		// .ci/arm runs the unit tests for ARM under qemu user-mode
		// emulation, which passes neither a thread's entry into a network
		// namespace nor the kernel's netlink answers through whole. The
		// lab's tests are about networks, not processors: the native run
		// has them.
		t.Skipf("network lab: not under emulation (%s); the native test run has it", emu)
	}
	if err := Available(); err != nil {
		if os.Getenv(Require) != "" {
			t.Fatalf("network lab required (%s is set) but unavailable: %v", Require, err)
		}
		t.Skipf("network lab unavailable: %v (CI sets %s=1 and runs it)", err, Require)
	}
	removeStale()
	l := &Lab{t: t, name: fmt.Sprintf("%s%d-%d-", nsPrefix, os.Getpid(), labSeq.Add(1))}
	t.Cleanup(l.Close)
	l.inet = l.addNS("inet")
	l.run("ip", "-n", l.inet, "link", "add", "br0", "type", "bridge")
	l.run("ip", "-n", l.inet, "link", "set", "br0", "up")
	return l
}

// removeStale deletes the namespaces of labs whose test process died.
func removeStale() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, nsPrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue
		}
		killAll(name)
		// Best-effort: a namespace left is tried again by the next lab.
		_ = exec.Command("ip", "netns", "del", name).Run()
	}
}

// run runs a command the lab needs; a failure fails the test.
func (l *Lab) run(name string, args ...string) string {
	l.t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("netlab: %s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out)
}

// nft loads a ruleset into a namespace.
func (l *Lab) nft(ns, rules string) {
	l.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("netlab: nft in %s: %v: %s\n%s", ns, err, bytes.TrimSpace(out), rules)
	}
}

// addNS makes a namespace with loopback up and IPv6 off (every address in
// the lab is IPv4 from 198.18.0.0/15).
func (l *Lab) addNS(suffix string) string {
	l.t.Helper()
	name := l.name + suffix
	l.run("ip", "netns", "add", name)
	l.mu.Lock()
	l.spaces = append(l.spaces, name)
	l.mu.Unlock()
	l.run("ip", "-n", name, "link", "set", "lo", "up")
	l.run("ip", "netns", "exec", name, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	return name
}

// plug connects namespace ns (interface ifname, address a/24) to the
// internet bridge.
func (l *Lab) plugIn(ns, ifname string, a netip.Addr) {
	l.t.Helper()
	l.mu.Lock()
	l.links++
	port := fmt.Sprintf("p%d", l.links)
	l.mu.Unlock()
	l.run("ip", "link", "add", ifname, "netns", ns, "type", "veth", "peer", "name", port, "netns", l.inet)
	l.run("ip", "-n", l.inet, "link", "set", port, "master", "br0", "up")
	l.run("ip", "-n", ns, "addr", "add", a.String()+"/24", "dev", ifname)
	l.run("ip", "-n", ns, "link", "set", ifname, "up")
}

// AddPublic adds a host on the internet with a public address.
func (l *Lab) AddPublic(name string) *Host {
	l.t.Helper()
	l.mu.Lock()
	l.public++
	i := l.public
	l.mu.Unlock()
	if i > 89 {
		l.t.Fatal("netlab: at most 89 public hosts")
	}
	h := &Host{lab: l, Name: name, NS: l.addNS(fmt.Sprintf("pub%d", i)), addr: netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i)})}
	l.plugIn(h.NS, "eth0", h.addr)
	return h
}

// routerRules are a home router's: masquerade out of wan0, let in only what
// answers traffic from the LAN, and drop unsolicited traffic to the router
// itself, as home routers do (without that, the router's answer to an early
// hole-punch packet spoils the NAT mapping; see NETLAB.md).
func routerRules(symmetric bool) string {
	masq := "masquerade"
	if symmetric {
		masq = "masquerade random,fully-random"
	}
	return `table ip nat {
	chain post {
		type nat hook postrouting priority 100; policy accept;
		oifname "wan0" ` + masq + `
	}
}
table ip filter {
	chain lanonly {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		iifname "lan0" accept
	}
	chain router {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		iifname "lan0" accept
		iifname "lo" accept
	}
}
`
}

// AddHome adds a home: a router on the internet and an empty LAN behind it.
func (l *Lab) AddHome(name string, o HomeOptions) *Home {
	l.t.Helper()
	l.mu.Lock()
	i := len(l.homes) + 1
	l.mu.Unlock()
	if i > 150 {
		l.t.Fatal("netlab: at most 150 homes")
	}
	hm := &Home{
		lab:    l,
		Name:   name,
		Index:  i,
		Router: l.addNS(fmt.Sprintf("r%d", i)),
		WAN:    netip.AddrFrom4([4]byte{198, 18, 0, byte(100 + i)}),
		LAN:    netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(i), 0}), 24),
	}
	l.plugIn(hm.Router, "wan0", hm.WAN)
	l.run("ip", "-n", hm.Router, "link", "add", "lan0", "type", "bridge")
	l.run("ip", "-n", hm.Router, "addr", "add", hm.gateway().String()+"/24", "dev", "lan0")
	l.run("ip", "-n", hm.Router, "link", "set", "lan0", "up")
	l.run("ip", "netns", "exec", hm.Router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	l.nft(hm.Router, routerRules(o.Symmetric))
	l.mu.Lock()
	l.homes = append(l.homes, hm)
	l.mu.Unlock()
	return hm
}

func (hm *Home) gateway() netip.Addr { return hm.LAN.Addr().Next() }

// attach connects host h (already a namespace) to this home's LAN with a
// fresh address.
func (hm *Home) attach(h *Host) {
	t := hm.lab.t
	t.Helper()
	l := hm.lab
	l.mu.Lock()
	hm.hosts++
	j := hm.hosts
	l.mu.Unlock()
	if j > 200 {
		t.Fatal("netlab: at most 200 hosts per home")
	}
	a := hm.LAN.Addr().As4()
	a[3] = byte(10 + j)
	addr := netip.AddrFrom4(a)
	port := fmt.Sprintf("h%d", j)
	l.run("ip", "link", "add", "eth0", "netns", h.NS, "type", "veth", "peer", "name", port, "netns", hm.Router)
	l.run("ip", "-n", hm.Router, "link", "set", port, "master", "lan0", "up")
	l.run("ip", "-n", h.NS, "addr", "add", addr.String()+"/24", "dev", "eth0")
	l.run("ip", "-n", h.NS, "link", "set", "eth0", "up")
	l.run("ip", "-n", h.NS, "route", "add", "default", "via", hm.gateway().String())
	h.mu.Lock()
	h.addr, h.home, h.port = addr, hm, port
	h.mu.Unlock()
}

// AddHost adds a machine to the home's LAN.
func (hm *Home) AddHost(name string) *Host {
	hm.lab.t.Helper()
	l := hm.lab
	l.mu.Lock()
	n := 0
	for _, s := range l.spaces {
		if strings.HasPrefix(s, l.name+"h") {
			n++
		}
	}
	l.mu.Unlock()
	h := &Host{lab: l, Name: name, NS: l.addNS(fmt.Sprintf("h%d", n+1))}
	hm.attach(h)
	return h
}

// Move takes host h off its home's LAN and onto home to's, with a new
// address, as when a plug is carried to another house: processes on it keep
// running and find their old address gone.
func (h *Host) Move(to *Home) {
	l := h.lab
	l.t.Helper()
	h.mu.Lock()
	from, port := h.home, h.port
	h.mu.Unlock()
	if from == nil {
		l.t.Fatal("netlab: only a host in a home can move")
	}
	l.run("ip", "-n", from.Router, "link", "del", port) // its peer, eth0, goes too
	to.attach(h)
}

// LimitUplink caps what the home sends to the internet at mbit Mbit/s with a
// token bucket filter on the router's WAN side (this kernel has tbf, not
// netem).
func (hm *Home) LimitUplink(mbit int) {
	hm.lab.t.Helper()
	hm.lab.run("ip", "netns", "exec", hm.Router, "tc", "qdisc", "replace", "dev", "wan0", "root",
		"tbf", "rate", fmt.Sprintf("%dmbit", mbit), "burst", "64kb", "latency", "50ms")
}

// WANSent returns the bytes the router has sent to the internet.
func (hm *Home) WANSent() int64 {
	hm.lab.t.Helper()
	out := hm.lab.run("ip", "-n", hm.Router, "-s", "-j", "link", "show", "dev", "wan0")
	var links []struct {
		Stats64 struct {
			TX struct {
				Bytes int64 `json:"bytes"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		hm.lab.t.Fatalf("netlab: read wan0 counters of %s: %v: %s", hm.Name, err, out)
	}
	return links[0].Stats64.TX.Bytes
}

// Addr returns the host's address now.
func (h *Host) Addr() netip.Addr {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.addr
}

// Home returns the home the host is in now, nil for a public host.
func (h *Host) Home() *Home {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.home
}

// Command returns cmd to run name with args on the host (ip netns exec; the
// process becomes name itself, so signals reach it).
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Close kills every process left in the lab's namespaces and removes them.
func (l *Lab) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	spaces := l.spaces
	l.mu.Unlock()
	for i := len(spaces) - 1; i >= 0; i-- {
		killAll(spaces[i])
		if out, err := exec.Command("ip", "netns", "del", spaces[i]).CombinedOutput(); err != nil {
			l.t.Errorf("netlab: remove namespace %s: %v: %s", spaces[i], err, bytes.TrimSpace(out))
		}
	}
}

// killAll kills the processes in namespace ns.
func killAll(ns string) {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL) // fails only for a process that ended meanwhile
		}
	}
}

// Do runs fn in this test process on a thread that has entered the host's
// network namespace: sockets fn opens (a dial, a listener, a multicast
// socket) belong to the host and keep working after Do returns, from any
// goroutine. The thread goes back to the test's namespace afterwards; if it
// cannot, it is left locked and ends with its goroutine, as the runtime
// does with such threads.
func (h *Host) Do(fn func() error) error {
	target, err := os.Open("/run/netns/" + h.NS)
	if err != nil {
		return fmt.Errorf("netlab: open namespace of %s: %w", h.Name, err)
	}
	defer func() { _ = target.Close() }() // read only
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netlab: open this thread's namespace: %w", err)
			return
		}
		defer func() { _ = home.Close() }() // read only
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netlab: enter the namespace of %s: %w", h.Name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("netlab: leave the namespace of %s: %w", h.Name, err))
			return // the thread stays locked and ends with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// DialContext dials from the host: a net.Dialer's DialContext whose
// connection belongs to the host's namespace.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}
