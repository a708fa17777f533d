package target

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"

	"github.com/plug-net/plug/p2p/headrec"
	"github.com/plug-net/plug/p2p/proof"
)

// ShardTarget is where shards go and come back from: a friend's plug over the
// network in the daemon, memory in tests. Shard IDs are plain [32]byte so that
// implementations below this package need not import it.
//
// Errors for a shard the target does not hold wrap fs.ErrNotExist.
type ShardTarget interface {
	// Name identifies the target to people and in the catalog (for a friend,
	// its peer ID).
	Name() string
	// PutShard stores a shard. A nil error means the shard is durable (synced
	// to disk at the friend): the pack may then be indexed.
	PutShard(ctx context.Context, id [32]byte, data []byte) error
	// GetShard returns a shard's bytes, unchecked: callers check them against
	// the ID.
	GetShard(ctx context.Context, id [32]byte) ([]byte, error)
	// HasShard reports whether the target holds the shard.
	HasShard(ctx context.Context, id [32]byte) (bool, error)
	// DeleteShard removes a shard; deleting a missing shard is not an error.
	DeleteShard(ctx context.Context, id [32]byte) error
}

// Holder is a friend's plug as the store uses it: a ShardTarget that can also
// prove it holds a shard and keep the owner's head record.
type Holder interface {
	ShardTarget
	// Prove returns bytes [offset, offset+length) of a shard of the given
	// size, checked against its ID through their Bao proof.
	Prove(ctx context.Context, id [32]byte, size int64, offset, length uint64) ([]byte, error)
	PutHead(ctx context.Context, env []byte) error
	// GetHead returns the head envelope the holder keeps for the owner; an
	// error wrapping fs.ErrNotExist means none.
	GetHead(ctx context.Context) ([]byte, error)
	// Usage asks how many bytes the holder gives the owner at most and how
	// many the owner uses there.
	Usage(ctx context.Context) (quota, used int64, shards int, err error)
}

// ErrTooFewFriends is wrapped when there are not enough reachable friends
// (targets) to keep everything when the wanted number of them may be lost.
var ErrTooFewFriends = errors.New("too few friends")

// MemTarget is a ShardTarget in memory: the fake for tests and benchmarks.
// It passes the same suite as the network target (store/storetest).
type MemTarget struct {
	name  string
	mu    sync.Mutex
	data  map[[32]byte][]byte
	sizes map[[32]byte]int // each shard's size when put, as a holder records it
	head  []byte
	down  bool
	quota int64 // 0: no limit
}

var _ Holder = (*MemTarget)(nil)

// NewMemTarget returns an empty in-memory target.
func NewMemTarget(name string) *MemTarget {
	return &MemTarget{name: name, data: make(map[[32]byte][]byte), sizes: make(map[[32]byte]int)}
}

// Name returns the target's name.
func (t *MemTarget) Name() string { return t.name }

// ErrTargetDown is returned by a MemTarget set down with SetDown.
var ErrTargetDown = fmt.Errorf("target is offline")

// SetDown makes every call fail, as an offline friend would.
func (t *MemTarget) SetDown(down bool) {
	t.mu.Lock()
	t.down = down
	t.mu.Unlock()
}

// PutShard stores a copy of data.
func (t *MemTarget) PutShard(ctx context.Context, id [32]byte, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.down {
		return fmt.Errorf("put shard to %s: %w", t.name, ErrTargetDown)
	}
	t.data[id] = slices.Clone(data)
	t.sizes[id] = len(data)
	return nil
}

// held returns a shard's bytes as a friend's holdstore would: a shard whose
// bytes no longer have the size it was put with (truncated, as a damaged
// disk leaves it) is answered with an error wrapping [proof.ErrCorrupt],
// never sent short. t.mu is held.
func (t *MemTarget) held(id [32]byte) ([]byte, error) {
	b, ok := t.data[id]
	if !ok {
		return nil, fs.ErrNotExist
	}
	if len(b) != t.sizes[id] {
		return nil, fmt.Errorf("%w: %d bytes, the shard has %d", proof.ErrCorrupt, len(b), t.sizes[id])
	}
	return b, nil
}

// GetShard returns a copy of the stored bytes.
func (t *MemTarget) GetShard(ctx context.Context, id [32]byte) ([]byte, error) {
	return t.GetShardInto(ctx, id, nil)
}

