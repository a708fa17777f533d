package integration

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/plug-net/plug/integration/netlab"
	"github.com/plug-net/plug/p2p"
)

// strangerProbeEnv makes the test binary run strangerProbe instead of the
// tests: a libp2p host with a fresh identity, a friend of no one, asks a
// plug for what only friends get.
const strangerProbeEnv = "PLUG_STRANGER_PROBE"

// probeAnswer is what the stranger got on one protocol.
type probeAnswer struct {
	Proto  string `json:"proto"`
	Answer string `json:"answer,omitempty"`
	Err    string `json:"err,omitempty"`
}

// strangerProbe connects to the plug at addrs (comma-separated full
// multiaddrs of one peer, relayed ones welcome) and opens each /plug/*
// protocol with a request a friend would make, printing one JSON line per
// protocol.
func strangerProbe(addrs string) int {
	out := json.NewEncoder(os.Stdout)
	// say prints one answer; the test reading them fails on an exit code
	// other than 0.
	say := func(a probeAnswer) int {
		if err := out.Encode(a); err != nil {
			fmt.Fprintln(os.Stderr, "stranger probe: print the answer:", err)
			return 1
		}
		return 0
	}
	fail := func(step string, err error) int {
		return say(probeAnswer{Proto: step, Err: err.Error()})
	}
	if err := p2p.SetPublicRanges([]netip.Prefix{netip.MustParsePrefix(labRange)}); err != nil {
		return fail("setup", err)
	}
	var mas []ma.Multiaddr
	for _, s := range strings.Split(addrs, ",") {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return fail("setup", err)
		}
		mas = append(mas, a)
	}
	ais, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil || len(ais) != 1 {
		return fail("setup", fmt.Errorf("addresses of one peer wanted: %v", err))
	}
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/0.0.0.0/tcp/0"), libp2p.EnableRelay(), libp2p.EnableHolePunching())
	if err != nil {
		return fail("setup", err)
	}
	defer func() { _ = h.Close() }() // the probe's own host, and the process ends next
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ctx = network.WithAllowLimitedConn(ctx, "stranger probe")
	if err := h.Connect(ctx, ais[0]); err != nil {
		return fail("connect", err)
	}
	if code := say(probeAnswer{Proto: "connect", Answer: h.Network().ConnsToPeer(ais[0].ID)[0].RemoteMultiaddr().String()}); code != 0 {
		return code
	}
	zero := strings.Repeat("00", 32)
	for _, q := range []struct {
		proto string
		req   any
	}{
		{p2p.ProtoShard, map[string]any{"op": "get", "id": zero}},
		{p2p.ProtoShard, map[string]any{"op": "put", "id": zero, "size": 4}},
		{p2p.ProtoHead, map[string]any{"op": "get"}},
		{p2p.ProtoFeed, map[string]any{"op": "pull", "after": 0}},
		{p2p.ProtoFeed, map[string]any{"op": "media", "hash": zero}},
	} {
		a := probeAnswer{Proto: q.proto}
		if b, err := ask(ctx, h, ais[0].ID, q.proto, q.req); err != nil {
			a.Err = err.Error()
		} else {
			a.Answer = string(b)
		}
		if code := say(a); code != 0 {
			return code
		}
	}
	return 0
}

// ask opens proto on p, sends req as one frame and returns the answer frame.
func ask(ctx context.Context, h interface {
	NewStream(context.Context, peer.ID, ...protocol.ID) (network.Stream, error)
}, p peer.ID, proto string, req any) ([]byte, error) {
	s, err := h.NewStream(ctx, p, protocol.ID(proto))
	if err != nil {
		return nil, err
	}
	defer func() { _ = s.Close() }() // the answer is read or the error returned: closing loses nothing
	if err := s.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		return nil, err
	}
	body, _ := json.Marshal(req)
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	if _, err := s.Write(append(frame, body...)); err != nil {
		return nil, err
	}
	var n [4]byte
	if _, err := io.ReadFull(s, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > 64<<10 {
		return nil, fmt.Errorf("answer of %d bytes", size)
	}
	b := make([]byte, size)
	_, err = io.ReadFull(s, b)
	return b, err
}

// probeAsStranger runs strangerProbe on lab host h against addrs and
// checks that every protocol refused with not_friend and nothing else.
func probeAsStranger(t *testing.T, h *netlab.Host, what string, addrs []string) string {
	t.Helper()
	cmd := h.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), strangerProbeEnv+"="+strings.Join(addrs, ","))
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("stranger probe of %s: %v", what, err)
	}
	var via string
	n := 0
	for _, l := range lines(string(outb)) {
		var a probeAnswer
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("stranger probe of %s printed %q", what, l)
		}
		switch {
		case a.Proto == "connect" && a.Err == "":
			via = a.Answer
		case a.Err != "":
			t.Fatalf("stranger probe of %s: %s: %s", what, a.Proto, a.Err)
		default:
			var r struct {
				OK   bool   `json:"ok"`
				Code string `json:"code"`
			}
			fromJSON(t, a.Answer, &r)
			if r.OK || r.Code != "not_friend" {
				t.Fatalf("%s answered a stranger on %s: %s", what, a.Proto, a.Answer)
			}
			n++
		}
	}
	if n != 5 {
		t.Fatalf("stranger probe of %s: %d refusals, want 5:\n%s", what, n, outb)
	}
	return via
}
