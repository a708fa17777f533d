// Package lanname gives the plug a name on its local network: it answers
// multicast DNS (RFC 6762) questions for NAME.local with the plug's address,
// so that a browser on the LAN opens https://NAME.local:PORT/ with no DNS
// server and no typed IP address. The answering is pion's mDNS
// (github.com/pion/mdns/v2); this package picks the name and keeps the
// sockets.
package lanname

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/mdns/v2"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Label turns a plug's name ("Alice's Plug") into a DNS label
// ("alices-plug"): lower-case letters, digits and hyphens, at most 63
// bytes, never empty ("plug" when nothing usable is left).
func Label(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		case r == ' ', r == '-', r == '_', r == '.':
			dash = true
		}
		if b.Len() >= 63 {
			break
		}
	}
	l := strings.Trim(b.String(), "-")
	if len(l) > 63 {
		l = strings.TrimRight(l[:63], "-")
	}
	if l == "" {
		return "plug"
	}
	return l
}

// Host returns the .local name of a plug's name: Label(name) + ".local".
func Host(name string) string { return Label(name) + ".local" }

// Responder answers mDNS questions for its names on every interface.
type Responder struct {
	mu     sync.Mutex
	names  []string // NAME.local, the newest first
	conn   *mdns.Conn
	ifaces string // the interfaces and addresses conn serves
	stop   chan struct{}
	done   chan struct{}
}

// watchEvery is how often the responder looks for new interfaces and
// addresses: a board whose network comes up after the plug, or that moved
// to another network, answers there within that time.
var watchEvery = 30 * time.Second

// Start answers for Host(name) until Close.
func Start(name string) (*Responder, error) {
	r := &Responder{names: []string{Host(name)}, stop: make(chan struct{}), done: make(chan struct{})}
	r.ifaces = interfaces()
	conn, err := serve(r.names)
	if err != nil {
		return nil, err
	}
	r.conn = conn
	go r.watch()
	return r, nil
}

// watch serves again when the machine's interfaces or addresses change:
// the sockets join the multicast group on the interfaces there are when
// they open.
func (r *Responder) watch() {
	defer close(r.done)
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		now := interfaces()
		r.mu.Lock()
		if now != r.ifaces && r.conn != nil {
			if conn, err := serve(r.names); err == nil {
				_ = r.conn.Close() // replaced
				r.conn = conn
				r.ifaces = now
			}
		}
		r.mu.Unlock()
	}
}

// interfaces describes the interfaces that are up and their addresses.
func interfaces() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 {
			continue
		}
		fmt.Fprintf(&b, "%d %s:", i.Index, i.Name)
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			b.WriteString(" " + a.String())
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Names returns the names it answers for, the newest first.
func (r *Responder) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.names)
}

// Add answers for Host(name) too, first among the names: a plug renamed
// keeps answering its old name until it restarts, so that a page opened at
// the old name goes on working.
func (r *Responder) Add(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := Host(name)
	names := append([]string{h}, slices.DeleteFunc(slices.Clone(r.names), func(n string) bool { return n == h })...)
	conn, err := serve(names)
	if err != nil {
		return err
	}
	if r.conn != nil {
		_ = r.conn.Close() // the new one answers now; closing the old frees its sockets
	}
	r.conn, r.names, r.ifaces = conn, names, interfaces()
	return nil
}

// Close stops answering.
func (r *Responder) Close() error {
	r.mu.Lock()
	if r.conn == nil {
		r.mu.Unlock()
		return nil
	}
	err := r.conn.Close()
	r.conn = nil
	r.mu.Unlock()
	close(r.stop)
	<-r.done
	return err
}

// quiet keeps pion's own logging out of the plug's log.
var quiet = func() logging.LoggerFactory {
	f := logging.NewDefaultLoggerFactory()
	f.DefaultLogLevel = logging.LogLevelDisabled
	return f
}()

// serve opens the mDNS sockets (IPv4, and IPv6 where the machine has it)
// and answers for names (none: a connection that only asks). Other mDNS responders on the machine (Avahi,
// libp2p's peer discovery) share the port.
func serve(names []string) (*mdns.Conn, error) {
	var (
		p4   *ipv4.PacketConn
		p6   *ipv6.PacketConn
		errs []error
	)
	if a, err := net.ResolveUDPAddr("udp4", mdns.DefaultAddressIPv4); err == nil {
		if c, err := net.ListenUDP("udp4", a); err == nil {
			p4 = ipv4.NewPacketConn(c)
		} else {
			errs = append(errs, err)
		}
	}
	if a, err := net.ResolveUDPAddr("udp6", mdns.DefaultAddressIPv6); err == nil {
		if c, err := net.ListenUDP("udp6", a); err == nil {
			p6 = ipv6.NewPacketConn(c)
		} else {
			errs = append(errs, err)
		}
	}
	if p4 == nil && p6 == nil {
		return nil, fmt.Errorf("lanname: open the mDNS port 5353: %w", errors.Join(errs...))
	}
	conn, err := mdns.Server(p4, p6, &mdns.Config{LocalNames: names, LoggerFactory: quiet})
	if err != nil {
		if p4 != nil {
			_ = p4.Close() // the error that matters is returned
		}
		if p6 != nil {
			_ = p6.Close()
		}
		return nil, fmt.Errorf("lanname: start answering mDNS: %w", err)
	}
	return conn, nil
}

// Resolve asks the local network, over mDNS, for the address of name (a
// NAME.local host name), as a browser's resolver does.
func Resolve(ctx context.Context, name string) (netip.Addr, error) {
	conn, err := serve(nil)
	if err != nil {
		return netip.Addr{}, err
	}
	defer func() { _ = conn.Close() }() // a question only
	_, addr, err := conn.QueryAddr(ctx, name)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("lanname: no answer for %s on this network: %w", name, err)
	}
	return addr.Unmap(), nil
}
