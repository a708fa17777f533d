package store

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/plug-net/plug/store/head"
	"github.com/plug-net/plug/store/kv"
	"github.com/plug-net/plug/store/seal"
	"github.com/plug-net/plug/store/target"
)

// MaxOverhead is what the default target keeps the data's size on friends'
// disks at or under: n/k ≤ 1.5.
const MaxOverhead = 1.5

// ErrTargetTooHigh is wrapped when the friends cannot meet a redundancy
// target: losing N of them takes at least N+1.
var ErrTargetTooHigh = errors.New("the friends cannot meet this target")

// keyTarget keeps the owner's redundancy target (space kv.Local); absent:
// the default, which follows the number of friends.
var keyTarget = []byte("backup/redundancy-target")

// Redundancy is how many friends the owner can lose, and what it costs.
type Redundancy struct {
	// Target is how many friends (friends in one house count as one) may
	// be lost with nothing lost: m, the parity shards of every pack.
	Target int `json:"target"`
	// Auto is true when the target is the default, which follows the
	// number of friends.
	Auto bool `json:"auto"`
	// K and M are the data and parity shards of a pack with the friends
	// there are (K is 0 when they cannot meet the target).
	K int `json:"k"`
	M int `json:"m"`
	// Friends is how many friends can hold a shard of each pack: at most
	// Target of one house.
	Friends int `json:"friends"`
	// Overhead is n/k: the data takes this many times its size on
	// friends' disks (0 when they cannot meet the target).
	Overhead float64 `json:"overhead"`
	// Pending counts the stored packs not yet re-coded to this shape.
	Pending int `json:"pending"`
}

// DefaultTarget is the target for n friends when the owner chose none: the
// largest m that keeps the overhead n/(n-m) at or under MaxOverhead, and at
// least 1. Three friends give 1, six give 2, nine give 3.
func DefaultTarget(friends int) int {
	return max(1, int(float64(friends)*(1-1/MaxOverhead)+1e-9))
}

// Shape returns k and m for a target over placeable friends (at most
// seal.MaxDataShards data shards); k is 0 when they cannot meet it.
func Shape(targetM, placeable int) (k, m int) {
	return max(0, min(placeable-targetM, seal.MaxDataShards)), targetM
}

// Redundancy returns the target and what it means with the friends there
// are now.
func (r *Repo) Redundancy() (Redundancy, error) {
	red, err := r.shape()
	if err != nil || red.K < 1 {
		return red, err
	}
	packs, err := r.packsToRecode(red)
	red.Pending = len(packs)
	return red, err
}

// shape is Redundancy without the pending count, which reads the whole
// pack table.
func (r *Repo) shape() (Redundancy, error) {
	chosen, err := r.chosenTarget()
	if err != nil {
		return Redundancy{}, err
	}
	friends := r.net.Friends()
	m := chosen
	if m == 0 {
		m = r.autoTarget(len(friends))
	}
	n := len(placeable(friends, houseOf(friends), m))
	k, m := Shape(m, n)
	red := Redundancy{Target: m, Auto: chosen == 0, K: k, M: m, Friends: n}
	if k > 0 {
		red.Overhead = float64(k+m) / float64(k)
	}
	return red, nil
}

// autoTarget is the default target for n friends: DefaultTarget, unless
// Config.M fixes it.
func (r *Repo) autoTarget(n int) int {
	if r.cfg.M > 0 {
		return r.cfg.M
	}
	return DefaultTarget(n)
}

// parity is m for new packs: the owner's target, or the default for the
// friends there are.
func (r *Repo) parity() int {
	red, err := r.shape()
	if err != nil || red.Target < 1 {
		return max(1, r.cfg.M)
	}
	return red.Target
}

