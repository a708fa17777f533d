package p2p

import (
	"net"
	"net/netip"
	"slices"
	"testing"
)

func TestParseRanges(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
		err  bool
	}{
		{in: "", want: nil},
		{in: "198.18.0.0/15", want: []string{"198.18.0.0/15"}},
		{in: " 10.0.0.0/8 , 100.64.0.0/10,", want: []string{"10.0.0.0/8", "100.64.0.0/10"}},
		{in: "10.1.2.3/8", want: []string{"10.0.0.0/8"}},
		{in: "fd00::/8", want: []string{"fd00::/8"}},
		{in: "10.0.0.0", err: true},
		{in: "ten/8", err: true},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRanges(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("ParseRanges(%q) error %v, want error %v", tt.in, err, tt.err)
			}
			var gs []string
			for _, p := range got {
				gs = append(gs, p.String())
			}
			if !slices.Equal(gs, tt.want) {
				t.Fatalf("ParseRanges(%q) = %v, want %v", tt.in, gs, tt.want)
			}
		})
	}
}

// TestCarve: making a range public removes exactly its addresses from
// go-multiaddr's private and unroutable tables, whether the range equals a
// listed one, lies inside it, or contains it.
func TestCarve(t *testing.T) {
	nets := func(cidrs ...string) []*net.IPNet {
		var out []*net.IPNet
		for _, c := range cidrs {
			_, n, err := net.ParseCIDR(c)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, n)
		}
		return out
	}
	in := func(ns []*net.IPNet, a string) bool {
		ip := net.ParseIP(a)
		return slices.ContainsFunc(ns, func(n *net.IPNet) bool { return n.Contains(ip) })
	}
	table := nets("10.0.0.0/8", "198.18.0.0/15", "192.168.0.0/16", "127.0.0.0/8", "fc00::/7")
	for _, tt := range []struct {
		name     string
		ranges   []string
		public   []string // addresses no longer listed
		unlisted []string // addresses still listed
	}{
		{"the lab's range, exactly", []string{"198.18.0.0/15"}, []string{"198.18.0.1", "198.19.255.254"}, []string{"10.0.0.1", "127.0.0.1", "192.168.1.1"}},
		{"part of a listed range", []string{"10.42.0.0/16"}, []string{"10.42.0.1", "10.42.255.255"}, []string{"10.41.255.255", "10.43.0.0", "10.0.0.1"}},
		{"a range containing a listed one", []string{"192.0.0.0/2"}, []string{"192.168.3.4"}, []string{"127.0.0.1", "10.0.0.1"}},
		{"IPv6", []string{"fd00::/8"}, []string{"fd00::1"}, []string{"fc00::1"}},
		{"nothing", nil, nil, []string{"10.0.0.1", "198.18.0.1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var rs []netip.Prefix
			for _, r := range tt.ranges {
				rs = append(rs, netip.MustParsePrefix(r))
			}
			got := carve(table, rs)
			for _, a := range tt.public {
				if in(got, a) {
					t.Errorf("%s is still listed", a)
				}
			}
			for _, a := range tt.unlisted {
				if !in(got, a) {
					t.Errorf("%s is no longer listed", a)
				}
			}
		})
	}
}

func TestSubtractCoversTheRest(t *testing.T) {
	p, r := netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("10.200.16.0/20")
	parts := subtract(p, r)
	size := func(q netip.Prefix) uint64 { return 1 << (32 - q.Bits()) }
	var total uint64
	for _, q := range parts {
		if q.Overlaps(r) {
			t.Fatalf("part %s overlaps the removed %s", q, r)
		}
		total += size(q)
	}
	if total != size(p)-size(r) {
		t.Fatalf("parts cover %d addresses, want %d", total, size(p)-size(r))
	}
}
