package p2p

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"github.com/plug-net/plug/p2p/holdstore"
	"github.com/plug-net/plug/store/kv"
)

// Timeouts and periods of the node.
const (
	dialTimeout      = 10 * time.Second
	findPeerTimeout  = 30 * time.Second
	provideEvery     = time.Hour
	bootstrapMinWait = 2 * time.Second
	bootstrapMaxWait = 5 * time.Minute
)

// Config configures a Node.
type Config struct {
	Host host.Host
	DB   *kv.DB
	Held *holdstore.Store
	// Name is this plug's name, told to friends at pairing.
	Name string
	// Rendezvous is this plug's own rendezvous key, handed to each friend
	// at pairing.
	Rendezvous [32]byte
	// Bootstrap peers of the DHT. Nil means the public IPFS DHT's; see
	// NoBootstrap.
	Bootstrap []peer.AddrInfo
	// NoBootstrap runs the DHT without any bootstrap peer (--bootstrap none).
	NoBootstrap bool
	// Logger receives what the node does. Nil discards.
	Logger *slog.Logger
}

// Node is the plug on the network: its host, DHT, friends and protocols.
type Node struct {
	cfg     Config
	h       host.Host
	db      *kv.DB
	held    *holdstore.Store
	log     *slog.Logger
	friends *friendBook
	dht     *dht.IpfsDHT

	dmu        sync.Mutex // guards the DHT state below
	bootPeers  int        // bootstrap peers connected at the last attempt
	bootErr    string
	nextTry    time.Time
	provideNow chan struct{}

	reachMu sync.Mutex
	reach   network.Reachability

	hookMu    sync.Mutex
	onConnect []func(peer.ID)

	foundViaDHT atomic.Int64
	closeOnce   sync.Once
	subs        []event.Subscription
}

// NewNode wires a node on a running host: it loads the friends, starts the
// DHT (server mode when bootstrap peers are given, as on a private network or
// loopback where AutoNAT never reports public reachability) and registers the
// /plug/* protocols. Background work starts with Run.
func NewNode(cfg Config) (*Node, error) {
	if cfg.Host == nil || cfg.DB == nil || cfg.Held == nil {
		return nil, errors.New("new node: host, store and held shards are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	fb, err := loadFriends(cfg.DB)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:        cfg,
		h:          cfg.Host,
		db:         cfg.DB,
		held:       cfg.Held,
		log:        cfg.Logger.With("component", "p2p"),
		friends:    fb,
		provideNow: make(chan struct{}, 1),
	}
	mode := dht.ModeAuto
	var boot []peer.AddrInfo
	switch {
	case cfg.NoBootstrap:
	case cfg.Bootstrap != nil:
		mode = dht.ModeServer
		boot = cfg.Bootstrap
	default:
		boot = dht.GetDefaultBootstrapPeerAddrInfos()
	}
	n.cfg.Bootstrap = boot
	if cfg.NoBootstrap {
		mode = dht.ModeServer
	}
	n.dht, err = dht.New(cfg.Host, dht.Mode(mode), dht.BootstrapPeers(boot...))
	if err != nil {
		return nil, fmt.Errorf("start the DHT: %w", err)
	}
	n.h.SetStreamHandler(protocol.ID(ProtoPair), n.handlePair)
	n.h.SetStreamHandler(protocol.ID(ProtoShard), n.handleShard)
	n.h.SetStreamHandler(protocol.ID(ProtoHead), n.handleHead)
	n.h.Network().Notify(&network.NotifyBundle{ConnectedF: n.connected, DisconnectedF: n.disconnected})
	sub, err := n.h.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		n.dht.Close()
		return nil, fmt.Errorf("watch reachability: %w", err)
	}
	n.subs = append(n.subs, sub)
	go func() {
		for e := range sub.Out() {
			r := e.(event.EvtLocalReachabilityChanged).Reachability
			n.reachMu.Lock()
			n.reach = r
			n.reachMu.Unlock()
			n.log.Info("reachability changed", "reachability", reachString(r))
		}
	}()
	return n, nil
}

// Host returns the libp2p host.
func (n *Node) Host() host.Host { return n.h }

// ID returns this plug's peer ID.
func (n *Node) ID() peer.ID { return n.h.ID() }

// Close stops the DHT and the protocols; the host is the caller's.
func (n *Node) Close() error {
	var err error
	n.closeOnce.Do(func() {
		n.h.RemoveStreamHandler(protocol.ID(ProtoPair))
		n.h.RemoveStreamHandler(protocol.ID(ProtoShard))
		n.h.RemoveStreamHandler(protocol.ID(ProtoHead))
		for _, s := range n.subs {
			s.Close()
		}
		err = n.dht.Close()
	})
	return err
}

