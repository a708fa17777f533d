package p2p

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
	gproto "google.golang.org/protobuf/proto"
)

// Relay service limits. Strangers get what a kubo node gives (enough to
// coordinate a hole punch); friends get a relay that carries a backup.
const (
	// friendRelayBuffer is the copy buffer of each direction of a relayed
	// friend connection (go-libp2p's default of 2 KiB costs a system call
	// per 2 KiB at backup speed).
	friendRelayBuffer = 32 << 10
	// friendRelayCircuits bounds the relayed connections of one peer.
	friendRelayCircuits = 16
	// hopMessageMax is the largest hop message read (as go-libp2p's relay).
	hopMessageMax = 4096
	// hopReadTimeout bounds the wait for a hop request.
	hopReadTimeout = time.Minute
)

// relayService is the circuit relay v2 service of a publicly reachable plug.
// It runs two go-libp2p relays behind one /libp2p/circuit/relay/0.2.0/hop
// handler: a limited one for strangers (2 minutes and 128 KiB per relayed
// connection, as kubo's: enough to coordinate hole punching) and an
// unlimited one for friends (a plug behind a router reserves its slot at a
// friend, and anyone can then reach that plug through the friend: its own
// gating decides what they get). go-libp2p's relay has one limit for all,
// hence two. Each reservation is handed to the relay matching the reserving
// peer; each connect request to the relay holding the destination's slot.
//
// It runs while the plug is publicly reachable (AutoNAT says so): a relay
// behind a router would hand out addresses no one can dial.
type relayService struct {
	h        host.Host
	isFriend func(peer.ID) bool
	log      *slog.Logger

	mu        sync.Mutex
	strangers *relay.Relay
	friends   *relay.Relay
	sHandler  network.StreamHandler
	fHandler  network.StreamHandler
	slots     map[peer.ID]relaySlot // who reserved where, until when
}

type relaySlot struct {
	friend  bool
	expires time.Time
}

func newRelayService(h host.Host, isFriend func(peer.ID) bool, log *slog.Logger) *relayService {
	return &relayService{h: h, isFriend: isFriend, log: log, slots: make(map[peer.ID]relaySlot)}
}

// run starts and stops the service as the plug's reachability changes,
// until ctx ends.
func (rs *relayService) run(ctx context.Context) {
	sub, err := rs.h.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		rs.log.Warn("the relay service cannot follow reachability; it stays off", "err", err)
		return
	}
	defer func() { _ = sub.Close() }() // a local event subscription: closing it only stops the events
	defer rs.stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			if e.(event.EvtLocalReachabilityChanged).Reachability == network.ReachabilityPublic {
				if err := rs.start(); err != nil {
					rs.log.Warn("could not start the relay service", "err", err)
				}
			} else {
				rs.stop()
			}
		}
	}
}

// Running reports whether the service is on.
func (rs *relayService) running() bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.friends != nil
}

func (rs *relayService) start() error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.friends != nil {
		return nil
	}
	sh := &captureHost{Host: rs.h}
	strangers, err := relay.New(sh, relay.WithResources(relay.DefaultResources()))
	if err != nil {
		return fmt.Errorf("strangers' relay: %w", err)
	}
	fres := relay.DefaultResources()
	fres.Limit = nil
	fres.BufferSize = friendRelayBuffer
	fres.MaxCircuits = friendRelayCircuits
	fh := &captureHost{Host: rs.h}
	friends, err := relay.New(fh, relay.WithResources(fres), relay.WithACL(friendsACL{rs.isFriend}))
	// On failure below, the relays made never served anyone: closing them
	// is best-effort, and the failure is what start reports.
	if err != nil {
		_ = strangers.Close()
		return fmt.Errorf("friends' relay: %w", err)
	}
	if sh.handler == nil || fh.handler == nil {
		_ = strangers.Close()
		_ = friends.Close()
		return errors.New("the relay registered no hop handler (go-libp2p changed)")
	}
	rs.strangers, rs.friends = strangers, friends
	rs.sHandler, rs.fHandler = sh.handler, fh.handler
	rs.h.SetStreamHandler(proto.ProtoIDv2Hop, rs.handle)
	rs.log.Info("relay service on: this plug is reachable from the internet and relays for its friends (and briefly for others, to help them hole-punch)")
	return nil
}

