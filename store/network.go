package store

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/plug-net/plug/p2p"
)

// reachTimeout bounds how long a backup waits to reach each friend.
const reachTimeout = 15 * time.Second

// nodeNetwork is the Network of a running plug: its p2p node.
type nodeNetwork struct {
	n          *p2p.Node
	rendezvous [32]byte
}

// NodeNetwork returns the Network of a plug's p2p node; rendezvous is the
// owner's rendezvous key, under which friends announce holding its data.
func NodeNetwork(n *p2p.Node, rendezvous [32]byte) Network {
	return &nodeNetwork{n: n, rendezvous: rendezvous}
}

var _ Holder = (*p2p.FriendTarget)(nil)

func (nn *nodeNetwork) Reachable(ctx context.Context) []Holder {
	var out []Holder
	for _, f := range nn.n.Reachable(ctx, reachTimeout) {
		out = append(out, nn.n.Target(f.PeerID))
	}
	return out
}

func (nn *nodeNetwork) Holder(name string) Holder {
	p, err := peer.Decode(name)
	if err != nil || !nn.n.IsFriend(p) {
		return nil
	}
	return nn.n.Target(p)
}

func (nn *nodeNetwork) Friends() []p2p.Friend {
	fs, err := nn.n.Friends()
	if err != nil {
		return nil
	}
	out := make([]p2p.Friend, len(fs))
	for i, f := range fs {
		out[i] = f.Friend
	}
	return out
}

func (nn *nodeNetwork) ImportFriends(fs []p2p.Friend) (int, error) { return nn.n.ImportFriends(fs) }

func (nn *nodeNetwork) FindHolders(ctx context.Context) []Holder {
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var out []Holder
	for _, pi := range nn.n.FindHolders(fctx, nn.rendezvous, 32) {
		nn.n.Host().Peerstore().AddAddrs(pi.ID, pi.Addrs, peerstore.TempAddrTTL)
		out = append(out, nn.n.Target(pi.ID))
	}
	return out
}
