package store

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"sync"
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

// MemTarget is a ShardTarget in memory: the fake for tests and benchmarks.
// It passes the same suite as the network target (store/storetest).
type MemTarget struct {
	name string
	mu   sync.Mutex
	data map[[32]byte][]byte
	down bool
}

var _ ShardTarget = (*MemTarget)(nil)

// NewMemTarget returns an empty in-memory target.
func NewMemTarget(name string) *MemTarget {
	return &MemTarget{name: name, data: make(map[[32]byte][]byte)}
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
	return nil
}

// GetShard returns a copy of the stored bytes.
func (t *MemTarget) GetShard(ctx context.Context, id [32]byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.down {
		return nil, fmt.Errorf("get shard from %s: %w", t.name, ErrTargetDown)
	}
	b, ok := t.data[id]
	if !ok {
		return nil, fmt.Errorf("get shard %x from %s: %w", id[:4], t.name, fs.ErrNotExist)
	}
	return slices.Clone(b), nil
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
	return nil
}

// Tamper replaces the stored bytes of a shard by f(old), for fault tests (a
// friend flipping bits, truncating or substituting). It reports whether the
// shard was there.
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
