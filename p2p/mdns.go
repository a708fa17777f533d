package p2p

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	// lanService is the mDNS service name plugs announce (not libp2p's
	// default _p2p._udp: plugs look for plugs).
	lanService = "_plug._udp"
	// lanAddrTTL is how long an address seen on the LAN is tried.
	lanAddrTTL = 10 * time.Minute
)

// lanDiscovery finds plugs on the same LAN with mDNS, so that friends meet
// with no DHT and no internet. It keeps what it saw for Connect and dials a
// friend it sees that is offline.
type lanDiscovery struct {
	n *Node

	svcMu sync.Mutex // guards svc; never held by HandlePeerFound
	svc   mdns.Service
	mu    sync.Mutex // guards seen
	seen  map[peer.ID]lanSeen
}

type lanSeen struct {
	addrs []ma.Multiaddr
	at    time.Time
}

func newLANDiscovery(n *Node) *lanDiscovery {
	return &lanDiscovery{n: n, seen: make(map[peer.ID]lanSeen)}
}

// run announces this plug and listens for others until ctx ends.
func (d *lanDiscovery) run(ctx context.Context) {
	d.restart()
	<-ctx.Done()
	d.close()
}

// restart announces the plug's current addresses again (after they changed).
func (d *lanDiscovery) restart() {
	d.svcMu.Lock()
	defer d.svcMu.Unlock()
	if d.svc != nil {
		d.closeSvc()
	}
	if d.n.ctx.Err() != nil {
		return
	}
	svc := mdns.NewMdnsService(d.n.h, lanService, d)
	if err := svc.Start(); err != nil {
		d.n.log.Warn("LAN discovery (mDNS) could not start; friends on this network are found through the DHT only", "err", err)
		return
	}
	d.svc = svc
}

func (d *lanDiscovery) close() {
	d.svcMu.Lock()
	defer d.svcMu.Unlock()
	if d.svc != nil {
		d.closeSvc()
	}
}

// HandlePeerFound implements mdns.Notifee.
func (d *lanDiscovery) HandlePeerFound(pi peer.AddrInfo) {
	if pi.ID == d.n.h.ID() || len(pi.Addrs) == 0 {
		return
	}
	d.mu.Lock()
	old, known := d.seen[pi.ID]
	d.seen[pi.ID] = lanSeen{addrs: pi.Addrs, at: time.Now()}
	for p, s := range d.seen {
		if time.Since(s.at) > lanAddrTTL {
			delete(d.seen, p)
		}
	}
	d.mu.Unlock()
	f, friend := d.n.friends.get(pi.ID)
	if !friend {
		return
	}
	if !known || !sameAddrSet(old.addrs, pi.Addrs) {
		d.n.log.Info("found a friend on the LAN (mDNS)", "friend", f.Name, "addrs", addrStrings(pi.Addrs))
	}
	d.n.links.kick()
	if d.n.Link(pi.ID).Kind == LinkOffline {
		d.n.goRun(func(ctx context.Context) {
			cctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			if err := d.n.Connect(cctx, pi.ID); err != nil {
				d.n.log.Debug("friend seen on the LAN, but not reached", "friend", f.Name, "err", err)
			}
		})
	}
}

// addrs returns the addresses mDNS saw p at lately.
func (d *lanDiscovery) addrs(p peer.ID) []ma.Multiaddr {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.seen[p]
	if !ok || time.Since(s.at) > lanAddrTTL {
		return nil
	}
	return s.addrs
}

func sameAddrSet(a, b []ma.Multiaddr) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			if x.Equal(y) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// closeSvc stops the mDNS service. The plug goes on without it (friends are
// found through the DHT), so a failure is only logged.
func (d *lanDiscovery) closeSvc() {
	if err := d.svc.Close(); err != nil {
		d.n.log.Debug("LAN discovery (mDNS) did not stop cleanly", "err", err)
	}
	d.svc = nil
}
