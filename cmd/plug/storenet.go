package main

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/plug-net/plug/p2p"
	"github.com/plug-net/plug/store"
	"github.com/plug-net/plug/store/head"
	"github.com/plug-net/plug/store/target"
)

// reachTimeout bounds how long a backup waits to reach each friend.
const reachTimeout = 15 * time.Second

// nodeNetwork is the store's view of the plug's network (store.Network):
// its p2p node, with friends in the head record's terms.
type nodeNetwork struct {
	n          *p2p.Node
	rendezvous [32]byte
}

// newStoreNetwork returns the store.Network of a plug's p2p node;
// rendezvous is the owner's rendezvous key, under which friends announce
// holding its data.
func newStoreNetwork(n *p2p.Node, rendezvous [32]byte) store.Network {
	return &nodeNetwork{n: n, rendezvous: rendezvous}
}

var _ target.Holder = (*p2p.FriendTarget)(nil)

func (nn *nodeNetwork) Reachable(ctx context.Context) []target.Holder {
	var out []target.Holder
	for _, f := range nn.n.Reachable(ctx, reachTimeout) {
		out = append(out, nn.n.Target(f.PeerID))
	}
	return out
}

func (nn *nodeNetwork) Holder(name string) target.Holder {
	p, err := peer.Decode(name)
	if err != nil || !nn.n.IsFriend(p) {
		return nil
	}
	return nn.n.Target(p)
}

func (nn *nodeNetwork) Friends() []head.Friend {
	fs, err := nn.n.Friends()
	if err != nil {
		return nil
	}
	out := make([]head.Friend, len(fs))
	for i, f := range fs {
		out[i] = head.Friend{
			PeerID: f.PeerID.String(), Name: f.Name, Addrs: f.Addrs, QuotaGiven: f.QuotaGiven, QuotaTaken: f.QuotaTaken,
			UsedTaken: f.UsedTaken, Rendezvous: f.Rendezvous, Added: f.Added, LastSeen: f.LastSeen,
			House: nn.n.House(f.PeerID),
		}
	}
	return out
}

func (nn *nodeNetwork) ImportFriends(fs []head.Friend) (int, error) {
	var in []p2p.Friend
	for _, f := range fs {
		p, err := peer.Decode(f.PeerID)
		if err != nil {
			continue // not a peer ID: a damaged record names no one to reach
		}
		in = append(in, p2p.Friend{
			PeerID: p, Name: f.Name, Addrs: f.Addrs, QuotaGiven: f.QuotaGiven, QuotaTaken: f.QuotaTaken,
			UsedTaken: f.UsedTaken, Rendezvous: f.Rendezvous, Added: f.Added, LastSeen: f.LastSeen,
		})
	}
	return nn.n.ImportFriends(in)
}

func (nn *nodeNetwork) FindHolders(ctx context.Context) []target.Holder {
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var out []target.Holder
	for _, pi := range nn.n.FindHolders(fctx, nn.rendezvous, 32) {
		nn.n.Host().Peerstore().AddAddrs(pi.ID, pi.Addrs, peerstore.TempAddrTTL)
		out = append(out, nn.n.Target(pi.ID))
	}
	return out
}
