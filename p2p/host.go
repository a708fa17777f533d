package p2p

import (
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/config"
	corecm "github.com/libp2p/go-libp2p/core/connmgr"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/transport"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	basichost "github.com/libp2p/go-libp2p/p2p/host/basic"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/net/upgrader"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"go.uber.org/fx"
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
	setServiceLimits(&limits)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.Scale(cfg.MemoryLimit, cfg.FDLimit)))
	if err != nil {
		return nil, fmt.Errorf("new host: resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(64, 128, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		_ = rm.Close() // best-effort: the host was not made, which is what is reported
		return nil, fmt.Errorf("new host: connection manager: %w", err)
	}
	ps, err := pstoremem.NewPeerstore()
	if err != nil {
		_ = cm.Close() // best-effort, as above
		_ = rm.Close()
		return nil, fmt.Errorf("new host: peerstore: %w", err)
	}
	c := libp2pConfig(cfg, hooks, rm, cm, ps)
	h, err := c.NewNode()
	if err != nil {
		// Best-effort: the host was not made, which is what is reported.
		// NewNode closes some of these itself on some failures; each Close
		// may be called twice.
		_ = ps.Close()
		_ = cm.Close()
		_ = rm.Close()
		return nil, fmt.Errorf("new host: %w", err)
	}
	return h, nil
}

