package main

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
)

// TestAPIDefaultsToLoopback: the web UI listens on 127.0.0.1 unless told
// otherwise, and a non-loopback address needs --allow-remote-ui.
func TestAPIDefaultsToLoopback(t *testing.T) {
	host, _, err := net.SplitHostPort(defaultAPI)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		t.Fatalf("--api defaults to %s, want a loopback address", defaultAPI)
	}
	for _, tt := range []struct {
		addr  string
		allow bool
		ok    bool
	}{
		{defaultAPI, false, true},
		{"localhost:0", false, true},
		{"[::1]:7777", false, true},
		{"0.0.0.0:7777", false, false},
		{"192.0.2.1:7777", false, false},
		{"0.0.0.0:7777", true, true},
		{"example.org:7777", true, false},
	} {
		if err := checkAPIAddr(tt.addr, tt.allow); (err == nil) != tt.ok {
			t.Errorf("checkAPIAddr(%q, allow %v) = %v, want ok %v", tt.addr, tt.allow, err, tt.ok)
		}
	}
}

// TestParseBootstrap: a bootstrap peer named at its TCP and its QUIC address
// is one peer with both addresses; "none" stands alone; a bad address is
// refused with what was wrong.
func TestParseBootstrap(t *testing.T) {
	const a = "12D3KooWEg46pSTacfs6iNUoG317SQQ6xYbXag4bUMsaZA22Lepz"
	const b = "12D3KooWGJ6Y3Fp9mkpnH1ECKztQGvxsQA2yRwDtygx8tNCPR7bv"
	peers, none, err := parseBootstrap([]string{
		"/ip4/198.18.0.11/tcp/7778/p2p/" + a,
		"/ip4/198.18.0.12/tcp/7778/p2p/" + b,
		"/ip4/198.18.0.11/udp/7778/quic-v1/p2p/" + a,
	})
	if err != nil || none {
		t.Fatalf("parseBootstrap: %v, none %v", err, none)
	}
	var got []string
	for _, p := range peers {
		got = append(got, fmt.Sprintf("%s %v", p.ID, p.Addrs))
	}
	want := []string{
		a + " [/ip4/198.18.0.11/tcp/7778 /ip4/198.18.0.11/udp/7778/quic-v1]",
		b + " [/ip4/198.18.0.12/tcp/7778]",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("peers:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if peers, none, err := parseBootstrap([]string{"none"}); err != nil || !none || peers != nil {
		t.Fatalf("none: %v %v %v", peers, none, err)
	}
	for _, bad := range [][]string{{"none", "/ip4/198.18.0.11/tcp/7778/p2p/" + a}, {"/ip4/198.18.0.11/tcp/7778"}} {
		if _, _, err := parseBootstrap(bad); err == nil || !strings.Contains(err.Error(), "--bootstrap") {
			t.Errorf("parseBootstrap(%q): %v, want an error naming --bootstrap", bad, err)
		}
	}
}
