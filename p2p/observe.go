package p2p

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// observeEvery spaces the dials that get this plug seen over a transport.
const observeEvery = time.Minute

// Hole punching dials, transport by transport, the addresses at which peers
// saw each side, and both sides must offer the same transport. libp2p keeps
// one connection per peer and prefers QUIC, so a plug can end up seen only
// over QUIC while its friend is seen only over TCP (after a move, or when
// its bootstrap peers were given as TCP addresses), and then no punch can
// work. So while a plug is not publicly reachable it keeps, for each
// transport it listens on, a direct connection over that transport to some
// public peer: identify on it tells the plug its address for that transport.

// transportOf names the transport of an address: "tcp", "quic" or "".
func transportOf(a ma.Multiaddr) string {
	tr := ""
	ma.ForEach(a, func(c ma.Component) bool {
		switch c.Protocol().Code {
		case ma.P_TCP:
			tr = "tcp"
		case ma.P_QUIC_V1:
			tr = "quic"
		case ma.P_CIRCUIT, ma.P_WS, ma.P_WSS, ma.P_WEBTRANSPORT, ma.P_WEBRTC_DIRECT:
			tr = ""
			return false
		}
		return true
	})
	return tr
}

// transportGate is the host's connection gater. It refuses nothing, except
// while the node dials a peer to be seen over one transport: then that
// peer's addresses of other transports are not dialed.
type transportGate struct {
	mu  sync.Mutex
	pin map[peer.ID]string
}

var _ connmgr.ConnectionGater = (*transportGate)(nil)

func (g *transportGate) InterceptPeerDial(peer.ID) bool { return true }

func (g *transportGate) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	tr, pinned := g.pin[p]
	return !pinned || transportOf(a) == tr
}

func (g *transportGate) InterceptAccept(network.ConnMultiaddrs) bool { return true }
func (g *transportGate) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return true
}
func (g *transportGate) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}

// dialOver connects to p over transport tr only. libp2p keeps one
// connection per peer, so an existing one is closed first: callers pick a
// peer that is neither a friend nor a relay of this plug (a DHT peer, which
// loses nothing by it).
func (n *Node) dialOver(ctx context.Context, p peer.ID, tr string) error {
	n.gate.mu.Lock()
	if n.gate.pin == nil {
		n.gate.pin = make(map[peer.ID]string)
	}
	n.gate.pin[p] = tr
	n.gate.mu.Unlock()
	defer func() {
		n.gate.mu.Lock()
		delete(n.gate.pin, p)
		n.gate.mu.Unlock()
	}()
	n.closePeer(p)
	n.clearBackoff(p)
	cctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	return n.h.Connect(cctx, peer.AddrInfo{ID: p})
}

// observeTransports makes sure, at most every observeEvery per transport,
// that the plug has a direct connection to a public peer over each
// transport it listens on.
func (l *links) observeTransports(r Reachability) {
	if r.State == "public" || r.State == "lan" {
		return
	}
	want := map[string]bool{}
	for _, a := range l.n.h.Network().ListenAddresses() {
		if tr := transportOf(a); tr != "" {
			want[tr] = true
		}
	}
	have := map[string]bool{}
	for _, c := range l.n.h.Network().Conns() {
		ra := c.RemoteMultiaddr()
		if _, relayed := relayOf(ra); !relayed && manet.IsPublicAddr(ra) {
			have[transportOf(ra)] = true
		}
	}
	now := time.Now()
	relays := l.n.currentRelays()
	for tr := range want {
		if have[tr] {
			continue
		}
		l.mu.Lock()
		due := now.Sub(l.observed[tr]) >= observeEvery
		if due {
			l.observed[tr] = now
		}
		l.mu.Unlock()
		if !due {
			continue
		}
		// A DHT peer, not connected if possible, that has a public address
		// over tr and is neither a friend nor a relay of this plug.
		var pick peer.ID
		for _, p := range l.n.dht.RoutingTable().ListPeers() {
			if l.n.friends.isFriend(p) || slices.Contains(relays, p) || !l.n.hasPublicAddr(p, tr) {
				continue
			}
			pick = p
			if l.n.h.Network().Connectedness(p) != network.Connected {
				break
			}
		}
		if pick == "" {
			continue
		}
		l.n.goRun(func(ctx context.Context) {
			if err := l.n.dialOver(ctx, pick, tr); err != nil {
				l.n.log.Debug("could not be seen over a transport", "transport", tr, "peer", ShortID(pick), "err", err)
				return
			}
			l.n.log.Debug("connected to a DHT peer over a transport to be seen over it", "transport", tr, "peer", ShortID(pick))
			l.punchAgain() // the new address may be what a punch lacked
		})
	}
}

// hasPublicAddr reports whether the peerstore knows a public direct address
// of p over transport tr.
func (n *Node) hasPublicAddr(p peer.ID, tr string) bool {
	for _, a := range n.h.Peerstore().Addrs(p) {
		if _, relayed := relayOf(a); !relayed && transportOf(a) == tr && manet.IsPublicAddr(a) {
			return true
		}
	}
	return false
}
