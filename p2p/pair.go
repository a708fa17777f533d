package p2p

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/plug-net/plug/p2p/invite"
	"github.com/plug-net/plug/store/kv"
)

// DefaultInviteTTL is how long an invite stays valid.
const DefaultInviteTTL = 24 * time.Hour

// inviteRecord is what the inviter keeps of an invite, under the hash of its
// secret (never the secret itself).
type inviteRecord struct {
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	UsedBy  string    `json:"used_by,omitempty"`
	UsedAt  time.Time `json:"used_at,omitzero"`
}

// CreateInvite makes a one-time invite valid for ttl (DefaultInviteTTL if 0)
// with this plug's current addresses.
func (n *Node) CreateInvite(ttl time.Duration) (invite.Invite, error) {
	if ttl <= 0 {
		ttl = DefaultInviteTTL
	}
	now := time.Now()
	inv, err := invite.New(n.h.ID(), n.h.Addrs(), ttl, now)
	if err != nil {
		return inv, fmt.Errorf("create invite: %w", err)
	}
	h := inv.SecretHash()
	b, _ := json.Marshal(inviteRecord{Created: now.UTC(), Expires: inv.Expires.UTC()})
	if err := n.db.PutSync(kv.Invites, h[:], b); err != nil {
		return inv, fmt.Errorf("create invite: %w", err)
	}
	n.log.Info("invite created", "expires", inv.Expires.Format(time.RFC3339))
	return inv, nil
}

// acceptWait bounds how long Accept keeps trying to reach the inviter: a
// plug behind a home router may still be taking a relay slot, and a hole
// punch takes a few seconds.
const acceptWait = 60 * time.Second

// acceptRetry is the pause between two attempts of Accept.
const acceptRetry = 3 * time.Second

// Accept redeems an invite code: it dials the inviter (at the addresses in
// the code, relayed ones included, else through the DHT), and returns once
// both plugs list each other as friends. It keeps trying for up to a minute
// while the inviter cannot be reached, telling progress what it waits for.
func (n *Node) Accept(ctx context.Context, code string, progress func(string)) (Friend, error) {
	inv, err := invite.Parse(code)
	if err != nil {
		return Friend{}, err
	}
	if inv.Inviter == n.h.ID() {
		return Friend{}, invite.ErrOwn
	}
	if inv.Expired(time.Now()) {
		return Friend{}, fmt.Errorf("%w (it expired at %s)", invite.ErrExpired, inv.Expires.Local().Format(time.DateTime))
	}
	say := func(string) {}
	if progress != nil {
		last := ""
		say = func(msg string) {
			if msg != last {
				last = msg
				progress(msg)
			}
		}
	}
	n.h.Peerstore().AddAddrs(inv.Inviter, inv.Addrs, peerstore.TempAddrTTL)
	relayed := 0
	for _, a := range inv.Addrs {
		if _, ok := relayOf(a); ok {
			relayed++
		}
	}
	who := ShortID(inv.Inviter)
	switch {
	case len(inv.Addrs) == 0:
		say(fmt.Sprintf("looking for the inviting plug %s in the DHT (the invite names no address)", who))
	case relayed > 0:
		say(fmt.Sprintf("reaching the inviting plug %s (behind a home router: through its relay, then hole punching)", who))
	default:
		say(fmt.Sprintf("reaching the inviting plug %s at %d address(es)", who, len(inv.Addrs)))
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, acceptWait)
	defer cancel()
	for {
		f, retry, err := n.pairWith(wctx, inv)
		if !retry {
			return f, err
		}
		if ctx.Err() != nil {
			return Friend{}, ctx.Err()
		}
		if wctx.Err() != nil {
			return Friend{}, fmt.Errorf("cannot reach the inviting plug %s within %v: %w; check that it is running and online, then try again", inv.Inviter, acceptWait, err)
		}
		say(fmt.Sprintf("still trying after %v: %s", time.Since(start).Round(time.Second), waitReason(err, relayed > 0)))
		if !sleep(wctx, acceptRetry) && ctx.Err() != nil {
			return Friend{}, ctx.Err()
		}
	}
}