// SetRedundancy sets the target (0: back to the default). A target the
// friends cannot meet is refused, saying how many more friends it takes.
// New backups use it at once; the packs already stored are re-coded in the
// background (Recode).
func (r *Repo) SetRedundancy(n int) (Redundancy, error) {
	if n < 0 || n > seal.MaxParityShards {
		return Redundancy{}, fmt.Errorf("%w: a target of %d; choose 1 to %d friends, or auto", ErrTargetTooHigh, n, seal.MaxParityShards)
	}
	if n > 0 {
		friends := r.net.Friends()
		if have := len(placeable(friends, houseOf(friends), n)); have <= n {
			more := n + 1 - have
			return Redundancy{}, fmt.Errorf("%w: losing %d friends and keeping everything takes at least %d friends in different houses, and there are %d: pair with %d more %s (plug invite), or choose a target below %d",
				ErrTargetTooHigh, n, n+1, have, more, plural(more, "friend", "friends"), have)
		}
	}
	var err error
	if n == 0 {
		err = r.db.Delete(kv.Local, keyTarget)
	} else {
		err = r.db.PutSync(kv.Local, keyTarget, []byte(strconv.Itoa(n)))
	}
	if err != nil {
		return Redundancy{}, fmt.Errorf("save the redundancy target: %w", err)
	}
	red, err := r.Redundancy()
	if err != nil {
		return red, err
	}
	r.log.Info("redundancy target set", "target", red.Target, "auto", red.Auto, "k", red.K, "m", red.M, "overhead", fmt.Sprintf("%.2f", red.Overhead))
	r.recodeWanted()
	return red, nil
}

// chosenTarget returns the owner's target, 0 for the default.
func (r *Repo) chosenTarget() (int, error) {
	b, err := r.db.Get(kv.Local, keyTarget)
	if errors.Is(err, kv.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("the saved redundancy target %q is damaged: set it again (plug redundancy set N)", b)
	}
	return n, nil
}

// houseOf maps each friend to its house; a friend whose house is unknown
// is a house of its own.
func houseOf(friends []head.Friend) func(name string) string {
	m := make(map[string]string, len(friends))
	for _, f := range friends {
		if f.House != "" {
			m[f.PeerID] = f.House
		}
	}
	return func(name string) string {
		if h, ok := m[name]; ok {
			return h
		}
		return "friend:" + name
	}
}

// placeable returns the friends that may each hold a shard of one pack:
// at most m of one house (losing a house must not lose more than m
// shards), in the given order.
func placeable(friends []head.Friend, house func(string) string, m int) []string {
	per := map[string]int{}
	var out []string
	for _, f := range friends {
		h := house(f.PeerID)
		if per[h] >= m {
			continue
		}
		per[h]++
		out = append(out, f.PeerID)
	}
	return out
}

// placeHolders keeps, in order, the holders that may each take a shard of
// one pack: at most m of one house. When that leaves too few for a pack,
// all are kept and the shared houses are logged: a backup at risk from a
// fire beats no backup.
func (r *Repo) placeHolders(holders []target.Holder, m int) []target.Holder {
	house := houseOf(r.net.Friends())
	per := map[string]int{}
	var out []target.Holder
	for _, h := range holders {
		k := house(h.Name())
		if per[k] >= m {
			continue
		}
		per[k]++
		out = append(out, h)
	}
	if len(out) >= m+1 || len(out) == len(holders) {
		return out
	}
	r.log.Warn("some friends share a house, and the others are too few to keep each pack safe from losing it: storing on all of them", "houses", strings.Join(r.SharedHouses(), "; "))
	return holders
}

// SharedHouses names the friends that share a house, one entry per house
// ("Bob and Cat"), for the health's words.
func (r *Repo) SharedHouses() []string {
	friends := r.net.Friends()
	by := map[string][]string{}
	for _, f := range friends {
		if f.House != "" {
			by[f.House] = append(by[f.House], nameOr(f))
		}
	}
	var out []string
	for _, names := range by {
		if len(names) > 1 {
			slices.Sort(names)
			out = append(out, joinAnd(names))
		}
	}
	slices.Sort(out)
	return out
}

func nameOr(f head.Friend) string {
	if f.Name != "" {
		return f.Name
	}
	if len(f.PeerID) > 12 {
		return f.PeerID[len(f.PeerID)-8:]
	}
	return f.PeerID
}

func joinAnd(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
