package p2p

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	relayclient "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Periods of the link keeper.
const (
	// DefaultReconnectEvery is how often an offline friend is dialed again
	// at first; each failure doubles the wait, up to maxReconnectWait.
	DefaultReconnectEvery = 15 * time.Second
	maxReconnectWait      = 5 * time.Minute
	// linkTick is how often the keeper looks at the local addresses, the
	// reachability and the friends' links (and at once when kicked).
	linkTick = 3 * time.Second
	// pingEvery is how often an online friend's round-trip time is measured.
	pingEvery   = 30 * time.Second
	pingTimeout = 10 * time.Second
	// undecidedAfter is how long AutoNAT may stay without a verdict before
	// a plug that talks to the internet but has no relay says it is behind
	// NAT (behind a symmetric NAT AutoNAT may never decide).
	undecidedAfter = 2 * time.Minute
	// relayUpgradeEvery spaces the moves of a relay slot from a stranger's
	// plug to a friend's.
	relayUpgradeEvery = time.Minute
	// lanSettle is how long after start "LAN only" is not worth logging: the
	// bootstrap peers are still being dialed.
	lanSettle = 30 * time.Second
	// punchRetryAfter is how long a friend may stay on a stranger's limited
	// relay before it is dialed again to retry hole punching (doubling each
	// time, up to 8 times as long, until a link carries data again; half as
	// long again on the side with the greater peer ID).
	punchRetryAfter    = 20 * time.Second
	maxPunchRetryShift = 3
)

// Link kinds, as `plug friends` shows them.
const (
	LinkDirect      = "direct"
	LinkHolePunched = "hole-punched"
	LinkRelayed     = "relayed"
	LinkOffline     = "offline"
)

// Link is how this plug is connected to a friend now.
type Link struct {
	// Kind is LinkDirect, LinkHolePunched, LinkRelayed or LinkOffline.
	Kind string `json:"connection"`
	// Via names the relay of a relayed link: the friend's name, or a short
	// peer ID for a plug that is nobody's friend here.
	Via     string `json:"via,omitempty"`
	ViaPeer string `json:"via_peer_id,omitempty"`
	// Limited is set when the relay is a stranger's, which carries only a
	// little (enough for pairing and for coordinating a hole punch).
	Limited bool `json:"limited,omitempty"`
	// RTTms is the last measured round-trip time in milliseconds.
	RTTms float64 `json:"rtt_ms,omitempty"`
	// Addr is the friend's address on the connection in use.
	Addr string `json:"addr,omitempty"`

	opened time.Time // when the connection in use was opened
}

// String says the link in words: "direct", "hole-punched", "relayed via Cat"
// or "offline".
func (l Link) String() string {
	if l.Kind == LinkRelayed {
		return "relayed via " + l.Via
	}
	return l.Kind
}

// Reachability says how the internet reaches this plug.
type Reachability struct {
	// State is "public", "relayed" (behind NAT, reachable through a relay),
	// "private" (behind NAT, no relay yet), "lan" (no peer on the internet
	// answers) or "unknown" (AutoNAT has not decided yet).
	State string `json:"state"`
	// Text says it for people, e.g. "behind NAT, reachable through a relay
	// on Cat".
	Text string `json:"text"`
	// PublicAddrs are the addresses the internet reaches it at (public).
	PublicAddrs []string `json:"public_addrs,omitempty"`
	// Relays are the plugs that hold a relay slot for it (relayed).
	Relays []RelayRef `json:"relays,omitempty"`
}

// RelayRef is a plug that relays for this one.
type RelayRef struct {
	PeerID string `json:"peer_id"`
	Name   string `json:"name"`
	Friend bool   `json:"friend"`
}

