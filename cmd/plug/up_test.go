package main

import (
	"net"
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
