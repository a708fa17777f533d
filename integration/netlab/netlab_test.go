package netlab

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as the lab's tiny network tools: with
// NETLAB_HELPER set it serves or dials instead of running tests.
func TestMain(m *testing.M) {
	switch os.Getenv("NETLAB_HELPER") {
	case "serve":
		os.Exit(serve(os.Getenv("NETLAB_ADDR")))
	case "dial":
		os.Exit(dial(os.Getenv("NETLAB_ADDR"), os.Getenv("NETLAB_FROM")))
	}
	os.Exit(m.Run())
}

// serve answers each TCP connection with the address it came from.
func serve(addr string) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	for {
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		// The dialer prints what it got, or its error, for the test to
		// check: nothing is left to do here when this fails.
		_, _ = fmt.Fprintf(c, "%s\n", c.RemoteAddr())
		_ = c.Close()
	}
}

// dial connects (from local port from, if given) and prints what the server
// saw, or "error: ...".
func dial(addr, from string) int {
	d := net.Dialer{Timeout: 2 * time.Second}
	if from != "" {
		d.LocalAddr, _ = net.ResolveTCPAddr("tcp", from)
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		fmt.Println("error:", err)
		return 0
	}
	defer func() { _ = c.Close() }() // what was read is printed: closing loses nothing
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		fmt.Println("error:", err)
		return 0
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fmt.Println("error:", err)
		return 0
	}
	fmt.Print(line)
	return 0
}

func startServer(t *testing.T, h *Host, addr string) {
	t.Helper()
	cmd := h.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "NETLAB_HELPER=serve", "NETLAB_ADDR="+addr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Kill fails only when the server ended already; Wait then says it
		// was killed, as it is to be.
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("server on %s did not start: %q %v", h.Name, line, err)
	}
}

// seenAs dials addr from h and returns the source address the server saw.
func seenAs(t *testing.T, h *Host, addr, from string) (netip.AddrPort, error) {
	t.Helper()
	cmd := h.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "NETLAB_HELPER=dial", "NETLAB_ADDR="+addr, "NETLAB_FROM="+from)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dial from %s: %v", h.Name, err)
	}
	s := strings.TrimSpace(string(out))
	if strings.HasPrefix(s, "error:") {
		return netip.AddrPort{}, fmt.Errorf("%s", s)
	}
	return netip.ParseAddrPort(s)
}

// TestLab: the lab's routers behave as home routers: hosts reach the
// internet from their router's address, nothing reaches into a home
// unasked, a port-preserving router keeps the source port and a symmetric
// one does not, and a host that moves is seen from its new router.
func TestLab(t *testing.T) {
	l := New(t)
	pub := l.AddPublic("pub")
	one := l.AddHome("one", HomeOptions{})
	two := l.AddHome("two", HomeOptions{Symmetric: true})
	a := one.AddHost("a")
	b := two.AddHost("b")
	server := netip.AddrPortFrom(pub.Addr(), 9000).String()
	startServer(t, pub, server)
	startServer(t, a, netip.AddrPortFrom(a.Addr(), 9000).String())

	got, err := seenAs(t, a, server, "")
	if err != nil || got.Addr() != one.WAN {
		t.Fatalf("a reaches the internet as %v (%v), want its router %s", got, err, one.WAN)
	}
	got, err = seenAs(t, a, server, netip.AddrPortFrom(a.Addr(), 40000).String())
	if err != nil || got.Port() != 40000 {
		t.Fatalf("through the port-preserving router a is seen at %v (%v), want port 40000", got, err)
	}
	got, err = seenAs(t, b, server, netip.AddrPortFrom(b.Addr(), 40000).String())
	if err != nil || got.Addr() != two.WAN || got.Port() == 40000 {
		t.Fatalf("through the symmetric router b is seen at %v (%v), want %s at another port", got, err, two.WAN)
	}
	if got, err := seenAs(t, pub, netip.AddrPortFrom(a.Addr(), 9000).String(), ""); err == nil {
		t.Fatalf("the internet reached a LAN address directly (seen as %v)", got)
	}
	if got, err := seenAs(t, pub, netip.AddrPortFrom(one.WAN, 9000).String(), ""); err == nil {
		t.Fatalf("the internet reached into a home unasked (seen as %v)", got)
	}

	a.Move(two)
	if !two.LAN.Contains(a.Addr()) {
		t.Fatalf("after the move a is at %s, outside %s", a.Addr(), two.LAN)
	}
	got, err = seenAs(t, a, server, "")
	if err != nil || got.Addr() != two.WAN {
		t.Fatalf("after the move a reaches the internet as %v (%v), want %s", got, err, two.WAN)
	}
	sentBefore := two.WANSent()
	if _, err := seenAs(t, b, server, ""); err != nil {
		t.Fatal(err)
	}
	if two.WANSent() <= sentBefore {
		t.Fatalf("home two's uplink counter did not grow (%d)", sentBefore)
	}
	two.LimitUplink(50) // accepted by the kernel
}
