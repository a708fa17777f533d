package p2p

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// Defaults of HostConfig.
const (
	// DefaultPort is the TCP and UDP (QUIC) port a plug listens on.
	DefaultPort = 7778
	// DefaultMemoryLimit is what the resource manager lets libp2p use in all:
	// a quarter of a 512 MiB device.
	DefaultMemoryLimit = 128 << 20
	// DefaultFDLimit is the file descriptors libp2p may hold.
	DefaultFDLimit = 512
	// streamWindow bounds yamux's per-stream receive window (go-libp2p
	// defaults to 16 MiB). 4 MiB keeps a loopback or LAN shard stream at full
	// speed while a slow friend cannot make us buffer more than that.
	streamWindow = 4 << 20
)

// DefaultListenAddrs are the addresses a plug listens on when none are given:
// TCP and QUIC on DefaultPort, IPv4 and IPv6.
func DefaultListenAddrs() []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, s := range []string{
		fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", DefaultPort),
		fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", DefaultPort),
		fmt.Sprintf("/ip6/::/tcp/%d", DefaultPort),
		fmt.Sprintf("/ip6/::/udp/%d/quic-v1", DefaultPort),
	} {
		out = append(out, ma.StringCast(s))
	}
	return out
}

// HostConfig configures the libp2p host. The zero value of each field but Key
// means its default.
type HostConfig struct {
	Key         p2pcrypto.PrivKey // the plug's identity (required)
	ListenAddrs []ma.Multiaddr    // default DefaultListenAddrs()
	MemoryLimit int64             // default DefaultMemoryLimit
	FDLimit     int               // default DefaultFDLimit
	// RelayFor reports whether this plug relays for a peer (friends only).
	// Nil relays for no one.
	RelayFor func(peer.ID) bool
}

// relayACL lets friends reserve a relay slot on this plug, and lets anyone
// reach a friend through it (the friend's own gating then decides).
type relayACL struct{ isFriend func(peer.ID) bool }

func (a relayACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool { return a.isFriend(p) }
func (a relayACL) AllowConnect(_ peer.ID, _ ma.Multiaddr, dst peer.ID) bool {
	return a.isFriend(dst)
}

// NewHost starts a libp2p host: TCP and QUIC; TLS preferred (faster here),
// Noise accepted; yamux with a bounded window; a resource manager sized for a
// small device; AutoNAT service, hole punching and circuit relay v2 (client
// always, service for friends when publicly reachable).
func NewHost(cfg HostConfig) (host.Host, error) {
	if cfg.Key == nil {
		return nil, fmt.Errorf("new host: no identity key")
	}
	if len(cfg.ListenAddrs) == 0 {
		cfg.ListenAddrs = DefaultListenAddrs()
	}
	if cfg.MemoryLimit == 0 {
		cfg.MemoryLimit = DefaultMemoryLimit
	}
	if cfg.FDLimit == 0 {
		cfg.FDLimit = DefaultFDLimit
	}
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.Scale(cfg.MemoryLimit, cfg.FDLimit)))
	if err != nil {
		return nil, fmt.Errorf("new host: resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(64, 128, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("new host: connection manager: %w", err)
	}
	mux := *yamux.DefaultTransport
	mux.MaxStreamWindowSize = streamWindow
	isFriend := cfg.RelayFor
	if isFriend == nil {
		isFriend = func(peer.ID) bool { return false }
	}
	h, err := libp2p.New(
		libp2p.Identity(cfg.Key),
		libp2p.ListenAddrs(cfg.ListenAddrs...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, &mux),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.EnableNATService(),
		libp2p.EnableHolePunching(),
		libp2p.EnableRelay(),
		libp2p.EnableRelayService(relay.WithACL(relayACL{isFriend})),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("new host: %w", err)
	}
	return h, nil
}

// FullAddrs returns the host's listen addresses, each ending in /p2p/ID, as
// people and scripts use them to reach this plug.
func FullAddrs(h host.Host) []string {
	pi := peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
	addrs, err := peer.AddrInfoToP2pAddrs(&pi)
	if err != nil {
		return nil
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}
