package p2p

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/plug-net/plug/store/kv"
)

// DefaultQuota is what a plug gives each friend, and expects from each, until
// the owner changes it: 10 GiB.
const DefaultQuota = 10 << 30

// Friend is a paired plug, as this plug knows it.
type Friend struct {
	PeerID peer.ID `json:"peer_id"`
	Name   string  `json:"name"`
	// Addrs are the friend's last known addresses (multiaddrs).
	Addrs []string `json:"addrs,omitempty"`
	// QuotaGiven is how many bytes this plug holds for the friend at most.
	QuotaGiven int64 `json:"quota_given"`
	// QuotaTaken is how many bytes the friend holds for this plug at most,
	// as the friend last said.
	QuotaTaken int64 `json:"quota_taken"`
	// UsedTaken is how many bytes this plug stores at the friend, as the
	// friend last said.
	UsedTaken int64 `json:"used_taken"`
	// Rendezvous is the friend's rendezvous key: while this plug holds the
	// friend's data it announces rendezvous(friend) in the DHT.
	Rendezvous string    `json:"rendezvous"` // hex
	Added      time.Time `json:"added"`
	LastSeen   time.Time `json:"last_seen,omitzero"`
}

// ErrNotFriend is wrapped when a peer or name is not a paired friend.
var ErrNotFriend error = notFound("not a friend")

// notFound is an error about a friend looked up and not found, or not told
// apart from another. It matches fs.ErrNotExist, as any lookup of a thing
// that is not there.
type notFound string

func (e notFound) Error() string        { return string(e) }
func (e notFound) Is(target error) bool { return target == fs.ErrNotExist }

// friendBook keeps friends in the store, with an in-memory copy that gates
// every /plug/* stream without a disk read.
type friendBook struct {
	db *kv.DB
	mu sync.RWMutex
	m  map[peer.ID]Friend
}

func loadFriends(db *kv.DB) (*friendBook, error) {
	fb := &friendBook{db: db, m: make(map[peer.ID]Friend)}
	err := db.Iterate(kv.Friends, kv.IterOptions{}, func(k, v []byte) error {
		var f Friend
		if err := json.Unmarshal(v, &f); err != nil {
			return fmt.Errorf("friend record %x: %w", k, err)
		}
		fb.m[f.PeerID] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load friends: %w", err)
	}
	return fb, nil
}

// isFriend reports whether p is a paired friend.
func (fb *friendBook) isFriend(p peer.ID) bool {
	fb.mu.RLock()
	_, ok := fb.m[p]
	fb.mu.RUnlock()
	return ok
}

func (fb *friendBook) get(p peer.ID) (Friend, bool) {
	fb.mu.RLock()
	f, ok := fb.m[p]
	fb.mu.RUnlock()
	return f, ok
}

// list returns the friends sorted by name, then peer ID.
func (fb *friendBook) list() []Friend {
	fb.mu.RLock()
	out := make([]Friend, 0, len(fb.m))
	for _, f := range fb.m {
		out = append(out, f)
	}
	fb.mu.RUnlock()
	slices.SortFunc(out, func(a, b Friend) int {
		if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
			return c
		}
		return strings.Compare(string(a.PeerID), string(b.PeerID))
	})
	return out
}

// update applies fn to the friend's record and stores it, synced. With
// create, a missing friend starts from a zero record.
func (fb *friendBook) update(p peer.ID, create bool, fn func(*Friend)) (Friend, error) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	f, ok := fb.m[p]
	if !ok && !create {
		return f, fmt.Errorf("%s: %w", p, ErrNotFriend)
	}
	if !ok {
		f = Friend{PeerID: p, Added: time.Now().UTC(), QuotaGiven: DefaultQuota, QuotaTaken: DefaultQuota}
	}
	fn(&f)
	b, err := json.Marshal(f)
	if err != nil {
		return f, err
	}
	if err := fb.db.PutSync(kv.Friends, []byte(p), b); err != nil {
		return f, fmt.Errorf("save friend %s: %w", p, err)
	}
	fb.m[p] = f
	return f, nil
}

// touch records that a friend was seen now, without a synced write (last
// seen is a hint, not a promise).
func (fb *friendBook) touch(p peer.ID, addrs []string) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	f, ok := fb.m[p]
	if !ok {
		return
	}
	f.LastSeen = time.Now().UTC()
	if len(addrs) > 0 {
		f.Addrs = addrs
	}
	b, err := json.Marshal(f)
	if err != nil {
		return
	}
	if fb.db.Put(kv.Friends, []byte(p), b) == nil {
		fb.m[p] = f
	}
}

func (fb *friendBook) remove(p peer.ID) error {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if _, ok := fb.m[p]; !ok {
		return fmt.Errorf("%s: %w", p, ErrNotFriend)
	}
	if err := fb.db.Delete(kv.Friends, []byte(p)); err != nil {
		return err
	}
	if err := fb.db.Sync(); err != nil {
		return err
	}
	delete(fb.m, p)
	return nil
}

// rendezvousKey returns a friend's rendezvous key.
func (f Friend) rendezvousKey() ([32]byte, bool) {
	var k [32]byte
	b, err := hex.DecodeString(f.Rendezvous)
	if err != nil || len(b) != 32 {
		return k, false
	}
	copy(k[:], b)
	return k, true
}

