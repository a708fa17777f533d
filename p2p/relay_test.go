package p2p

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	relayclient "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	ma "github.com/multiformats/go-multiaddr"
	gproto "google.golang.org/protobuf/proto"
)

func loopbackHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.EnableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("close the host: %v", err)
		}
	})
	return h
}

// TestRelayServesFriendsWithoutLimits: a plug's relay gives a friend a slot
// through which anyone reaches that friend without limits (a backup fits),
// and gives a stranger a slot through which connections are limited (enough
// for a handshake), as kubo's relay does.
func TestRelayServesFriendsWithoutLimits(t *testing.T) {
	r := newTestPlug(t, "relay", nil)
	friend, stranger, dialer := loopbackHost(t), loopbackHost(t), loopbackHost(t)
	if _, err := r.node.friends.update(friend.ID(), true, func(f *Friend) { f.Name = "fay" }); err != nil {
		t.Fatal(err)
	}
	if err := r.node.relay.start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ri := r.info()
	for _, h := range []host.Host{friend, stranger, dialer} {
		if err := h.Connect(ctx, ri); err != nil {
			t.Fatal(err)
		}
	}
	for name, h := range map[string]host.Host{"friend": friend, "stranger": stranger} {
		if _, err := relayclient.Reserve(ctx, h, ri); err != nil {
			t.Fatalf("%s reserves a slot: %v", name, err)
		}
	}
	for _, tt := range []struct {
		name    string
		target  host.Host
		limited bool
	}{
		{"to the relay's friend", friend, false},
		{"to a stranger", stranger, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			circuit := ma.StringCast(fmt.Sprintf("%s/p2p/%s/p2p-circuit", ri.Addrs[0], ri.ID))
			err := dialer.Connect(network.WithAllowLimitedConn(ctx, "test"), peer.AddrInfo{ID: tt.target.ID(), Addrs: []ma.Multiaddr{circuit}})
			if err != nil {
				t.Fatalf("dial through the relay: %v", err)
			}
			conns := dialer.Network().ConnsToPeer(tt.target.ID())
			if len(conns) != 1 {
				t.Fatalf("%d connections, want 1", len(conns))
			}
			if _, relayed := relayOf(conns[0].RemoteMultiaddr()); !relayed {
				t.Fatalf("connection at %s is not relayed", conns[0].RemoteMultiaddr())
			}
			if got := conns[0].Stat().Limited; got != tt.limited {
				t.Fatalf("relayed connection limited = %v, want %v", got, tt.limited)
			}
		})
	}
	r.node.relay.stop()
	if r.node.relay.running() {
		t.Fatal("relay still running after stop")
	}
}

func hopFrame(t testing.TB, msg *pbv2.HopMessage) []byte {
	b, err := gproto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.AppendUvarint(nil, uint64(len(b))), b...)
}

func TestReadHop(t *testing.T) {
	reserve := hopFrame(t, &pbv2.HopMessage{Type: pbv2.HopMessage_RESERVE.Enum()})
	raw, msg, err := readHop(bytes.NewReader(append(append([]byte{}, reserve...), "rest"...)))
	if err != nil || msg.GetType() != pbv2.HopMessage_RESERVE || !bytes.Equal(raw, reserve) {
		t.Fatalf("readHop = %x %v %v, want the reserve frame", raw, msg, err)
	}
	for _, tt := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"length past the limit", binary.AppendUvarint(nil, hopMessageMax+1)},
		{"overlong varint", bytes.Repeat([]byte{0xff}, 8)},
		{"truncated body", reserve[:len(reserve)-1]},
		{"not protobuf", append(binary.AppendUvarint(nil, 3), 0xff, 0xff, 0xff)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := readHop(bytes.NewReader(tt.in)); err == nil {
				t.Fatal("readHop accepted it")
			}
		})
	}
}

// FuzzReadHop: the relay reads a stranger's first message before choosing
// which relay serves it; whatever arrives, it reads no more than one
// message of at most hopMessageMax bytes and hands those bytes on unchanged.
func FuzzReadHop(f *testing.F) {
	f.Add(hopFrame(f, &pbv2.HopMessage{Type: pbv2.HopMessage_RESERVE.Enum()}))
	f.Add(hopFrame(f, &pbv2.HopMessage{Type: pbv2.HopMessage_CONNECT.Enum(), Peer: &pbv2.Peer{Id: []byte("not a peer id")}}))
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, in []byte) {
		raw, msg, err := readHop(bytes.NewReader(in))
		if err != nil {
			return
		}
		if msg == nil || len(raw) > binary.MaxVarintLen32+hopMessageMax || !bytes.HasPrefix(in, raw) {
			t.Fatalf("readHop returned %d bytes that are not a prefix of the input", len(raw))
		}
	})
}

func TestRelayOfAndTransportOf(t *testing.T) {
	const id = "12D3KooWG9a6a6L5qmJMCVShCkVLsYz2TgtMW3szL6BzBVW3xbfJ"
	for _, tt := range []struct {
		addr    string
		relayed bool
		tr      string
	}{
		{"/ip4/198.18.0.11/tcp/7778", false, "tcp"},
		{"/ip4/198.18.0.11/udp/7778/quic-v1", false, "quic"},
		{"/ip4/198.18.0.11/tcp/7778/p2p/" + id + "/p2p-circuit", true, ""},
		{"/ip4/198.18.0.11/udp/7778/quic-v1/p2p/" + id + "/p2p-circuit/p2p/" + id, true, ""},
		{"/ip4/198.18.0.11/tcp/443/ws", false, ""},
		{"/p2p-circuit", false, ""},
	} {
		a := ma.StringCast(tt.addr)
		relay, relayed := relayOf(a)
		if relayed != tt.relayed || (relayed && relay.String() != id) {
			t.Errorf("relayOf(%s) = %s %v, want relayed %v", tt.addr, relay, relayed, tt.relayed)
		}
		if got := transportOf(a); got != tt.tr {
			t.Errorf("transportOf(%s) = %q, want %q", tt.addr, got, tt.tr)
		}
	}
}