// links keeps the friends connected and tells how: it dials offline friends
// again with backoff, pings online ones, notices hole punches, moves a relay
// slot from a stranger to a friend, notices when the plug's own network
// changes (a plug that moved house), and logs every change.
type links struct {
	n     *Node
	kickc chan struct{}

	mu       sync.Mutex
	punched  map[string]time.Time  // "local remote" of hole-punched connections
	punching map[peer.ID]time.Time // hole punches under way, by peer
	friends  map[peer.ID]*friendLink
	reach    string // the reachability text last logged
	started  time.Time
	localIPs string // the local addresses last seen
	lookedUp bool   // localIPs holds a look (it may be "": no address)
	wasLAN   bool   // the last reachability known was "LAN only"
	upgraded time.Time
	observed map[string]time.Time // last dial to be seen over a transport
	repunch  bool                 // retry hole punching at the next look
	public   map[string]bool      // this plug's public direct addresses at the last look
}

// friendLink is what the keeper knows of one friend.
type friendLink struct {
	shown   string // the link last logged, in words
	pending string // a new link seen once: logged when seen again
	rtt     time.Duration
	pinged  time.Time
	pinging bool
	fails   int
	next    time.Time // no dial before
	dialing bool
	// punches counts the redials made to get a hole punch tried again for
	// a link stuck on a stranger's limited relay.
	punches int
}

var (
	_ holepunch.MetricsTracer = (*links)(nil)
	_ holepunch.EventTracer   = (*links)(nil)
)

func newLinks(n *Node) *links {
	return &links{
		n:        n,
		kickc:    make(chan struct{}, 1),
		punched:  make(map[string]time.Time),
		punching: make(map[peer.ID]time.Time),
		friends:  make(map[peer.ID]*friendLink),
		observed: make(map[string]time.Time),
		started:  time.Now(),
	}
}

// kick makes the keeper look now.
func (l *links) kick() {
	select {
	case l.kickc <- struct{}{}:
	default:
	}
}

// HolePunchFinished implements holepunch.MetricsTracer: it remembers the
// connections that hole punching made.
func (l *links) HolePunchFinished(side string, attempts int, theirs, ours []ma.Multiaddr, direct network.ConnMultiaddrs) {
	if direct == nil {
		l.n.log.Debug("hole punch failed", "side", side, "attempts", attempts, "their_addrs", fmt.Sprint(theirs), "our_addrs", fmt.Sprint(ours))
		return
	}
	l.n.log.Debug("hole punched", "side", side, "attempts", attempts, "local", direct.LocalMultiaddr().String(), "remote", direct.RemoteMultiaddr().String())
	l.mu.Lock()
	l.punched[connKey(direct)] = time.Now()
	l.mu.Unlock()
	l.kick()
}

// Trace implements holepunch.EventTracer: it notes the hole punches under
// way, so that a direct connection that appears during one is known as
// punched before the punch reports its end.
func (l *links) Trace(e *holepunch.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e.Type {
	case holepunch.StartHolePunchEvtT:
		l.punching[e.Remote] = time.Now()
	case holepunch.EndHolePunchEvtT:
		delete(l.punching, e.Remote)
	}
}

// DirectDialFinished implements holepunch.MetricsTracer.
func (l *links) DirectDialFinished(bool) {}

func connKey(c network.ConnMultiaddrs) string {
	return c.LocalMultiaddr().String() + " " + c.RemoteMultiaddr().String()
}

// run keeps the links until ctx ends.
func (l *links) run(ctx context.Context) {
	t := time.NewTicker(linkTick)
	defer t.Stop()
	for {
		l.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-l.kickc:
		}
	}
}