// waitReason says for people why Accept is still waiting.
func waitReason(err error, relayed bool) string {
	var ue *unreachableError
	switch {
	case errors.As(err, &ue) && relayed:
		return "the inviting plug answers neither directly nor through its relay yet, and the DHT does not know where it is (its relay slot may still be settling)"
	case errors.As(err, &ue):
		return "the inviting plug does not answer at its addresses, and the DHT does not know where it is yet (it may be starting, or offline)"
	case errors.Is(err, ErrLimitedOnly):
		return "reached through a relay; waiting for a hole punch"
	}
	return shortErr(err)
}

// pairWith makes one attempt to redeem inv; retry says whether the failure
// may pass (the inviter could not be reached) rather than be final.
func (n *Node) pairWith(ctx context.Context, inv invite.Invite) (f Friend, retry bool, err error) {
	if err := n.Connect(ctx, inv.Inviter); err != nil {
		return Friend{}, true, err
	}
	// Pairing is a few hundred bytes: a stranger's limited relay carries it.
	sctx := network.WithAllowLimitedConn(ctx, "pairing")
	s, err := n.h.NewStream(sctx, inv.Inviter, protocol.ID(ProtoPair))
	if err != nil {
		return Friend{}, true, fmt.Errorf("open a pairing stream: %w", err)
	}
	defer closeStream(n.log, s)
	if err := setDeadline(s, time.Now().Add(30*time.Second)); err != nil {
		return Friend{}, true, fmt.Errorf("open a pairing stream: %w", err)
	}
	rdv := n.cfg.Rendezvous
	req := pairRequest{Secret: hex.EncodeToString(inv.Secret[:]), Name: n.Name(), Rendezvous: hex.EncodeToString(rdv[:]), Quota: DefaultQuota}
	if err := writeMsg(s, req); err != nil {
		return Friend{}, true, fmt.Errorf("send the pairing request: %w", err)
	}
	b, err := readFrame(s, MaxControl)
	if err != nil {
		return Friend{}, true, fmt.Errorf("no answer to the pairing request: %w", err)
	}
	resp, theirRdv, err := decodePairResponse(b)
	if err != nil {
		return Friend{}, false, fmt.Errorf("pair with %s: %w", inv.Inviter, err)
	}
	if !resp.OK {
		switch resp.Code {
		case codeUsed:
			return Friend{}, false, invite.ErrUsed
		case codeExpired:
			return Friend{}, false, invite.ErrExpired
		case codeUnknown:
			return Friend{}, false, invite.ErrUnknown
		}
		return Friend{}, false, fmt.Errorf("pair with %s: refused: %s", inv.Inviter, resp.Msg)
	}
	addrs := addrStrings(n.h.Peerstore().Addrs(inv.Inviter))
	f, err = n.friends.update(inv.Inviter, true, func(f *Friend) {
		f.Name = nameOr(resp.Name, inv.Inviter)
		f.Rendezvous = hex.EncodeToString(theirRdv[:])
		f.QuotaTaken = resp.Quota
		f.Addrs = addrs
		f.LastSeen = time.Now().UTC()
	})
	if err != nil {
		return f, false, err
	}
	n.h.Peerstore().AddAddrs(inv.Inviter, n.h.Peerstore().Addrs(inv.Inviter), peerstore.PermanentAddrTTL)
	n.log.Info("paired with a friend", "friend", f.Name, "peer", f.PeerID.String(), "role", "accepted their invite", "link", n.Link(f.PeerID).String())
	n.friendAdded(f.PeerID)
	n.runConnectHooks(f.PeerID) // the new friend is online: protocols above catch up now
	return f, false, nil
}

func nameOr(name string, p peer.ID) string {
	if name != "" {
		return name
	}
	s := p.String()
	return "plug-" + s[len(s)-6:]
}