func (rs *relayService) stop() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.friends == nil {
		return
	}
	rs.h.RemoveStreamHandler(proto.ProtoIDv2Hop)
	if err := errors.Join(rs.strangers.Close(), rs.friends.Close()); err != nil {
		rs.log.Warn("the relay service did not stop cleanly", "err", err)
	}
	rs.strangers, rs.friends, rs.sHandler, rs.fHandler = nil, nil, nil, nil
	clear(rs.slots)
	rs.log.Info("relay service off: this plug is not reachable from the internet")
}

// handle reads the hop request and hands the stream, the request replayed
// in front, to the relay that serves it.
func (rs *relayService) handle(s network.Stream) {
	if err := s.SetReadDeadline(time.Now().Add(hopReadTimeout)); err != nil {
		rs.log.Debug("dropped a relay request: the stream takes no deadline", streamAttrs(s, err)...)
		s.Reset()
		return
	}
	raw, msg, err := readHop(s)
	if err != nil {
		s.Reset()
		return
	}
	if err := s.SetReadDeadline(time.Time{}); err != nil {
		rs.log.Debug("dropped a relay request: the stream takes no deadline", streamAttrs(s, err)...)
		s.Reset()
		return
	}
	forFriend := false
	now := time.Now()
	rs.mu.Lock()
	switch msg.GetType() {
	case pbv2.HopMessage_RESERVE:
		p := s.Conn().RemotePeer()
		forFriend = rs.isFriend(p)
		rs.slots[p] = relaySlot{friend: forFriend, expires: now.Add(time.Hour)}
		for q, sl := range rs.slots {
			if now.After(sl.expires) {
				delete(rs.slots, q)
			}
		}
	case pbv2.HopMessage_CONNECT:
		if dst, err := peer.IDFromBytes(msg.GetPeer().GetId()); err == nil {
			forFriend = rs.slots[dst].friend
		}
	}
	h := rs.sHandler
	if forFriend {
		h = rs.fHandler
	}
	rs.mu.Unlock()
	if h == nil {
		s.Reset()
		return
	}
	h(&replayStream{Stream: s, r: io.MultiReader(bytes.NewReader(raw), s)})
}

// readHop reads one length-delimited hop message without reading past it,
// and returns its bytes (length included) and its content.
func readHop(r io.Reader) ([]byte, *pbv2.HopMessage, error) {
	var raw []byte
	var one [1]byte
	for {
		if _, err := io.ReadFull(r, one[:]); err != nil {
			return nil, nil, err
		}
		raw = append(raw, one[0])
		if one[0] < 0x80 {
			break
		}
		if len(raw) == binary.MaxVarintLen32 {
			return nil, nil, errors.New("hop message length too long")
		}
	}
	n, k := binary.Uvarint(raw)
	if k <= 0 || n > hopMessageMax {
		return nil, nil, fmt.Errorf("hop message of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, nil, err
	}
	var msg pbv2.HopMessage
	if err := gproto.Unmarshal(body, &msg); err != nil {
		return nil, nil, err
	}
	return append(raw, body...), &msg, nil
}

// replayStream is a stream whose first bytes were already read: Read
// returns them again first.
type replayStream struct {
	network.Stream
	r io.Reader
}

func (s *replayStream) Read(p []byte) (int, error) { return s.r.Read(p) }

// captureHost is the host as a relay sees it: the relay's hop handler is
// kept instead of registered, so that relayService can dispatch to it.
type captureHost struct {
	host.Host
	handler network.StreamHandler
}

func (c *captureHost) SetStreamHandler(pid protocol.ID, h network.StreamHandler) {
	if pid == proto.ProtoIDv2Hop {
		c.handler = h
		return
	}
	c.Host.SetStreamHandler(pid, h)
}

func (c *captureHost) RemoveStreamHandler(pid protocol.ID) {
	if pid == proto.ProtoIDv2Hop {
		return
	}
	c.Host.RemoveStreamHandler(pid)
}

// friendsACL lets friends reserve a slot, and lets anyone reach a friend
// that holds one (the friend's own gating then decides what they get).
type friendsACL struct{ isFriend func(peer.ID) bool }

func (a friendsACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool { return a.isFriend(p) }
func (a friendsACL) AllowConnect(_ peer.ID, _ ma.Multiaddr, dst peer.ID) bool {
	return a.isFriend(dst)
}
