package p2p

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
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
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
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
	// directWait is how long a friend reached only through a stranger's
	// limited relay is given to hole-punch to a direct connection before it
	// counts as unreachable for bulk work.
	directWait = 15 * time.Second
)

// Config configures a Node.
type Config struct {
	// HostConfig is the libp2p host that the node starts and owns.
	HostConfig
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
	// ReconnectEvery is how often offline friends are dialed again (with a
	// growing backoff per friend) and online ones pinged. Zero means
	// DefaultReconnectEvery; negative turns the keeper off.
	ReconnectEvery time.Duration
	// Logger receives what the node does. Nil discards.
	Logger *slog.Logger
}

// Node is the plug on the network: its host, DHT, friends and protocols.
type Node struct {
	name       atomic.Pointer[string] // Config.Name, or the name SetName gave
	usageMu    sync.Mutex
	usageAsked map[peer.ID]time.Time // when each friend was last asked its usage
	refusals   *refusals
	fullMu     sync.Mutex
	full       map[peer.ID]time.Time // friends whose disk said full, and when
	cfg        Config
	h          host.Host
	db         *kv.DB
	held       *holdstore.Store
	log        *slog.Logger
	friends    *friendBook
	dht        *dht.IpfsDHT
	relay      *relayService
	links      *links
	lan        *lanDiscovery
	gate       *transportGate

	dmu        sync.Mutex // guards the DHT state below
	bootPeers  int        // bootstrap peers connected at the last attempt
	bootErr    string
	nextTry    time.Time
	provideNow chan struct{}
	bootNow    chan struct{}

	reachMu    sync.Mutex
	reach      network.Reachability
	reachSince time.Time

	hookMu    sync.Mutex
	onConnect []func(peer.ID)

	// ctx lives from NewNode to Close: work the node starts on its own
	// (connect hooks, touches) ends with it, and Close waits for it.
	ctx     context.Context
	cancel  context.CancelFunc
	runMu   sync.Mutex // guards closing against wg.Add
	closing bool
	wg      sync.WaitGroup

	foundViaDHT atomic.Int64
	closeOnce   sync.Once
	subs        []event.Subscription
}

// NewNode starts the libp2p host and wires a node on it: it loads the
// friends, starts the DHT and registers the /plug/* protocols. Background
// work starts with Run; Close stops everything, the host included.
//
// The DHT runs in server mode when explicit bootstrap peers are given and no
// public ranges are set (a private network or loopback, where AutoNAT can
// never report public reachability); otherwise AutoNAT decides.
func NewNode(cfg Config) (*Node, error) {
	if cfg.DB == nil || cfg.Held == nil {
		return nil, errors.New("new node: store and held shards are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ReconnectEvery == 0 {
		cfg.ReconnectEvery = DefaultReconnectEvery
	}
	fb, err := loadFriends(cfg.DB)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		cfg:        cfg,
		db:         cfg.DB,
		held:       cfg.Held,
		log:        cfg.Logger.With("component", "p2p"),
		friends:    fb,
		provideNow: make(chan struct{}, 1),
		bootNow:    make(chan struct{}, 1),
		reachSince: time.Now(),
		ctx:        ctx,
		cancel:     cancel,
	}
	n.name.Store(&cfg.Name)
	n.links = newLinks(n)
	n.refusals = newRefusals(n.log)
	n.gate = &transportGate{}
	n.h, err = newHost(cfg.HostConfig, hostHooks{relayCandidates: n.relayCandidates, holePunch: n.links, advertised: n.advertised, gate: n.gate})
	if err != nil {
		cancel()
		return nil, err
	}
	fail := func(err error) (*Node, error) {
		cancel()
		_ = n.h.Close() // best-effort: err is what stopped New, and what it reports
		return nil, err
	}
	mode := dht.ModeAuto
	var boot []peer.AddrInfo
	switch {
	case cfg.NoBootstrap:
		if len(PublicRanges()) == 0 {
			mode = dht.ModeServer
		}
	case cfg.Bootstrap != nil:
		if len(PublicRanges()) == 0 {
			mode = dht.ModeServer
		}
		boot = cfg.Bootstrap
	default:
		boot = dht.GetDefaultBootstrapPeerAddrInfos()
	}
	n.cfg.Bootstrap = boot
	n.dht, err = dht.New(n.h, dht.Mode(mode), dht.BootstrapPeers(boot...))
	if err != nil {
		return fail(fmt.Errorf("start the DHT: %w", err))
	}
	n.relay = newRelayService(n.h, n.friends.isFriend, n.log.With("part", "relay"))
	if !cfg.NoLANDiscovery && !cfg.loopbackOnly() {
		n.lan = newLANDiscovery(n)
	}
	n.h.SetStreamHandler(protocol.ID(ProtoPair), n.handlePair)
	n.h.SetStreamHandler(protocol.ID(ProtoShard), n.handleShard)
	n.h.SetStreamHandler(protocol.ID(ProtoHead), n.handleHead)
	n.h.Network().Notify(&network.NotifyBundle{ConnectedF: n.connected, DisconnectedF: n.disconnected})
	sub, err := n.h.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		_ = n.dht.Close() // best-effort, as in fail
		return fail(fmt.Errorf("watch reachability: %w", err))
	}
	n.subs = append(n.subs, sub)
	n.goRun(func(ctx context.Context) {
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				r := e.(event.EvtLocalReachabilityChanged).Reachability
				n.reachMu.Lock()
				n.reach, n.reachSince = r, time.Now()
				n.reachMu.Unlock()
				n.log.Debug("AutoNAT verdict", "reachability", r.String())
				n.links.kick()
			}
		}
	})
	for _, f := range n.friends.list() {
		n.h.ConnManager().Protect(f.PeerID, "friend")
	}
	return n, nil
}