// FriendStatus is a friend with what is live about it.
type FriendStatus struct {
	Friend
	Online bool `json:"online"`
	// UsedGiven is how many bytes this plug holds for the friend.
	UsedGiven int64 `json:"used_given"`
	// ShardsGiven is how many shards this plug holds for the friend.
	ShardsGiven int `json:"shards_given"`
	// Link is how this plug is connected to the friend now.
	Link Link `json:"link"`
}

// Friends lists the friends with whether each is online and how much this
// plug holds for it.
func (n *Node) Friends() ([]FriendStatus, error) {
	var out []FriendStatus
	for _, f := range n.friends.list() {
		used, shards, err := n.held.Usage(f.PeerID)
		if err != nil {
			return nil, err
		}
		link := n.links.link(f.PeerID)
		out = append(out, FriendStatus{
			Friend:      f,
			Online:      link.Kind != LinkOffline,
			UsedGiven:   used,
			ShardsGiven: shards,
			Link:        link,
		})
	}
	return out, nil
}

// Friend returns one friend.
func (n *Node) Friend(p peer.ID) (Friend, bool) { return n.friends.get(p) }

// IsFriend reports whether p is a paired friend.
func (n *Node) IsFriend(p peer.ID) bool { return n.friends.isFriend(p) }

// FindFriend resolves a friend by peer ID or by name (case-insensitive; an
// ambiguous name is an error).
func (n *Node) FindFriend(who string) (Friend, error) {
	if p, err := peer.Decode(who); err == nil {
		if f, ok := n.friends.get(p); ok {
			return f, nil
		}
		return Friend{}, fmt.Errorf("%s: %w", who, ErrNotFriend)
	}
	var found []Friend
	for _, f := range n.friends.list() {
		if strings.EqualFold(f.Name, who) {
			found = append(found, f)
		}
	}
	switch len(found) {
	case 0:
		return Friend{}, fmt.Errorf("%w: no friend is called %q (see plug friends)", ErrNotFriend, who)
	case 1:
		return found[0], nil
	}
	return Friend{}, notFound(fmt.Sprintf("%d friends are called %q: use the peer ID", len(found), who))
}

// SetQuota sets how many bytes this plug holds for a friend at most. A quota
// below what the friend already uses refuses new shards but deletes nothing.
func (n *Node) SetQuota(p peer.ID, bytes int64) (Friend, error) {
	if bytes < 0 {
		return Friend{}, fmt.Errorf("set quota: %d bytes is negative", bytes)
	}
	f, err := n.friends.update(p, false, func(f *Friend) { f.QuotaGiven = bytes })
	if err != nil {
		return f, err
	}
	n.log.Info("quota changed", "friend", f.Name, "quota_given", humanize.IBytes(uint64(bytes)))
	return f, nil
}

// RemoveFriend unpairs a friend: every /plug protocol refuses it from now on
// and the shards held for it are deleted. It returns the bytes freed.
func (n *Node) RemoveFriend(ctx context.Context, p peer.ID) (int64, error) {
	f, ok := n.friends.get(p)
	if !ok {
		return 0, fmt.Errorf("%s: %w", p, ErrNotFriend)
	}
	if err := n.friends.remove(p); err != nil {
		return 0, err
	}
	n.h.ConnManager().Unprotect(p, "friend")
	freed, err := n.held.DeleteOwner(ctx, p)
	if err != nil {
		return freed, fmt.Errorf("removed %s, but deleting its shards failed: %w", f.Name, err)
	}
	n.log.Info("friend removed", "friend", f.Name, "peer", p.String(), "freed", humanize.IBytes(uint64(freed)))
	return freed, nil
}

// Reachable returns the friends this plug can reach now with a connection
// that carries shards (connecting to each, in parallel, within timeout; see
// Usable), sorted by peer ID.
//
// A friend whose disk said it is full is left out for a while.
func (n *Node) Reachable(ctx context.Context, timeout time.Duration) []Friend {
	fs := n.friends.list()
	ok := make([]bool, len(fs))
	var wg sync.WaitGroup
	for i, f := range fs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			ok[i] = !n.isFull(f.PeerID) && n.Usable(cctx, f.PeerID) == nil
		}()
	}
	wg.Wait()
	var out []Friend
	for i, f := range fs {
		if ok[i] {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b Friend) int { return strings.Compare(string(a.PeerID), string(b.PeerID)) })
	return out
}

// ImportFriends adds friends from a recovered head record. A friend already
// known keeps its record. It returns how many were added.
func (n *Node) ImportFriends(fs []Friend) (int, error) {
	added := 0
	for _, f := range fs {
		if f.PeerID == n.h.ID() || n.friends.isFriend(f.PeerID) {
			continue
		}
		if _, err := n.friends.update(f.PeerID, true, func(x *Friend) {
			added0 := x.Added
			*x = f
			x.PeerID = f.PeerID
			x.Name = cleanName(f.Name)
			if x.Added.IsZero() {
				x.Added = added0
			}
		}); err != nil {
			return added, err
		}
		added++
		n.friendAdded(f.PeerID)
		n.log.Info("friend restored from the head record", "friend", f.Name, "peer", f.PeerID.String())
	}
	return added, nil
}

// OnFriendConnected registers f to be called (in its own goroutine) each
// time a friend connects.
func (n *Node) OnFriendConnected(f func(peer.ID)) {
	n.hookMu.Lock()
	n.onConnect = append(n.onConnect, f)
	n.hookMu.Unlock()
}
