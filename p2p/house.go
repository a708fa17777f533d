package p2p

import (
	"net/netip"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// House names where a friend's plug lives, as this plug sees it: plugs
// seen at one public address, or directly on one local network, share a
// house — a fire or a power cut takes them together. It is
// "ip:ADDRESS" for a public address (its router's, for a plug behind
// one), "lan:PREFIX" for a plug reached directly at a private address,
// and "" when nothing tells (a plug on this machine, or only ever reached
// through a relay).
//
// The live connection speaks first; without one, the addresses the friend
// was last seen with.
func (n *Node) House(p peer.ID) string {
	for _, c := range n.h.Network().ConnsToPeer(p) {
		if c.IsClosed() {
			continue
		}
		if h := houseOf(c.RemoteMultiaddr()); h != "" {
			return h
		}
	}
	f, ok := n.friends.get(p)
	if !ok {
		return ""
	}
	for _, s := range f.Addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		// Remembered private addresses say nothing: every home has them.
		if _, relayed := relayOf(a); !relayed && manet.IsPublicAddr(a) {
			if h := houseOf(a); h != "" {
				return h
			}
		}
	}
	return ""
}

// houseOf is the house of a direct address: its public IP, or its local
// network for a private one; "" for a relay circuit or loopback.
func houseOf(a ma.Multiaddr) string {
	if _, relayed := relayOf(a); relayed {
		return ""
	}
	ip, err := manet.ToIP(a)
	if err != nil {
		return ""
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return ""
	}
	addr = addr.Unmap()
	switch {
	case addr.IsLoopback() || addr.IsUnspecified():
		return ""
	case manet.IsPublicAddr(a):
		return "ip:" + addr.String()
	case !manet.IsPrivateAddr(a):
		return "" // reserved for documentation or benchmarks, unless --public-ranges
	case addr.Is4():
		return "lan:" + netip.PrefixFrom(addr, 24).Masked().String()
	default:
		return "lan:" + netip.PrefixFrom(addr, 64).Masked().String()
	}
}