// goRun runs f in a goroutine that Close waits for (and not at all once
// Close has begun).
func (n *Node) goRun(f func(ctx context.Context)) {
	n.runMu.Lock()
	defer n.runMu.Unlock()
	if n.closing {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f(n.ctx)
	}()
}

// Name returns the plug's name, told to friends at pairing.
func (n *Node) Name() string { return *n.name.Load() }

// SetName renames the plug: friends paired from now on learn the new name.
func (n *Node) SetName(name string) { n.name.Store(&name) }

// Host returns the libp2p host.
func (n *Node) Host() host.Host { return n.h }

// ID returns this plug's peer ID.
func (n *Node) ID() peer.ID { return n.h.ID() }

// Close stops the node's work, the DHT, the protocols and the host. It
// returns once every goroutine the node started has ended, Run's included.
func (n *Node) Close() error {
	var err error
	n.closeOnce.Do(func() {
		n.runMu.Lock()
		n.closing = true
		n.runMu.Unlock()
		n.cancel()
		n.h.RemoveStreamHandler(protocol.ID(ProtoPair))
		n.h.RemoveStreamHandler(protocol.ID(ProtoShard))
		n.h.RemoveStreamHandler(protocol.ID(ProtoHead))
		var errs []error
		for _, s := range n.subs {
			errs = append(errs, s.Close())
		}
		if n.lan != nil {
			n.lan.close()
		}
		n.relay.stop()
		errs = append(errs, n.dht.Close())
		n.wg.Wait() // Run and the work started with goRun
		errs = append(errs, n.h.Close())
		err = errors.Join(errs...)
	})
	return err
}

// Run does the node's background work until ctx ends: keeping the DHT
// bootstrapped (retrying with backoff when no bootstrap peer answers,
// quietly), announcing rendezvous keys, relaying for friends while publicly
// reachable, looking for friends on the LAN, and keeping friends connected.
//
// Close ends Run too, and returns only once Run has: the node owns every
// goroutine it starts. Run on a closed node returns at once.
func (n *Node) Run(ctx context.Context) error {
	n.runMu.Lock()
	if n.closing {
		n.runMu.Unlock()
		return nil
	}
	n.wg.Add(1) // Close waits for Run as for the work started with goRun
	n.runMu.Unlock()
	defer n.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(n.ctx, cancel) // Close ends Run
	defer stop()
	var wg sync.WaitGroup
	run := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	run(n.bootstrapLoop)
	run(n.provideLoop)
	run(n.relay.run)
	run(n.links.run)
	run(n.refusals.run)
	if n.lan != nil {
		run(n.lan.run)
	}
	wg.Wait()
	return nil
}