// GetShardInto copies the stored bytes into buf's memory when it is large
// enough, else into a new buffer.
func (t *MemTarget) GetShardInto(ctx context.Context, id [32]byte, buf []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.down {
		return nil, fmt.Errorf("get shard from %s: %w", t.name, ErrTargetDown)
	}
	b, err := t.held(id)
	if err != nil {
		return nil, fmt.Errorf("get shard %x from %s: %w", id[:4], t.name, err)
	}
	return append(buf[:0], b...), nil
}

// HasShard reports whether the shard is stored.
func (t *MemTarget) HasShard(ctx context.Context, id [32]byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.down {
		return false, fmt.Errorf("has shard at %s: %w", t.name, ErrTargetDown)
	}
	_, ok := t.data[id]
	return ok, nil
}

// DeleteShard removes the shard.
func (t *MemTarget) DeleteShard(ctx context.Context, id [32]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.down {
		return fmt.Errorf("delete shard at %s: %w", t.name, ErrTargetDown)
	}
	delete(t.data, id)
	delete(t.sizes, id)
	return nil
}

// Tamper replaces the stored bytes of a shard by f(old), for fault tests (a
// friend flipping bits, truncating or substituting). It reports whether the
// shard was there. A shard whose size f changed is then answered as corrupt,
// as a friend's holdstore answers for a truncated file.
func (t *MemTarget) Tamper(id [32]byte, f func([]byte) []byte) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.data[id]
	if ok {
		t.data[id] = f(b)
	}
	return ok
}

// Len returns the number of shards stored and their total size.
func (t *MemTarget) Len() (n int, bytes int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, b := range t.data {
		n++
		bytes += int64(len(b))
	}
	return n, bytes
}

// SetQuota sets what the target gives its owner (0: no limit).
func (t *MemTarget) SetQuota(n int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.quota = n
}

// Usage answers from memory: the quota set (or a large one) and the bytes
// held.
func (t *MemTarget) Usage(ctx context.Context) (quota, used int64, shards int, err error) {
	shards, used = t.Len()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.down {
		return 0, 0, 0, fmt.Errorf("usage at %s: %w", t.name, ErrTargetDown)
	}
	quota = t.quota
	if quota == 0 {
		quota = 1 << 50
	}
	return quota, used, shards, nil
}

// Prove answers a proof of storage from memory, checked as the network
// target checks a friend's answer.
func (t *MemTarget) Prove(ctx context.Context, id [32]byte, size int64, offset, length uint64) ([]byte, error) {
	t.mu.Lock()
	b, err := t.held(id)
	down := t.down
	t.mu.Unlock()
	if down {
		return nil, fmt.Errorf("prove at %s: %w", t.name, ErrTargetDown)
	}
	if err != nil {
		return nil, fmt.Errorf("prove shard %x at %s: %w", id[:4], t.name, err)
	}
	slice, err := proof.FromBytes(b, offset, length)
	if err != nil {
		return nil, fmt.Errorf("prove shard %x at %s: %w", id[:4], t.name, err)
	}
	return proof.Verify(id, uint64(size), offset, length, slice)
}

// PutHead keeps a head envelope, the newest version only.
func (t *MemTarget) PutHead(ctx context.Context, env []byte) error {
	h, err := headrec.Open(env)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.down {
		return fmt.Errorf("put head at %s: %w", t.name, ErrTargetDown)
	}
	if t.head != nil {
		if old, err := headrec.Open(t.head); err == nil && old.Version >= h.Version {
			return nil
		}
	}
	t.head = slices.Clone(env)
	return nil
}

// GetHead returns the kept head envelope.
func (t *MemTarget) GetHead(ctx context.Context) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.down {
		return nil, fmt.Errorf("get head at %s: %w", t.name, ErrTargetDown)
	}
	if t.head == nil {
		return nil, fmt.Errorf("get head at %s: %w", t.name, fs.ErrNotExist)
	}
	return slices.Clone(t.head), nil
}

// Wipe forgets every shard and the head record, as a friend whose disk died.
func (t *MemTarget) Wipe() {
	t.mu.Lock()
	t.data = make(map[[32]byte][]byte)
	t.sizes = make(map[[32]byte]int)
	t.head = nil
	t.mu.Unlock()
}

// IDs returns the IDs of the shards held.
func (t *MemTarget) IDs() [][32]byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([][32]byte, 0, len(t.data))
	for id := range t.data {
		out = append(out, id)
	}
	return out
}
