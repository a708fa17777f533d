package main

import (
	"context"
	"fmt"
	"time"

	"github.com/plug-net/plug/httpui"
	"github.com/plug-net/plug/p2p"
)

// friendsAPI serves the friend book to the API (httpui.FriendsBackend):
// the node's answers in the API's types.
type friendsAPI struct{ node *p2p.Node }

func (f friendsAPI) CreateInvite(ctx context.Context, ttl time.Duration) (httpui.Invite, error) {
	inv, err := f.node.CreateInvite(ttl)
	if err != nil {
		return httpui.Invite{}, err
	}
	return httpui.Invite{Code: inv.Code(), Expires: inv.Expires.UTC()}, nil
}

func (f friendsAPI) AcceptInvite(ctx context.Context, code string, progress func(string)) (httpui.Friend, error) {
	fr, err := f.node.Accept(ctx, code, progress)
	if err != nil {
		return httpui.Friend{}, err
	}
	return f.friend(fr)
}

func (f friendsAPI) Friends(ctx context.Context) ([]httpui.Friend, error) {
	fs, err := f.node.Friends()
	if err != nil {
		return nil, err
	}
	out := make([]httpui.Friend, 0, len(fs))
	for _, fr := range fs {
		out = append(out, friendJSON(fr))
	}
	return out, nil
}

func (f friendsAPI) SetQuota(ctx context.Context, who string, bytes int64) (httpui.Friend, error) {
	fr, err := f.node.FindFriend(who)
	if err != nil {
		return httpui.Friend{}, err
	}
	if _, err := f.node.SetQuota(fr.PeerID, bytes); err != nil {
		return httpui.Friend{}, err
	}
	return f.friend(fr)
}

func (f friendsAPI) RemoveFriend(ctx context.Context, who string) (int64, error) {
	fr, err := f.node.FindFriend(who)
	if err != nil {
		return 0, err
	}
	return f.node.RemoveFriend(ctx, fr.PeerID)
}

// friend returns the friend book's entry of fr as it is now.
func (f friendsAPI) friend(fr p2p.Friend) (httpui.Friend, error) {
	fs, err := f.node.Friends()
	if err != nil {
		return httpui.Friend{}, err
	}
	for _, x := range fs {
		if x.PeerID == fr.PeerID {
			return friendJSON(x), nil
		}
	}
	return httpui.Friend{}, fmt.Errorf("%s is no longer in the friend book (removed meanwhile?): %w", fr.PeerID, p2p.ErrNotFriend)
}

func friendJSON(f p2p.FriendStatus) httpui.Friend {
	return httpui.Friend{
		Name: f.Name, PeerID: f.PeerID.String(), Online: f.Online, LastSeen: f.LastSeen,
		QuotaGiven: f.QuotaGiven, UsedGiven: f.UsedGiven, QuotaTaken: f.QuotaTaken, UsedTaken: f.UsedTaken,
		Addrs: f.Addrs, ShardsGiven: f.ShardsGiven, Added: f.Added,
		Connection: f.Link.Kind, Via: f.Link.Via, RTTms: f.Link.RTTms, LinkAddr: f.Link.Addr, RelayLimited: f.Link.Limited,
	}
}