// connected notes that a friend is online.
func (n *Node) connected(_ network.Network, c network.Conn) {
	p := c.RemotePeer()
	if !n.friends.isFriend(p) {
		return
	}
	if _, relayed := relayOf(c.RemoteMultiaddr()); relayed && c.Stat().Direction == network.DirInbound {
		// A friend that comes in through a relay holds no direct connection
		// to this plug (it would have used it): a direct one still listed
		// here is dead though nobody said so yet (the friend moved, or a
		// router forgot the mapping). Dropped now, before hole punching
		// looks, so that the punch is tried rather than skipped.
		for _, old := range n.h.Network().ConnsToPeer(p) {
			if _, r := relayOf(old.RemoteMultiaddr()); !r {
				n.log.Debug("dropping a direct connection the friend no longer has", "peer", p.String(), "addr", old.RemoteMultiaddr().String())
				n.goRun(func(context.Context) { n.closeConn(old) }) // not from within a swarm notification
			}
		}
	}
	n.goRun(func(context.Context) { n.friends.touch(p, addrStrings(n.h.Peerstore().Addrs(p))) })
	n.goRun(func(ctx context.Context) { n.refreshUsage(ctx, p, false) })
	n.links.kick()
	n.runConnectHooks(p)
}

// runConnectHooks tells the protocols above that friend p is online.
func (n *Node) runConnectHooks(p peer.ID) {
	n.hookMu.Lock()
	hooks := slices.Clone(n.onConnect)
	n.hookMu.Unlock()
	for _, f := range hooks {
		n.goRun(func(context.Context) { f(p) })
	}
}

// disconnected notes when a friend was last seen.
func (n *Node) disconnected(nw network.Network, c network.Conn) {
	p := c.RemotePeer()
	if !n.friends.isFriend(p) {
		return
	}
	n.links.kick()
	if nw.Connectedness(p) == network.Connected {
		return
	}
	n.goRun(func(context.Context) { n.friends.touch(p, nil) })
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
				n.links.kick() // back on the internet: see to the friends now
			}
			wasUp = 1
			if err := <-n.dht.RefreshRoutingTable(); err != nil {
				n.log.Debug("DHT routing table refresh failed", "err", err)
			}
			n.kickProvide()
			wait = bootstrapMinWait
			// Check again later (bootstrap peers come and go), or when the
			// plug's network changed.
			t := time.NewTimer(10 * time.Minute)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			case <-n.bootNow:
				t.Stop()
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

// FoundViaDHT counts the times a friend's address was found through the DHT
// after its known addresses failed.
func (n *Node) FoundViaDHT() int64 { return n.foundViaDHT.Load() }

// knownAddrs returns where p may be reached without asking the DHT: a
// friend's addresses cached in its record (refreshed at every connection),
// what mDNS saw of it on the LAN, and what the peerstore holds (identify,
// an invite).
func (n *Node) knownAddrs(p peer.ID) []ma.Multiaddr {
	var addrs []ma.Multiaddr
	if f, ok := n.friends.get(p); ok {
		for _, s := range f.Addrs {
			if a, err := ma.NewMultiaddr(s); err == nil {
				addrs = append(addrs, a)
			}
		}
	}
	if n.lan != nil {
		addrs = append(addrs, n.lan.addrs(p)...)
	}
	addrs = append(addrs, n.h.Peerstore().Addrs(p)...)
	return ma.Unique(addrs)
}

// clearBackoff forgets swarm's dial backoff for p: the node paces its own
// retries, and a friend that moved must be dialed at once.
func (n *Node) clearBackoff(p peer.ID) {
	if sw, ok := n.h.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(p)
	}
}

