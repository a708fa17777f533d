package p2p

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	corecm "github.com/libp2p/go-libp2p/core/connmgr"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
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

// Relay finding (AutoRelay) settings.
const (
	// relaysWanted is how many relays a plug behind NAT keeps a slot on.
	relaysWanted = 2
	// relayCandidateAge is how long a relay candidate is kept before the
	// candidates are asked for again: short, so that a friend that became
	// reachable replaces a stranger's relay soon.
	relayCandidateAge = 2 * time.Minute
	// relayBackoff is how long a relay that refused a slot is left alone.
	relayBackoff = 2 * time.Minute
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
	// NoPortMapping turns off UPnP IGD / NAT-PMP port mapping on the home
	// router (on by default).
	NoPortMapping bool
	// NoLANDiscovery turns off mDNS (on by default).
	NoLANDiscovery bool
}

// loopbackOnly reports whether every listen address is a loopback one: such
// a plug is reachable from this machine only, so it asks no router for a
// port and announces nothing on the LAN.
func (c HostConfig) loopbackOnly() bool {
	if len(c.ListenAddrs) == 0 {
		return false
	}
	for _, a := range c.ListenAddrs {
		if !manet.IsIPLoopback(a) {
			return false
		}
	}
	return true
}

// hostHooks are the parts of the node that the host's services consult.
type hostHooks struct {
	relayCandidates autorelay.PeerSource
	holePunch       interface {
		holepunch.MetricsTracer
		holepunch.EventTracer
	}
	// advertised filters the addresses the host announces.
	advertised func([]ma.Multiaddr) []ma.Multiaddr
	// gate is the connection gater.
	gate corecm.ConnectionGater
}

// newHost starts a libp2p host: TCP and QUIC; TLS preferred (faster here),
// Noise accepted; yamux with a bounded window; a resource manager sized for a
// small device; AutoNAT (v1, which drives AutoRelay, and v2, which tells
// reachable addresses apart), port mapping, hole punching, and AutoRelay fed
// by the node's candidates. The relay service is the node's (relay.go).
func newHost(cfg HostConfig, hooks hostHooks) (host.Host, error) {
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
	opts := []libp2p.Option{
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
		libp2p.EnableAutoNATv2(),
		libp2p.EnableRelay(),
		libp2p.DisableMetrics(),
	}
	var hp []holepunch.Option
	if hooks.holePunch != nil {
		hp = append(hp, holepunch.WithMetricsAndEventTracer(hooks.holePunch, hooks.holePunch))
	}
	opts = append(opts, libp2p.EnableHolePunching(hp...))
	if hooks.relayCandidates != nil {
		opts = append(opts, libp2p.EnableAutoRelayWithPeerSource(hooks.relayCandidates,
			autorelay.WithNumRelays(relaysWanted),
			autorelay.WithMinCandidates(1),
			autorelay.WithBootDelay(0),
			autorelay.WithMaxCandidateAge(relayCandidateAge),
			autorelay.WithBackoff(relayBackoff),
		))
	}
	if hooks.gate != nil {
		opts = append(opts, libp2p.ConnectionGater(hooks.gate))
	}
	if hooks.advertised != nil {
		opts = append(opts, libp2p.AddrsFactory(hooks.advertised))
	}
	if !cfg.NoPortMapping && !cfg.loopbackOnly() {
		opts = append(opts, libp2p.NATPortMap())
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		_ = rm.Close() // best-effort: the host was not made, which is what is reported
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