func (l *links) round(ctx context.Context) {
	l.checkNetwork()
	r := l.n.Reachability()
	l.mu.Lock()
	// "unknown" is a passing state, and "LAN only" is what every plug is
	// for a moment after it starts: neither is news unless it lasts.
	settling := r.State == "unknown" || (r.State == "lan" && time.Since(l.started) < lanSettle)
	// Back on the internet (a DHT peer answered after a move or an outage):
	// friends whose dials failed meanwhile are worth a dial now, not at the
	// end of their backoff.
	online := l.wasLAN && r.State != "lan" && r.State != "unknown"
	if r.State != "unknown" {
		l.wasLAN = r.State == "lan"
	}
	if r.Text != l.reach && !settling {
		l.reach = r.Text
		l.mu.Unlock()
		l.n.log.Info("reachability: "+r.Text, "state", r.State)
	} else {
		l.mu.Unlock()
	}
	if online {
		l.resetBackoff()
	}
	now := time.Now()
	grew := l.publicAddrsGrew()
	l.mu.Lock()
	// A public address this plug did not have (peers now see it from
	// outside, as after a move) may be what the last hole punch lacked.
	repunch := l.repunch || grew
	l.repunch = false
	l.mu.Unlock()
	var present []peer.ID
	for _, f := range l.n.friends.list() {
		p := f.PeerID
		present = append(present, p)
		link := l.link(p)
		l.mu.Lock()
		fl := l.friends[p]
		if fl == nil {
			fl = &friendLink{shown: link.String()}
			l.friends[p] = fl
		}
		// A change is logged once it holds for two looks in a row: a hole
		// punch shows a direct connection a moment before it is known as
		// punched, and a link that flaps is not worth a line each time.
		switch s := link.String(); {
		case s == fl.shown:
			fl.pending = ""
		case s != fl.pending:
			fl.pending = s
		default:
			old := fl.shown
			fl.shown, fl.pending = s, ""
			l.mu.Unlock()
			l.n.log.Info("friend's link changed", "friend", f.Name, "from", old, "to", s)
			l.mu.Lock()
		}
		// Only a link that carries data ends the backoff: between two tries
		// the friend is offline for a moment while it is dialed again.
		if link.Kind != LinkOffline && !link.Limited {
			fl.punches = 0
		}
		// Both sides of a limited link keep this clock; the one with the
		// greater ID waits half as long again, so that they do not both
		// redial at once and start two punches that spoil each other.
		punchWait := punchRetryAfter << min(fl.punches, maxPunchRetryShift)
		if l.n.h.ID() > p {
			punchWait += punchWait / 2
		}
		switch {
		case link.Limited && l.n.cfg.ReconnectEvery > 0 && (repunch || now.Sub(link.opened) > punchWait):
			// Stuck on a stranger's relay: hole punching was skipped or
			// failed. Dial again through the relay, which makes the other
			// side try a punch anew (with a growing wait: behind a
			// symmetric NAT it never works).
			fl.punches++
			fl.next = time.Time{}
			l.n.log.Debug("no hole punch yet; dialing the friend again through the relay", "friend", f.Name, "try", fl.punches)
			for _, c := range l.n.h.Network().ConnsToPeer(p) {
				if c.Stat().Limited {
					l.n.goRun(func(context.Context) { l.n.closeConn(c) })
				}
			}
		case link.Kind == LinkOffline && l.n.cfg.ReconnectEvery > 0 && !fl.dialing && !now.Before(fl.next):
			fl.dialing = true
			l.n.goRun(func(ctx context.Context) { l.redial(ctx, p) })
		case link.Kind != LinkOffline && !fl.pinging && now.Sub(fl.pinged) > pingEvery:
			fl.pinging = true
			l.n.goRun(func(ctx context.Context) { l.ping(ctx, p) })
		}
		l.mu.Unlock()
	}
	l.mu.Lock()
	for p := range l.friends {
		if !slices.Contains(present, p) {
			delete(l.friends, p)
		}
	}
	for k, t := range l.punched {
		if now.Sub(t) > 24*time.Hour {
			delete(l.punched, k)
		}
	}
	for p, t := range l.punching {
		if now.Sub(t) > time.Minute {
			delete(l.punching, p) // a punch that never reported its end
		}
	}
	l.mu.Unlock()
	if r.State == "relayed" {
		l.upgradeRelay(r)
	}
	l.observeTransports(r)
}