// Connect makes sure this plug is connected to p: through the live
// connection, else the known addresses (knownAddrs), else the addresses the
// DHT finds for p's peer ID (which replaces dynamic DNS). A connection
// through a stranger's limited relay counts; Usable waits for more.
func (n *Node) Connect(ctx context.Context, p peer.ID) error {
	if c := n.h.Network().Connectedness(p); c == network.Connected || c == network.Limited {
		return nil
	}
	ctx = network.WithAllowLimitedConn(ctx, "reach a friend")
	n.clearBackoff(p)
	var firstErr error
	known := n.knownAddrs(p)
	if len(known) > 0 {
		cctx, cancel := context.WithTimeout(ctx, dialTimeout)
		firstErr = n.h.Connect(cctx, peer.AddrInfo{ID: p, Addrs: known})
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
		// FindPeer leaves p out of its answer when p was in the DHT's
		// routing table at the address that just failed: the lookup dials
		// that first, marks p unreachable and keeps no answer for it,
		// though other peers told it where p is now. What they told went
		// into the peerstore: dial that.
		if heard := newAddrs(n.h.Peerstore().Addrs(p), known); len(heard) > 0 {
			pi, err = peer.AddrInfo{ID: p, Addrs: heard}, nil
			break
		}
		if !sleep(fctx, time.Duration(try+1)*500*time.Millisecond) {
			break
		}
	}
	if err != nil {
		return &unreachableError{p: p, dial: firstErr, dht: err}
	}
	n.h.Peerstore().AddAddrs(p, pi.Addrs, peerstore.TempAddrTTL)
	n.clearBackoff(p)
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

// newAddrs returns the addresses of addrs that are not in tried.
func newAddrs(addrs, tried []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range addrs {
		if !slices.ContainsFunc(tried, a.Equal) {
			out = append(out, a)
		}
	}
	return out
}

// unreachableError says that a peer answered at none of its known addresses
// and the DHT did not say where it is.
type unreachableError struct {
	p    peer.ID
	dial error // nil: no address was known
	dht  error
}

func (e *unreachableError) Error() string {
	if e.dial != nil {
		return fmt.Sprintf("reach %s: known addresses failed (%s) and the DHT does not know it (%v)", e.p, shortErr(e.dial), e.dht)
	}
	return fmt.Sprintf("reach %s: no known address and the DHT does not know it: %v", e.p, e.dht)
}

func (e *unreachableError) Unwrap() error { return e.dht }

// ErrLimitedOnly is wrapped when a peer is reachable only through a
// stranger's relay, which carries too little for shards, and hole punching
// has not made a direct connection.
var ErrLimitedOnly = errors.New("reachable only through a stranger's relay, which carries too little for this, and hole punching made no direct connection")

// Usable makes sure p is connected by a connection that carries bulk data:
// a direct one, or one relayed by a friend of p (friends relay without
// limits). When the only connection is through a stranger's limited relay
// it waits up to directWait for hole punching to make a direct one.
func (n *Node) Usable(ctx context.Context, p peer.ID) error {
	if err := n.Connect(ctx, p); err != nil {
		return err
	}
	if n.h.Network().Connectedness(p) == network.Connected {
		return nil
	}
	sub, err := n.h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return err
	}
	defer func() { _ = sub.Close() }() // a local event subscription: closing it only stops the events
	if n.h.Network().Connectedness(p) == network.Connected {
		return nil
	}
	t := time.NewTimer(directWait)
	defer t.Stop()
	for {
		select {
		case e, ok := <-sub.Out():
			if !ok {
				return fmt.Errorf("reach %s: %w", p, net.ErrClosed)
			}
			ev := e.(event.EvtPeerConnectednessChanged)
			if ev.Peer == p && ev.Connectedness == network.Connected {
				return nil
			}
		case <-t.C:
			return fmt.Errorf("reach %s: %w", p, ErrLimitedOnly)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
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

// kickBootstrap asks the bootstrap loop to connect to the bootstrap peers
// again now.
func (n *Node) kickBootstrap() {
	select {
	case n.bootNow <- struct{}{}:
	default:
	}
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
