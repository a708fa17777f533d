package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/plug-net/plug/chunker"
	"github.com/plug-net/plug/crypto"
	"github.com/plug-net/plug/store/archiver"
	"github.com/plug-net/plug/store/catalog"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/fetch"
	"github.com/plug-net/plug/store/head"
	"github.com/plug-net/plug/store/kv"
	"github.com/plug-net/plug/store/target"
)

// Network is what the Repo needs of the plug's network.
type Network interface {
	// Reachable returns the friends that can be reached now, in placement
	// order.
	Reachable(ctx context.Context) []target.Holder
	// Holder returns a friend by name (peer ID), reachable or not, or nil
	// when it is not a friend.
	Holder(name string) target.Holder
	// Friends returns the friend records, saved in the head record.
	Friends() []head.Friend
	// ImportFriends adds the friends of a recovered head record.
	ImportFriends([]head.Friend) (int, error)
	// FindHolders finds, through the DHT, the plugs that announce holding
	// this owner's data.
	FindHolders(ctx context.Context) []target.Holder
}

// Config configures a Repo.
type Config struct {
	DB     *kv.DB
	Keys   *crypto.Keys
	Net    Network
	Logger *slog.Logger
	// M is the number of friends that may be lost (parity shards per
	// pack), fixed; 0 (what the daemon uses) means the owner's target, or
	// DefaultTarget for the friends there are (Redundancy).
	M int
	// Host is the host name recorded in snapshots.
	Host string
	// State, if set, is the plug's own state, carried by every backup of
	// BackupNow and brought back by RunRecovery.
	State StateSource
	// RecoveringMark is the file that marks a plug made from its recovery
	// words that has not got its backup back yet (RunRecovery removes it).
	RecoveringMark string
	// Parallel bounds the files read at once. 0 means GOMAXPROCS, at
	// least 2. (The packs sent at once are bounded by the pack writer's
	// buffers: see packer.Config.Buffers.)
	Parallel int
}

// Repo is the owner's backup repository: the catalog in the local store and
// the packs on friends' plugs.
type Repo struct {
	host    atomic.Pointer[string] // Config.Host, or the one SetHost gave
	cfg     Config
	db      *kv.DB
	keys    *crypto.Keys
	net     Network
	log     *slog.Logger
	cat     *catalog.Catalog
	keyer   *chunker.IDKeyer
	gear    *[256]uint64
	fetcher *fetch.Fetcher

	// openFile opens a file to back up (a seam for fault tests).
	openFile func(path string) (*archiver.File, error)

	// stateSaved is the state's change count at the last backup that
	// carried it.
	stateSaved atomic.Uint64

	hookMu    sync.Mutex
	onSources []func()

	downloads chan struct{} // slots of OpenFile
	recodeCh  chan struct{} // the target changed
	releaseMu sync.Mutex    // guards keyReleases

	excessMoved sync.Map // friend → when its excess was last moved

	jobs jobLock // one backup, forget, repair or recovery at a time
}

// NewRepo returns the Repo of the owner of cfg.Keys.
func NewRepo(cfg Config) (*Repo, error) {
	if cfg.DB == nil || cfg.Keys == nil || cfg.Net == nil {
		return nil, errors.New("new repo: store, keys and network are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Repo{
		cfg:   cfg,
		db:    cfg.DB,
		keys:  cfg.Keys,
		net:   cfg.Net,
		log:   cfg.Logger.With("component", "backup"),
		cat:   catalog.NewCatalog(cfg.DB),
		keyer: chunker.NewIDKeyer(cfg.Keys.ChunkIDKey()),
		gear:  chunker.GearTable(cfg.Keys.ChunkIDKey()),

		openFile:  archiver.OpenForBackup,
		downloads: make(chan struct{}, maxDownloads),
		recodeCh:  make(chan struct{}, 1),
	}
	r.host.Store(&cfg.Host)
	r.fetcher = fetch.New(func(name string) target.ShardTarget {
		if h := r.net.Holder(name); h != nil {
			return h
		}
		return nil
	}, cfg.Keys.AgeIdentity())
	return r, nil
}

// Catalog returns the Repo's catalog.
func (r *Repo) Catalog() *catalog.Catalog { return r.cat }

// lock takes the job lock for what: it waits for a step of background
// work to end, and fails at once with ErrBusy while another job runs.
func (r *Repo) lock(ctx context.Context, what string) (func(), error) {
	return r.jobs.lock(ctx, what)
}

// lockStep takes the job lock for a step of background work that yields
// to jobs (see jobLock), or fails at once with ErrBusy.
func (r *Repo) lockStep(what string) (func(), error) { return r.jobs.lockStep(what) }

// saveSnapshot records a snapshot, synced: everything it refers to was
// indexed before, and the sync makes that durable too.
func (r *Repo) saveSnapshot(s data.Snapshot) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := r.db.PutSync(kv.Snapshots, s.ID[:], b); err != nil {
		return fmt.Errorf("save snapshot %s: %w", s.ID.Short(), err)
	}
	return r.markDirty()
}

// Snapshots returns the snapshots, oldest first.
func (r *Repo) Snapshots() ([]data.Snapshot, error) {
	var out []data.Snapshot
	err := r.db.Iterate(kv.Snapshots, kv.IterOptions{}, func(_, v []byte) error {
		var s data.Snapshot
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("damaged snapshot record: %w", err)
		}
		out = append(out, s)
		return nil
	})
	slices.SortFunc(out, func(a, b data.Snapshot) int { return a.Time.Compare(b.Time) })
	return out, err
}

// ErrNoSnapshot is wrapped when a snapshot cannot be found.
var ErrNoSnapshot = errors.New("no such snapshot")

// FindSnapshot resolves "latest" or a snapshot ID or unique ID prefix.
func (r *Repo) FindSnapshot(ref string) (data.Snapshot, error) {
	all, err := r.Snapshots()
	if err != nil {
		return data.Snapshot{}, err
	}
	if ref == "latest" {
		for i := len(all) - 1; i >= 0; i-- {
			if !all[i].StateOnly() {
				return all[i], nil
			}
		}
		return data.Snapshot{}, fmt.Errorf("%w: there are no snapshots yet (run plug backup PATH)", ErrNoSnapshot)
	}
	ref = strings.ToLower(ref)
	var found []data.Snapshot
	for _, s := range all {
		if strings.HasPrefix(s.ID.String(), ref) && !s.StateOnly() {
			found = append(found, s)
		}
	}
	switch {
	case len(ref) < 4:
		return data.Snapshot{}, fmt.Errorf("%w: give at least 4 characters of the snapshot ID (see plug snapshots)", ErrNoSnapshot)
	case len(found) == 0:
		return data.Snapshot{}, fmt.Errorf("%w: %q (see plug snapshots)", ErrNoSnapshot, ref)
	case len(found) > 1:
		return data.Snapshot{}, fmt.Errorf("%w: %q matches %d snapshots; give more of the ID", ErrNoSnapshot, ref, len(found))
	}
	return found[0], nil
}

// Local state keys (space kv.Local).
var (
	keyDirty   = []byte("dirty")    // the catalog changed since the last head record
	keyHeadVer = []byte("head-ver") // version of the last head record made
)

func (r *Repo) markDirty() error { return r.db.Put(kv.Local, keyDirty, []byte{1}) }

// Dirty reports whether the catalog changed since the last head record.
func (r *Repo) Dirty() bool {
	ok, _ := r.db.Has(kv.Local, keyDirty)
	return ok
}

// SetHost names the machine in the snapshots made from now on (a plug
// renamed in its setup).
func (r *Repo) SetHost(host string) { r.host.Store(&host) }