// handlePair redeems an invite for a peer that is not yet a friend: the only
// /plug protocol a stranger may use, and only with a live invite's secret.
func (n *Node) handlePair(s network.Stream) {
	defer closeStream(n.log, s)
	remote := s.Conn().RemotePeer()
	if err := setDeadline(s, time.Now().Add(30*time.Second)); err != nil {
		n.log.Warn("dropped a pairing request", "peer", remote.String(), "err", err)
		return
	}
	fail := func(code, msg string) {
		n.reply(s, pairResponse{response: response{Code: code, Msg: msg}})
	}
	b, err := readFrame(s, MaxControl)
	if err != nil {
		s.Reset()
		return
	}
	req, secret, theirRdv, err := decodePairRequest(b)
	if err != nil {
		fail(codeBadRequest, err.Error())
		return
	}
	h := invite.Invite{Secret: secret}.SecretHash()
	var rec inviteRecord
	now := time.Now()
	err = n.db.Update(func(tx *kv.Tx) error {
		v, err := tx.Get(kv.Invites, h[:])
		if err != nil {
			return err
		}
		if err := json.Unmarshal(v, &rec); err != nil {
			return err
		}
		if rec.UsedBy != "" {
			if rec.UsedBy == remote.String() {
				return nil // the same friend again (a retry): answer as before
			}
			return invite.ErrUsed
		}
		if now.After(rec.Expires) {
			return invite.ErrExpired
		}
		rec.UsedBy, rec.UsedAt = remote.String(), now.UTC()
		nb, _ := json.Marshal(rec)
		return tx.Put(kv.Invites, h[:], nb)
	})
	switch {
	case errors.Is(err, kv.ErrNotFound):
		n.Refused(remote, "pairing with an unknown invite")
		fail(codeUnknown, "unknown invite")
		return
	case errors.Is(err, invite.ErrUsed):
		n.Refused(remote, "pairing with an invite already used")
		fail(codeUsed, "invite already used")
		return
	case errors.Is(err, invite.ErrExpired):
		n.Refused(remote, "pairing with an expired invite")
		fail(codeExpired, "invite expired")
		return
	case err != nil:
		n.log.Error("pairing failed", "peer", remote.String(), "err", err)
		fail(codeInternal, "internal error")
		return
	}
	addrs := addrStrings(n.h.Peerstore().Addrs(remote)) // from identify
	if len(addrs) == 0 {
		addrs = []string{s.Conn().RemoteMultiaddr().String()}
	}
	f, err := n.friends.update(remote, true, func(f *Friend) {
		f.Name = nameOr(req.Name, remote)
		f.Rendezvous = hex.EncodeToString(theirRdv[:])
		f.QuotaTaken = req.Quota
		f.Addrs = addrs
		f.LastSeen = now.UTC()
	})
	if err != nil {
		n.log.Error("pairing failed", "peer", remote.String(), "err", err)
		fail(codeInternal, "internal error")
		return
	}
	if err := n.db.Sync(); err != nil {
		// The invite's use may not survive a power cut, so pairing is
		// refused: accepting the same invite again finds it used by the
		// same friend and answers as before.
		n.log.Error("pairing failed: could not save the invite's use to disk", "peer", remote.String(), "err", err)
		fail(codeInternal, "the inviter's plug could not save the pairing; accept the invite again")
		return
	}
	// The new friend is online: protocols above catch up, once it has
	// recorded this plug too (it does on reading the answer below).
	n.goRun(func(ctx context.Context) {
		if sleep(ctx, 2*time.Second) {
			n.runConnectHooks(remote)
		}
	})
	n.friendAdded(remote)
	rdv := n.cfg.Rendezvous
	n.reply(s, pairResponse{
		response:   response{OK: true, Quota: f.QuotaGiven},
		Name:       n.Name(),
		Rendezvous: hex.EncodeToString(rdv[:]),
	})
	n.h.Peerstore().AddAddrs(remote, []ma.Multiaddr{s.Conn().RemoteMultiaddr()}, peerstore.PermanentAddrTTL)
	n.log.Info("paired with a friend", "friend", f.Name, "peer", remote.String(), "role", "redeemed our invite")
}