// Run does the node's background work until ctx ends: keeping the DHT
// bootstrapped (retrying with backoff when no bootstrap peer answers, quietly)
// and announcing rendezvous keys.
func (n *Node) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); n.bootstrapLoop(ctx) }()
	go func() { defer wg.Done(); n.provideLoop(ctx) }()
	wg.Wait()
	return nil
}

// connected notes that a friend is online.
func (n *Node) connected(_ network.Network, c network.Conn) {
	p := c.RemotePeer()
	if !n.friends.isFriend(p) {
		return
	}
	go n.friends.touch(p, addrStrings(n.h.Peerstore().Addrs(p)))
	n.runConnectHooks(p)
}

// runConnectHooks tells the protocols above that friend p is online.
func (n *Node) runConnectHooks(p peer.ID) {
	n.hookMu.Lock()
	hooks := slices.Clone(n.onConnect)
	n.hookMu.Unlock()
	for _, f := range hooks {
		go f(p)
	}
}

// disconnected notes when a friend was last seen.
func (n *Node) disconnected(net network.Network, c network.Conn) {
	p := c.RemotePeer()
	if !n.friends.isFriend(p) || net.Connectedness(p) == network.Connected {
		return
	}
	go n.friends.touch(p, nil)
}

func addrStrings(as []ma.Multiaddr) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// bootstrapLoop connects to the bootstrap peers and refreshes the routing
// table, retrying with exponential backoff while none answers. It logs when
// the state changes, not at every attempt.
func (n *Node) bootstrapLoop(ctx context.Context) {
	if len(n.cfg.Bootstrap) == 0 {
		n.log.Info("DHT runs without bootstrap peers (--bootstrap none)")
		return
	}
	wait := bootstrapMinWait
	wasUp := -1 // unknown
	for {
		ok := 0
		var lastErr error
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, pi := range n.cfg.Bootstrap {
			if pi.ID == n.h.ID() {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, dialTimeout)
				defer cancel()
				err := n.h.Connect(cctx, pi)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					lastErr = err
					return
				}
				ok++
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			return
		}
		n.dmu.Lock()
		n.bootPeers = ok
		if lastErr != nil && ok == 0 {
			n.bootErr = shortErr(lastErr)
		} else {
			n.bootErr = ""
		}
		n.dmu.Unlock()
		if ok > 0 {
			if wasUp != 1 {
				n.log.Info("DHT bootstrapped", "bootstrap_peers", ok)
			}
			wasUp = 1
			<-n.dht.RefreshRoutingTable()
			n.kickProvide()
			wait = bootstrapMinWait
			// Check again later: bootstrap peers come and go.
			if !sleep(ctx, 10*time.Minute) {
				return
			}
			continue
		}
		if wasUp != 0 {
			n.log.Warn("no DHT bootstrap peer reachable; the plug works on, friends are reached at their last known addresses; retrying with backoff", "bootstrap_peers", len(n.cfg.Bootstrap), "err", n.bootErr)
		}
		wasUp = 0
		wait = min(wait*2, bootstrapMaxWait)
		jittered := wait/2 + time.Duration(rand.Int64N(int64(wait/2)+1))
		n.dmu.Lock()
		n.nextTry = time.Now().Add(jittered)
		n.dmu.Unlock()
		if !sleep(ctx, jittered) {
			return
		}
	}
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i > 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// sleep waits d or until ctx ends; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// DHTStatus says, for people, how the DHT is doing.
func (n *Node) DHTStatus() string {
	n.dmu.Lock()
	defer n.dmu.Unlock()
	rt := n.dht.RoutingTable().Size()
	switch {
	case len(n.cfg.Bootstrap) == 0:
		return fmt.Sprintf("no bootstrap peers (--bootstrap none); %d peers in the routing table", rt)
	case n.bootPeers > 0 || rt > 0:
		return fmt.Sprintf("connected: %d peers in the routing table", rt)
	case n.nextTry.IsZero():
		return "connecting to bootstrap peers"
	default:
		return fmt.Sprintf("offline: no bootstrap peer reachable (%s); retrying in %s", n.bootErr, time.Until(n.nextTry).Round(time.Second))
	}
}

// Reachability says whether this plug can be dialed from the internet:
// "public", "private", "relayed" (reachable through a relay) or "unknown".
func (n *Node) Reachability() string {
	for _, a := range n.h.Addrs() {
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			return "relayed"
		}
	}
	n.reachMu.Lock()
	defer n.reachMu.Unlock()
	return reachString(n.reach)
}

func reachString(r network.Reachability) string {
	switch r {
	case network.ReachabilityPublic:
		return "public"
	case network.ReachabilityPrivate:
		return "private"
	}
	return "unknown"
}

// FoundViaDHT counts the times a friend's address was found through the DHT
// after its known addresses failed.
func (n *Node) FoundViaDHT() int64 { return n.foundViaDHT.Load() }

