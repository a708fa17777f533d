package p2p

import (
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func TestHouseOf(t *testing.T) {
	for _, tt := range []struct{ addr, want string }{
		{"/ip4/127.0.0.1/tcp/4001", ""},
		{"/ip6/::1/udp/4001/quic-v1", ""},
		{"/ip4/203.0.113.7/tcp/4001", ""}, // TEST-NET-3: not public for go-multiaddr
		{"/ip4/8.8.8.8/tcp/4001", "ip:8.8.8.8"},
		{"/ip4/192.168.1.23/tcp/4001", "lan:192.168.1.0/24"},
		{"/ip6/fd00::1:2/tcp/4001", "lan:fd00::/64"},
		{"/ip4/8.8.8.8/tcp/4001/p2p/12D3KooWLRPJAA5o6Z6wMqDZnEtqZtCjpNjXWf8kWeBVrjQ1Kn4E/p2p-circuit", ""},
	} {
		if got := houseOf(ma.StringCast(tt.addr)); got != tt.want {
			t.Errorf("houseOf(%s) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}