// libp2pConfig is the host's whole libp2p configuration, written out field
// by field instead of built with the options of go-libp2p's root package
// (libp2p.New). That package cannot be imported without linking every
// transport it defaults to — WebSocket, WebTransport and WebRTC with pion,
// some 4 MB of a binary that must fit small ARM boards — because its
// DefaultTransports is a package variable that names them. The plug uses
// TCP and QUIC only. TestNoRootLibp2p keeps the root package out of
// cmd/plug, and TestLibp2pConfigMatchesNew checks this config against the
// one libp2p.New would build from the options the plug used to give it.
//
// libp2p.New(opts...) is the options applied to a zero config.Config, then
// FallbackDefaults (go-libp2p v0.51.0, defaults.go), then cfg.NewNode().
// Each field below says which option set it; fields left out are the zero
// value in both ways of building. The fallback defaults, one by one:
//
//   - DefaultListenAddrs: not applied (listen addresses and transports are
//     given).
//   - DefaultTransports, DefaultPrivateTransports: not applied (transports
//     are given).
//   - DefaultMuxers: not applied (yamux is given, with its window bounded).
//   - DefaultSecurity: not applied (given: TLS then Noise, the same list).
//   - RandomIdentity: not applied (the plug's key is given).
//   - DefaultPeerstore: applied: an in-memory peerstore (pstoremem), which
//     the caller makes and passes as ps.
//   - DefaultEnableRelay: not applied (EnableRelay is given; it does the
//     same).
//   - DefaultResourceManager, DefaultConnectionManager: not applied (given).
//   - DefaultPrometheusRegisterer: not applied (metrics are disabled).
//   - defaultUDPBlackHoleDetector, defaultIPv6BlackHoleDetector: applied:
//     UDP and IPv6 dials are given up on after 100 dials with fewer than 5
//     successes (see below).
//
// What the host takes when a field is left zero lives outside the root
// package, so it is the same as before: identify's default user agent (from
// the binary's build info: module path and version) and protocol version,
// the swarm's multiaddr DNS resolver (madns.DefaultResolver) and dial
// timeout, ping on, identify's address discovery on, non-public addresses
// published, the one QUIC connection manager (dials reuse the listen port)
// that config makes itself when QUICReuse is empty, TCP listeners not
// shared (ShareTCPListener off), no private network, no routing wrapper.
func libp2pConfig(cfg HostConfig, hooks hostHooks, rm network.ResourceManager, cm corecm.ConnManager, ps peerstore.Peerstore) *config.Config {
	mux := *yamux.DefaultTransport
	mux.MaxStreamWindowSize = streamWindow
	c := &config.Config{
		// libp2p.Identity, libp2p.ListenAddrs.
		PeerKey:     cfg.Key,
		ListenAddrs: slices.Clone(cfg.ListenAddrs),
		// libp2p.Transport, once for each.
		Transports: []fx.Option{
			transportConstructor(tcp.NewTCPTransport),
			transportConstructor(quic.NewTransport),
		},
		// libp2p.Security, twice: the order is the order of preference.
		SecurityTransports: []config.Security{
			{ID: libp2ptls.ID, Constructor: libp2ptls.New},
			{ID: noise.ID, Constructor: noise.New},
		},
		// libp2p.Muxer.
		Muxers: []upgrader.StreamMuxer{{ID: yamux.ID, Muxer: &mux}},
		// libp2p.ResourceManager, libp2p.ConnectionManager; DefaultPeerstore.
		ResourceManager: rm,
		ConnManager:     cm,
		Peerstore:       ps,
		// libp2p.EnableNATService: answer AutoNAT v1 for others.
		AutoNATConfig: config.AutoNATConfig{EnableService: true},
		// libp2p.EnableAutoNATv2.
		EnableAutoNATv2: true,
		// libp2p.EnableRelay: the relay transport (the client), to dial and
		// be dialed through relays.
		RelayCustom: true,
		Relay:       true,
		// libp2p.DisableMetrics.
		DisableMetrics: true,
		// libp2p.EnableHolePunching; its options, the node's tracers, below.
		EnableHolePunching: true,
		// defaultUDPBlackHoleDetector, defaultIPv6BlackHoleDetector: "a black
		// hole is a binary property", so 5 successes in 100 dials tell it.
		UDPBlackHoleSuccessCounter:        &swarm.BlackHoleSuccessCounter{N: 100, MinSuccesses: 5, Name: "UDP"},
		CustomUDPBlackHoleSuccessCounter:  true,
		IPv6BlackHoleSuccessCounter:       &swarm.BlackHoleSuccessCounter{N: 100, MinSuccesses: 5, Name: "IPv6"},
		CustomIPv6BlackHoleSuccessCounter: true,
	}
	if hooks.holePunch != nil {
		c.HolePunchingOptions = []holepunch.Option{holepunch.WithMetricsAndEventTracer(hooks.holePunch, hooks.holePunch)}
	}
	if hooks.relayCandidates != nil {
		// libp2p.EnableAutoRelayWithPeerSource: the peer source first.
		c.EnableAutoRelay = true
		c.AutoRelayOpts = []autorelay.Option{
			autorelay.WithPeerSource(hooks.relayCandidates),
			autorelay.WithNumRelays(relaysWanted),
			autorelay.WithMinCandidates(1),
			autorelay.WithBootDelay(0),
			autorelay.WithMaxCandidateAge(relayCandidateAge),
			autorelay.WithBackoff(relayBackoff),
		}
	}
	if hooks.gate != nil {
		c.ConnectionGater = hooks.gate // libp2p.ConnectionGater
	}
	if hooks.advertised != nil {
		c.AddrsFactory = hooks.advertised // libp2p.AddrsFactory
	}
	if !cfg.NoPortMapping && !cfg.loopbackOnly() {
		c.NATManager = basichost.NewNATManager // libp2p.NATPortMap
	}
	return c
}

// transportConstructor is what libp2p.Transport(constructor) adds to
// config.Config.Transports when given no transport options (go-libp2p
// v0.51.0, options.go): the constructor, its parameters filled in by fx from
// what config provides (upgrader, resource manager, key, QUIC connection
// manager, ...), its result offered as a transport.Transport to the group
// config adds to the swarm.
func transportConstructor(constructor any) fx.Option {
	return fx.Provide(
		fx.Annotate(
			constructor,
			fx.ParamTags(), // as libp2p.Transport has it without options: no tags
			fx.As(new(transport.Transport)),
			fx.ResultTags(`group:"transport"`),
		),
	)
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