// Connect makes sure this plug is connected to p: through the live
// connection, else the known addresses, else the addresses the DHT finds for
// p's peer ID (which replaces dynamic DNS).
func (n *Node) Connect(ctx context.Context, p peer.ID) error {
	if n.h.Network().Connectedness(p) == network.Connected {
		return nil
	}
	// A friend is tried at the addresses cached in its record (updated at
	// every connection), and only those: when they fail, the DHT says where
	// the friend is now. Other peers are tried at what the peerstore knows.
	var addrs []ma.Multiaddr
	if f, ok := n.friends.get(p); ok {
		for _, s := range f.Addrs {
			if a, err := ma.NewMultiaddr(s); err == nil {
				addrs = append(addrs, a)
			}
		}
		n.h.Peerstore().ClearAddrs(p)
	} else {
		addrs = n.h.Peerstore().Addrs(p)
	}
	var firstErr error
	if len(addrs) > 0 {
		cctx, cancel := context.WithTimeout(ctx, dialTimeout)
		firstErr = n.h.Connect(network.WithForceDirectDial(cctx, "known addresses"), peer.AddrInfo{ID: p, Addrs: addrs})
		cancel()
		if firstErr == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	fctx, cancel := context.WithTimeout(ctx, findPeerTimeout)
	defer cancel()
	// A lookup can miss right after a failed dial; try a few times.
	var (
		pi  peer.AddrInfo
		err error
	)
	for try := 0; try < 3; try++ {
		if pi, err = n.dht.FindPeer(fctx, p); err == nil || fctx.Err() != nil {
			break
		}
		if !sleep(fctx, time.Duration(try+1)*500*time.Millisecond) {
			break
		}
	}
	if err != nil {
		if firstErr != nil {
			return fmt.Errorf("reach %s: known addresses failed (%s) and the DHT does not know it (%v)", p, shortErr(firstErr), err)
		}
		return fmt.Errorf("reach %s: no known address and the DHT does not know it: %w", p, err)
	}
	n.h.Peerstore().AddAddrs(p, pi.Addrs, peerstore.TempAddrTTL)
	cctx, cancel2 := context.WithTimeout(ctx, dialTimeout)
	defer cancel2()
	if err := n.h.Connect(cctx, pi); err != nil {
		return fmt.Errorf("reach %s at the addresses the DHT gave: %w", p, err)
	}
	n.foundViaDHT.Add(1)
	if n.friends.isFriend(p) {
		n.log.Info("found friend through the DHT", "peer", p.String(), "addrs", strings.Join(addrStrings(pi.Addrs), " "))
		n.friends.touch(p, addrStrings(pi.Addrs))
	}
	return nil
}

// RendezvousCID is the DHT key under which friends announce that they hold
// data for the owner of key: a CIDv1 (raw) of SHA-256 over a label and the
// key. It reveals nothing of the owner to anyone without the key.
func RendezvousCID(key [32]byte) cid.Cid {
	h := sha256.New()
	h.Write([]byte("plug/rendezvous/v1\x00"))
	h.Write(key[:])
	m, err := mh.Encode(h.Sum(nil), mh.SHA2_256)
	if err != nil {
		panic(err) // a SHA-256 digest always encodes
	}
	return cid.NewCidV1(cid.Raw, m)
}

// kickProvide asks the provide loop to announce now.
func (n *Node) kickProvide() {
	select {
	case n.provideNow <- struct{}{}:
	default:
	}
}

// provideLoop announces rendezvous(friend) for every friend whose data this
// plug holds, hourly and when asked.
func (n *Node) provideLoop(ctx context.Context) {
	t := time.NewTicker(provideEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.provideNow:
		}
		n.provideAll(ctx)
	}
}

func (n *Node) provideAll(ctx context.Context) {
	if n.dht.RoutingTable().Size() == 0 {
		return
	}
	owners, err := n.held.Owners()
	if err != nil {
		n.log.Warn("could not list held shards", "err", err)
		return
	}
	for _, o := range owners {
		f, ok := n.friends.get(o.Owner)
		if !ok || o.Used == 0 {
			continue
		}
		key, ok := f.rendezvousKey()
		if !ok {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := n.dht.Provide(pctx, RendezvousCID(key), true)
		cancel()
		if err != nil {
			n.log.Debug("announce rendezvous failed", "friend", f.Name, "err", err)
			continue
		}
		n.log.Debug("announced rendezvous", "friend", f.Name)
	}
}

// FindHolders asks the DHT for the plugs that announce rendezvous(key): the
// friends that hold data for the owner of key. A recovered plug uses it to
// find its friends again.
func (n *Node) FindHolders(ctx context.Context, key [32]byte, max int) []peer.AddrInfo {
	var out []peer.AddrInfo
	for pi := range n.dht.FindProvidersAsync(ctx, RendezvousCID(key), max) {
		if pi.ID == n.h.ID() {
			continue
		}
		out = append(out, pi)
	}
	return out
}
