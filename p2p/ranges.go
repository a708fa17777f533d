package p2p

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	manet "github.com/multiformats/go-multiaddr/net"
)

// ParseRanges reads a comma-separated list of CIDR prefixes (the syntax of
// --public-ranges and PLUG_PUBLIC_RANGES). Empty items are ignored.
func ParseRanges(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address range like 198.18.0.0/15: %v", item, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

var publicRanges struct {
	sync.Mutex
	set []netip.Prefix
}

// SetPublicRanges makes the plug treat addresses in ranges as public
// internet addresses. go-multiaddr, which every part of libp2p asks, calls
// each private and reserved range unroutable (10/8, 100.64/10, 198.18/15,
// ...), so a plug on a community network built on such a range, or in a test
// network, would never believe it has a public address: AutoNAT, AutoRelay
// and hole punching never start. The setting is for the whole process (it
// edits go-multiaddr's tables) and must be made once, before any host
// exists; a second call with other ranges is refused.
//
// A well-known range that contains a given one, or lies inside it, is cut
// so that exactly the given addresses change class; 127.0.0.0/8 and ::1 stay
// loopback whatever is given.
func SetPublicRanges(ranges []netip.Prefix) error {
	publicRanges.Lock()
	defer publicRanges.Unlock()
	if publicRanges.set != nil {
		if samePrefixes(publicRanges.set, ranges) {
			return nil
		}
		return fmt.Errorf("public ranges are already set to %v", publicRanges.set)
	}
	for _, r := range ranges {
		if r.Addr().IsLoopback() || r.Contains(netip.MustParseAddr("127.0.0.1")) || r.Contains(netip.IPv6Loopback()) {
			return fmt.Errorf("public range %s covers the loopback addresses, which are never public", r)
		}
	}
	publicRanges.set = append([]netip.Prefix{}, ranges...)
	if len(ranges) == 0 {
		return nil
	}
	manet.Private4 = carve(manet.Private4, ranges)
	manet.Private6 = carve(manet.Private6, ranges)
	manet.Unroutable4 = carve(manet.Unroutable4, ranges)
	manet.Unroutable6 = carve(manet.Unroutable6, ranges)
	return nil
}

// PublicRanges returns what SetPublicRanges set.
func PublicRanges() []netip.Prefix {
	publicRanges.Lock()
	defer publicRanges.Unlock()
	return append([]netip.Prefix{}, publicRanges.set...)
}

func samePrefixes(a, b []netip.Prefix) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// carve returns nets without the addresses of ranges: a net inside a range
// is dropped, a net containing a range is split into the parts around it.
func carve(nets []*net.IPNet, ranges []netip.Prefix) []*net.IPNet {
	var out []*net.IPNet
	for _, n := range nets {
		p, ok := prefixOf(n)
		if !ok {
			out = append(out, n)
			continue
		}
		parts := []netip.Prefix{p}
		for _, r := range ranges {
			var next []netip.Prefix
			for _, q := range parts {
				next = append(next, subtract(q, r)...)
			}
			parts = next
		}
		for _, q := range parts {
			out = append(out, &net.IPNet{IP: net.IP(q.Addr().AsSlice()), Mask: net.CIDRMask(q.Bits(), q.Addr().BitLen())})
		}
	}
	return out
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if a.Is4In6() && bits == 32 {
		a = a.Unmap()
	}
	if bits != a.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones).Masked(), true
}

// subtract returns the prefixes that cover p without r.
func subtract(p, r netip.Prefix) []netip.Prefix {
	if p.Addr().BitLen() != r.Addr().BitLen() || !p.Overlaps(r) {
		return []netip.Prefix{p}
	}
	if r.Bits() <= p.Bits() {
		return nil // p lies inside r
	}
	// r lies inside p: split p in halves until r is one of them.
	var out []netip.Prefix
	for p.Bits() < r.Bits() {
		lo, hi := halves(p)
		if lo.Overlaps(r) {
			out = append(out, hi)
			p = lo
		} else {
			out = append(out, lo)
			p = hi
		}
	}
	return out
}

// halves splits p into its two halves.
func halves(p netip.Prefix) (netip.Prefix, netip.Prefix) {
	bits := p.Bits() + 1
	lo := netip.PrefixFrom(p.Addr(), bits)
	b := p.Addr().AsSlice()
	i := (bits - 1) / 8
	b[i] |= 0x80 >> ((bits - 1) % 8)
	a, _ := netip.AddrFromSlice(b)
	return lo, netip.PrefixFrom(a, bits)
}