// redial dials an offline friend, and spaces the next try on failure.
func (l *links) redial(ctx context.Context, p peer.ID) {
	cctx, cancel := context.WithTimeout(ctx, dialTimeout+findPeerTimeout)
	err := l.n.Connect(cctx, p)
	cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	fl := l.friends[p]
	if fl == nil {
		return
	}
	fl.dialing = false
	if err == nil {
		fl.fails = 0
		fl.next = time.Time{}
		return
	}
	fl.fails++
	wait := l.n.cfg.ReconnectEvery << min(fl.fails-1, 8)
	fl.next = time.Now().Add(min(wait, maxReconnectWait))
	l.n.log.Debug("friend not reached", "peer", p.String(), "next_try", fl.next.Format(time.TimeOnly), "err", err)
}

// ping measures a friend's round-trip time.
func (l *links) ping(ctx context.Context, p peer.ID) {
	cctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	var rtt time.Duration
	select {
	case res := <-ping.Ping(cctx, l.n.h, p):
		if res.Error == nil {
			rtt = res.RTT
		}
	case <-cctx.Done():
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if fl := l.friends[p]; fl != nil {
		fl.pinging = false
		fl.pinged = time.Now()
		if rtt > 0 {
			fl.rtt = rtt
		}
	}
}

// punchAgain makes the next look retry hole punching for every friend
// reached only through a stranger's relay.
func (l *links) punchAgain() {
	l.mu.Lock()
	l.repunch = true
	l.mu.Unlock()
	l.kick()
}

// publicAddrsGrew reports whether the host has a public direct address
// (an interface's, or one peers observed) that it did not have at the last
// look. The first look reports nothing.
func (l *links) publicAddrsGrew() bool {
	h, ok := l.n.h.(interface{ AllAddrs() []ma.Multiaddr })
	if !ok {
		return false
	}
	now := map[string]bool{}
	for _, a := range h.AllAddrs() {
		if _, relayed := relayOf(a); !relayed && manet.IsPublicAddr(a) {
			now[a.String()] = true
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	grew := false
	if l.public != nil {
		for a := range now {
			grew = grew || !l.public[a]
		}
	}
	l.public = now
	return grew
}

// resetBackoff makes every offline friend due for a dial now.
func (l *links) resetBackoff() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, fl := range l.friends {
		fl.fails, fl.next = 0, time.Time{}
	}
}

// link classifies the best connection to p.
func (l *links) link(p peer.ID) Link {
	best := Link{Kind: LinkOffline}
	rank := 0
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.n.h.Network().ConnsToPeer(p) {
		if c.IsClosed() {
			continue
		}
		var k Link
		r := 0
		if relay, ok := relayOf(c.RemoteMultiaddr()); ok {
			k = Link{Kind: LinkRelayed, ViaPeer: relay.String(), Via: l.n.peerName(relay), Limited: c.Stat().Limited, Addr: c.RemoteMultiaddr().String(), opened: c.Stat().Opened}
			r = 1
			if !k.Limited {
				r = 2
			}
		} else {
			k = Link{Kind: LinkDirect, Addr: c.RemoteMultiaddr().String()}
			_, punched := l.punched[connKey(c)]
			started, punching := l.punching[p]
			if punched || (punching && !c.Stat().Opened.Before(started)) {
				k.Kind = LinkHolePunched
			}
			r = 3
		}
		if r > rank {
			best, rank = k, r
		}
	}
	if best.Kind != LinkOffline {
		if fl := l.friends[p]; fl != nil && fl.rtt > 0 {
			best.RTTms = float64(fl.rtt.Microseconds()) / 1000
		} else if d := l.n.h.Peerstore().LatencyEWMA(p); d > 0 {
			best.RTTms = float64(d.Microseconds()) / 1000
		}
	}
	return best
}

// Link returns how this plug is connected to p now.
func (n *Node) Link(p peer.ID) Link { return n.links.link(p) }

// relayOf returns the relay of a /p2p-circuit address.
func relayOf(a ma.Multiaddr) (peer.ID, bool) {
	var relay peer.ID
	circuit := false
	ma.ForEach(a, func(c ma.Component) bool {
		switch c.Protocol().Code {
		case ma.P_P2P:
			if !circuit {
				if id, err := peer.IDFromBytes(c.RawValue()); err == nil {
					relay = id
				}
			}
		case ma.P_CIRCUIT:
			circuit = true
			return false
		}
		return true
	})
	return relay, circuit && relay != ""
}

// peerName names a peer for people: a friend by its name, any other plug by
// a short form of its peer ID.
func (n *Node) peerName(p peer.ID) string {
	if f, ok := n.friends.get(p); ok {
		return f.Name
	}
	return ShortID(p)
}

// ShortID is a peer ID shortened for people: its start and its end.
func ShortID(p peer.ID) string {
	s := p.String()
	if len(s) <= 16 {
		return s
	}
	return s[:6] + "…" + s[len(s)-6:]
}

// Reachability says how the internet reaches this plug now.
func (n *Node) Reachability() Reachability {
	n.reachMu.Lock()
	status, since := n.reach, n.reachSince
	n.reachMu.Unlock()
	var relays []RelayRef
	seen := map[peer.ID]bool{}
	var public []string
	for _, a := range n.h.Addrs() {
		if relay, ok := relayOf(a); ok {
			if !seen[relay] {
				seen[relay] = true
				_, friend := n.friends.get(relay)
				relays = append(relays, RelayRef{PeerID: relay.String(), Name: n.peerName(relay), Friend: friend})
			}
			continue
		}
		if manet.IsPublicAddr(a) {
			public = append(public, a.String())
		}
	}
	if ch, ok := n.h.(interface {
		ConfirmedAddrs() ([]ma.Multiaddr, []ma.Multiaddr, []ma.Multiaddr)
	}); ok {
		if reachable, _, _ := ch.ConfirmedAddrs(); len(reachable) > 0 {
			public = addrStrings(reachable)
		}
	}
	slices.SortFunc(relays, func(a, b RelayRef) int {
		if a.Friend != b.Friend {
			if a.Friend {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	internet := len(relays) > 0
	for _, c := range n.h.Network().Conns() {
		if _, relayed := relayOf(c.RemoteMultiaddr()); !relayed && manet.IsPublicAddr(c.RemoteMultiaddr()) {
			internet = true
			break
		}
	}
	switch {
	case status == network.ReachabilityPublic:
		text := "public"
		if len(public) > 0 {
			text = "public, reachable at " + public[0]
		}
		return Reachability{State: "public", Text: text, PublicAddrs: public}
	case len(relays) > 0:
		names := make([]string, len(relays))
		for i, r := range relays {
			names[i] = r.Name
		}
		return Reachability{State: "relayed", Text: "behind NAT, reachable through a relay on " + strings.Join(names, " and "), Relays: relays}
	case !internet:
		return Reachability{State: "lan", Text: "LAN only: no peer on the internet is connected"}
	case status == network.ReachabilityPrivate || time.Since(since) > undecidedAfter:
		return Reachability{State: "private", Text: "behind NAT, no relay yet"}
	}
	return Reachability{State: "unknown", Text: "finding out whether the internet can reach this plug"}
}

// relayCandidates is AutoRelay's peer source: the friends that are publicly
// reachable and offer a relay (they relay for friends without limits); when
// there is none, the DHT peers that offer circuit relay v2, only as many as
// slots are missing, so that no stranger is left waiting as a candidate
// when a friend comes along (AutoRelay picks among candidates at random).
func (n *Node) relayCandidates(ctx context.Context, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, num)
	defer close(out)
	cands := n.friendRelays()
	if len(cands) == 0 {
		missing := relaysWanted - len(n.currentRelays())
		for _, p := range n.dht.RoutingTable().ListPeers() {
			if len(cands) >= missing {
				break
			}
			if n.offersRelay(p) {
				cands = append(cands, p)
			}
		}
	}
	for _, p := range cands {
		if len(out) == num {
			break
		}
		out <- peer.AddrInfo{ID: p, Addrs: n.h.Peerstore().Addrs(p)}
	}
	return out
}

// friendAdded is told of each new friend: when the friend already relays for
// this plug, the slot it holds was given to a stranger (limited), so it is
// taken again, now as a friend's (unlimited).
func (n *Node) friendAdded(p peer.ID) {
	n.h.ConnManager().Protect(p, "friend")
	n.links.kick()
	if !slices.Contains(n.currentRelays(), p) {
		return
	}
	n.goRun(func(ctx context.Context) {
		cctx, cancel := context.WithTimeout(ctx, dialTimeout)
		defer cancel()
		if _, err := relayclient.Reserve(cctx, n.h, peer.AddrInfo{ID: p, Addrs: n.h.Peerstore().Addrs(p)}); err != nil {
			n.log.Debug("could not renew the relay slot at a new friend", "peer", p.String(), "err", err)
			return
		}
		n.log.Info("the relay slot at a new friend's plug now carries everything", "friend", n.peerName(p))
	})
}

// currentRelays returns the plugs that hold a relay slot for this one.
func (n *Node) currentRelays() []peer.ID {
	var out []peer.ID
	all := n.h.Addrs()
	if aa, ok := n.h.(interface{ AllAddrs() []ma.Multiaddr }); ok {
		all = append(all, aa.AllAddrs()...)
	}
	for _, a := range all {
		if r, ok := relayOf(a); ok && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// advertised is the host's address factory: once a friend holds a relay
// slot for this plug, the addresses through strangers' relays are left out.
// A stranger's relay carries only a handshake, and a dialer that picked it
// would wait for a hole punch that may never come (a symmetric NAT); a
// friend's relay carries everything, for anyone.
func (n *Node) advertised(addrs []ma.Multiaddr) []ma.Multiaddr {
	byFriend := slices.ContainsFunc(addrs, func(a ma.Multiaddr) bool {
		r, ok := relayOf(a)
		return ok && n.friends.isFriend(r)
	})
	if !byFriend {
		return addrs
	}
	return slices.DeleteFunc(slices.Clone(addrs), func(a ma.Multiaddr) bool {
		r, ok := relayOf(a)
		return ok && !n.friends.isFriend(r)
	})
}

// friendRelays returns the connected friends that offer a relay: publicly
// reachable ones (a relay service runs only while AutoNAT says public).
func (n *Node) friendRelays() []peer.ID {
	var out []peer.ID
	for _, f := range n.friends.list() {
		if n.h.Network().Connectedness(f.PeerID) == network.Connected && n.offersRelay(f.PeerID) {
			out = append(out, f.PeerID)
		}
	}
	return out
}

// offersRelay reports whether p speaks circuit relay v2 (hop) and has a
// public address.
func (n *Node) offersRelay(p peer.ID) bool {
	protos, err := n.h.Peerstore().SupportsProtocols(p, proto.ProtoIDv2Hop)
	if err != nil || len(protos) == 0 {
		return false
	}
	return slices.ContainsFunc(n.h.Peerstore().Addrs(p), func(a ma.Multiaddr) bool {
		_, relayed := relayOf(a)
		return !relayed && manet.IsPublicAddr(a)
	})
}

// upgradeRelay moves a relay slot from a stranger's plug to a friend's when
// a friend can relay and none does yet: a friend relays a backup, a stranger
// only a handshake. It drops the connection to one stranger relay; AutoRelay
// then asks relayCandidates again, which names the friends.
func (l *links) upgradeRelay(r Reachability) {
	for _, rr := range r.Relays {
		if rr.Friend {
			return
		}
	}
	if len(r.Relays) == 0 || len(l.n.friendRelays()) == 0 {
		return
	}
	l.mu.Lock()
	if time.Since(l.upgraded) < relayUpgradeEvery {
		l.mu.Unlock()
		return
	}
	l.upgraded = time.Now()
	l.mu.Unlock()
	stranger, err := peer.Decode(r.Relays[len(r.Relays)-1].PeerID)
	if err != nil {
		return
	}
	l.n.log.Info("moving a relay slot to a friend's plug", "from", ShortID(stranger))
	l.n.closePeer(stranger)
}

// checkNetwork notices that the plug's own addresses changed (it moved to
// another network, or the router gave it a new address): connections from
// an address it no longer has are dead though no one said so yet, so they
// are closed, friends are dialed again at once, the LAN is told, and the
// rendezvous keys announced again.
func (l *links) checkNetwork() {
	ips, err := localIPs()
	if err != nil {
		return
	}
	key := strings.Join(ips, " ")
	l.mu.Lock()
	old, looked := l.localIPs, l.lookedUp
	l.localIPs, l.lookedUp = key, true
	l.mu.Unlock()
	// A move can pass through no address at all (the cable is out, the
	// interface is being set up): that look is remembered, so the address
	// that comes after it is still a change.
	if !looked || old == key {
		return
	}
	// An address gone (a move, not just a new address beside the old):
	// QUIC's connections, on a socket bound to every address, went out from
	// it too. Their NAT mappings are gone and the peers go on answering the
	// old address; and what those peers observed, the old home's address,
	// would stay this plug's QUIC address, the one a hole punch dials.
	gone := false
	for _, ip := range strings.Fields(old) {
		gone = gone || !slices.Contains(ips, ip)
	}
	closed := 0
	for _, c := range l.n.h.Network().Conns() {
		ip, err := manet.ToIP(c.LocalMultiaddr())
		if err != nil || ip.IsLoopback() {
			continue
		}
		if ip.IsUnspecified() {
			if rip, err := manet.ToIP(c.RemoteMultiaddr()); !gone || err != nil || rip.IsLoopback() {
				continue
			}
		} else if slices.Contains(ips, ip.String()) {
			continue
		}
		l.n.closeConn(c)
		closed++
	}
	// libp2p caches the interface addresses for a minute, and until it
	// looks again it ignores what peers report of connections from the new
	// address: the observed addresses hole punching needs. ListenClose with
	// no address closes nothing and makes the swarm look now.
	sw, _ := l.n.h.Network().(*swarm.Swarm)
	if sw != nil {
		sw.ListenClose()
	}
	if key == "" {
		l.n.log.Info("this plug has lost its network (no address but loopback): it reconnects to friends when it has one", "was", old, "connections_closed", closed)
		return
	}
	l.n.log.Info("this plug's network changed: reconnecting to friends", "was", old, "now", key, "connections_closed", closed)
	if sw != nil {
		// Dials that failed on the old network (or with none) say nothing
		// of the new one, yet the swarm would refuse those addresses for
		// a while.
		for _, p := range l.n.h.Peerstore().Peers() {
			sw.Backoff().Clear(p)
		}
	}
	l.resetBackoff()
	l.mu.Lock()
	clear(l.observed)
	l.mu.Unlock()
	l.n.kickBootstrap()
	if l.n.lan != nil {
		l.n.lan.restart()
	}
	l.n.kickProvide()
}

// localIPs returns the machine's addresses, loopback and link-local left out.
func localIPs() ([]string, error) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list local addresses: %w", err)
	}
	var out []string
	for _, a := range as {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		out = append(out, ipn.IP.String())
	}
	slices.Sort(out)
	return out, nil
}
