package kv

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/plug-net/plug/store/durable"
)

// Errors that callers test with [errors.Is]. They are always returned wrapped,
// with what was being done.
var (
	// ErrNotFound means the key is not in the space.
	ErrNotFound = errors.New("not found")
	// ErrLocked means another process (or another Open in this one) has the
	// database open: badger allows a single owner per directory.
	ErrLocked = errors.New("database is in use by another process (is another plug running on this data directory?)")
	// ErrClosed means the DB was closed.
	ErrClosed = errors.New("database is closed")
	// ErrTxTooBig means a transaction holds more writes than fit in one commit
	// (see [DB.Update]); write in smaller transactions or with [DB.Batch].
	ErrTxTooBig = errors.New("transaction too big")
	// ErrTooLarge means a key or a value exceeds [MaxKeySize] or
	// [DB.MaxValueSize].
	ErrTooLarge = errors.New("key or value too large")
	// ErrConflict means a read-write transaction kept conflicting with
	// concurrent ones and gave up after several attempts.
	ErrConflict = errors.New("transaction conflict")
	// ErrBadSpace means a space is unknown, or reserved ([Meta]) for a write.
	ErrBadSpace = errors.New("unknown or reserved key space")
	// ErrStop, returned by an iteration callback, ends the iteration early;
	// the iterating call then returns nil.
	ErrStop = errors.New("stop iteration")
)

// Defaults used for zero [Options] fields. They fit a 512 MiB device; see
// [Open] for what each one costs.
const (
	DefaultMemTableSize     = 8 << 20
	DefaultBlockCacheSize   = 4 << 20
	DefaultIndexCacheSize   = 4 << 20
	DefaultValueLogFileSize = 64 << 20
	DefaultValueThreshold   = 4 << 10
	DefaultTableSize        = 1 << 20
)

// MaxKeySize is the longest key a space accepts (badger's 65000-byte limit
// minus the space byte).
const MaxKeySize = 65000 - 1

// formatVersion is the version of the layout of this package's own records.
// Open refuses a database written by a newer version.
const formatVersion = 1

// maxConflictRetries bounds how often Update reruns fn after ErrConflict.
const maxConflictRetries = 10

// Options configure [Open]. The zero value is what the daemon uses.
type Options struct {
	// InMemory keeps everything in memory and nothing on disk (for tests).
	// Values are then limited to [DB.MaxValueSize] (just under 1 MiB).
	InMemory bool

	// SyncWrites makes every commit wait for the disk. The default (false)
	// is fast and survives a killed process but not a power cut; writes that
	// must survive one use [DB.PutSync], [DB.UpdateSync] or [DB.Sync].
	SyncWrites bool

	// Logger receives badger's own messages (compaction trouble, recovery
	// after a crash). Nil, the default, discards them. The daemon may pass
	// an adapter to its slog.Logger.
	Logger Logger

	// MemTableSize is the size of a memtable. Each one is a Go heap arena of
	// about 1.3 × MemTableSize: one is active, and while writes outpace the
	// disk one more is being flushed and two more wait. It also bounds a
	// transaction to about 15% of it. 0 means DefaultMemTableSize (8 MiB).
	MemTableSize int64

	// BlockCacheSize is the size of the table block cache. 0 means
	// DefaultBlockCacheSize (4 MiB); negative means no cache.
	BlockCacheSize int64

	// IndexCacheSize is the size of badger's cache of table indexes, which
	// badger uses only for encrypted tables; the plug's are not encrypted
	// (what they hold is), so their indexes stay in the heap, about 2.5% of
	// the tables. 0 means DefaultIndexCacheSize (4 MiB); negative means no
	// cache.
	IndexCacheSize int64

	// ValueLogFileSize is the size of one value log file, which is also the
	// largest value. 0 means DefaultValueLogFileSize (64 MiB).
	ValueLogFileSize int64

	// ValueThreshold is the size from which a value is kept in the value log
	// rather than in the LSM tree. 0 means DefaultValueThreshold (4 KiB).
	// Ignored in memory, where every value stays in the tree.
	ValueThreshold int64

	// TableSize is the size of every table below level 0. Compaction
	// builds up to ten tables at once, each in a buffer of twice the table's
	// size in the Go heap, so this bounds compaction's memory. 0 means
	// DefaultTableSize (1 MiB; badger's own default, 2 MiB at the first level
	// doubling at each level further down, had compaction hold 60 MB at a
	// million chunks).
	TableSize int64

	// FreeSpace tells the free bytes of the disk under a directory (tests
	// pretend a full disk); nil asks the file system.
	FreeSpace func(dir string) (int64, error)
}

// Logger is the logger badger writes to; badger.Logger has the same methods.
type Logger interface {
	Errorf(format string, args ...any)
	Warningf(format string, args ...any)
	Infof(format string, args ...any)
	Debugf(format string, args ...any)
}

// DB is an open database. Its methods are safe for concurrent use.
type DB struct {
	bdb      *badger.DB
	dir      string // "" in memory
	maxValue int64

	mu     sync.Mutex
	closed bool
	active sync.WaitGroup // calls in progress; Close waits for them

	seqMu sync.Mutex
	seqs  map[string]*badger.Sequence

	evMu sync.Mutex // serializes AppendEvent so that seq order is commit order

	room *room // nil in memory

	stopTrim chan struct{} // closed by Close; nil in memory
	trimDone chan struct{}
}

// trimEvery is how often the pages of the value log that the process
// mapped are given back (badger.DB.TrimMapped): what a burst of writes or
// reads mapped leaves the resident set within this long.
const trimEvery = 500 * time.Millisecond

// trimLoop gives the value log's mapped pages back every trimEvery until
// Close.
func (db *DB) trimLoop() {
	defer close(db.trimDone)
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	for {
		select {
		case <-db.stopTrim:
			return
		case <-t.C:
			db.bdb.TrimMapped()
		}
	}
}

// Open opens or creates the database in dir (the daemon uses DIR/db),
// creating the directory with mode 0700 if needed. With opt.InMemory, dir
// must be "". A directory already open elsewhere gives an error that wraps
// [ErrLocked].
//
// badger's defaults reserve well over 512 MiB (64 MiB memtables × 5, a 256 MiB
// block cache, 1 GiB value log files mapped at twice their size). Open sets
// instead, for a 512 MiB device:
//
//   - memtables of 8 MiB, at most two queued for flushing: the Go heap holds
//     one arena of about 10 MiB when idle, four (about 42 MiB) at worst while
//     writes outpace the disk;
//   - a 4 MiB block cache (blocks are read with pread into the Go heap, see
//     third_party/badger/PLUG-PATCH.md); the tables' indexes and bloom
//     filters stay in the heap, about 2.5% of the tables (2.4 MB at a
//     million chunks);
//   - few level-0 tables (3, stalling writes at 8): fewer tables per read,
//     less memory, compaction kept close behind;
//   - 64 MiB value log files: the one being written is mapped at twice its
//     size, 128 MiB of address space instead of 2 GiB, which a 32-bit board
//     could not map at all;
//   - values from 4 KiB up in the value log: small records (index entries,
//     events, settings) are never rewritten by value log GC, while shards and
//     images are not rewritten by every LSM compaction;
//   - tables of 1 MiB at every level: compaction holds each table it builds
//     in the Go heap (badger's 2, 4, 8 MiB tables down the levels had it
//     hold 60 MB at a million chunks);
//   - two compactors (badger's minimum) and no compression: what we store is
//     mostly encrypted or hashed, random bytes;
//   - conflict detection on, so that read-modify-write transactions (quota
//     accounting) are serializable;
//   - no metrics (process-wide expvar maps) and no logging unless opt.Logger.
func Open(dir string, opt Options) (*DB, error) {
	bopt, maxValue, err := badgerOptions(dir, opt)
	if err != nil {
		return nil, fmt.Errorf("kv: open %s: %w", where(dir), err)
	}
	if !opt.InMemory {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("kv: open %s: %w", dir, err)
		}
	}
	bdb, err := badger.Open(bopt)
	if err != nil {
		if !opt.InMemory && isLockError(dir, err) {
			return nil, fmt.Errorf("kv: open %s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("kv: open %s: %w", where(dir), err)
	}
	db := &DB{bdb: bdb, dir: dir, maxValue: maxValue, seqs: make(map[string]*badger.Sequence)}
	if !opt.InMemory {
		// Room for a value log file being written, the memtables being
		// flushed, and compaction's new tables.
		free := opt.FreeSpace
		if free == nil {
			free = statfsFree
		}
		db.room = &room{dir: dir, reserve: bopt.ValueLogFileSize + 4*bopt.MemTableSize + 32<<20, free: free}
	}
	if err := db.checkFormat(); err != nil {
		_ = bdb.Close()
		return nil, fmt.Errorf("kv: open %s: %w", where(dir), err)
	}
	if !opt.InMemory {
		db.stopTrim, db.trimDone = make(chan struct{}), make(chan struct{})
		go db.trimLoop()
	}
	return db, nil
}

// badgerOptions turns opt into badger's options and returns the largest
// value the database will accept.
func badgerOptions(dir string, opt Options) (badger.Options, int64, error) {
	def := func(v, d int64) int64 {
		if v == 0 {
			return d
		}
		return v
	}
	memTable := def(opt.MemTableSize, DefaultMemTableSize)
	blockCache := max(def(opt.BlockCacheSize, DefaultBlockCacheSize), 0)
	indexCache := max(def(opt.IndexCacheSize, DefaultIndexCacheSize), 0)
	vlogFile := def(opt.ValueLogFileSize, DefaultValueLogFileSize)
	threshold := def(opt.ValueThreshold, DefaultValueThreshold)

	if memTable < 1<<20 {
		return badger.Options{}, 0, fmt.Errorf("memtable size %d is below 1 MiB", memTable)
	}
	// badger refuses a value threshold above 1 MiB or above the largest
	// batch (15% of a memtable).
	maxThreshold := min(1<<20, memTable*15/100)
	if opt.InMemory {
		if dir != "" {
			return badger.Options{}, 0, errors.New("an in-memory database takes no directory")
		}
		// In memory there is no value log: badger refuses values at or above
		// the threshold, so make it as high as it goes.
		threshold = maxThreshold
	}
	if threshold < 1 || threshold > maxThreshold {
		return badger.Options{}, 0, fmt.Errorf("value threshold %d is outside [1, %d]", threshold, maxThreshold)
	}
	if vlogFile < 1<<20 || vlogFile >= 1<<30 {
		return badger.Options{}, 0, fmt.Errorf("value log file size %d is outside [1 MiB, 1 GiB)", vlogFile)
	}
	maxValue := vlogFile
	if opt.InMemory {
		maxValue = threshold - 1
	}

	var logger badger.Logger // nil: badger stays silent
	if opt.Logger != nil {
		logger = opt.Logger
	}
	bdir := dir
	if opt.InMemory {
		bdir = ""
	}
	bopt := badger.DefaultOptions(bdir).
		WithInMemory(opt.InMemory).
		WithSyncWrites(opt.SyncWrites).
		WithLogger(logger).
		WithMetricsEnabled(false).
		WithNumGoroutines(2).
		WithMemTableSize(memTable).
		WithNumMemtables(2).
		WithNumLevelZeroTables(3).
		WithNumLevelZeroTablesStall(8).
		WithBlockCacheSize(blockCache).
		WithIndexCacheSize(indexCache).
		WithCompression(options.None).
		WithValueLogFileSize(vlogFile).
		WithValueThreshold(threshold).
		WithNumCompactors(2).
		WithDetectConflicts(true).
		WithNumVersionsToKeep(1)
	tableSize := def(opt.TableSize, DefaultTableSize)
	if tableSize < 64<<10 || tableSize > 256<<20 {
		return badger.Options{}, 0, fmt.Errorf("table size %d is outside [64 KiB, 256 MiB]", tableSize)
	}
	bopt = bopt.WithBaseTableSize(tableSize)
	bopt.TableSizeMultiplier = 1
	return bopt, maxValue, nil
}

// isLockError reports whether badger failed to open dir because another
// owner holds its lock.
func isLockError(dir string, err error) bool {
	// badger flattens the flock error into text, so ask the lock itself and
	// fall back on badger's message.
	return dirLocked(dir) || strings.Contains(err.Error(), "Cannot acquire directory lock")
}

// checkFormat records the format version in a new database and refuses one
// written by a newer version of this package.
func (db *DB) checkFormat() error {
	key := metaKey("format")
	return db.bdb.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return txn.Set(key, binary.BigEndian.AppendUint32(nil, formatVersion))
		}
		if err != nil {
			return fmt.Errorf("read format version: %w", err)
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return fmt.Errorf("read format version: %w", err)
		}
		if len(v) != 4 {
			return fmt.Errorf("format version record has %d bytes, want 4", len(v))
		}
		if got := binary.BigEndian.Uint32(v); got > formatVersion {
			return fmt.Errorf("database format %d is newer than this program's (%d): upgrade plug", got, formatVersion)
		}
		return nil
	})
}

// Close releases the sequences, flushes and closes the database. It waits
// for calls in progress (so a callback given to View, Update, Batch or
// Iterate must not wait for Close); later calls fail with [ErrClosed].
// Closing twice is harmless.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	db.mu.Unlock()
	db.active.Wait()
	if db.stopTrim != nil {
		close(db.stopTrim)
		<-db.trimDone
	}

	var errs []error
	db.seqMu.Lock()
	for key, seq := range db.seqs {
		if err := seq.Release(); err != nil {
			errs = append(errs, fmt.Errorf("release sequence %q: %w", key[1:], err))
		}
	}
	db.seqs = nil
	db.seqMu.Unlock()
	if err := db.bdb.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kv: close %s: %w", where(db.dir), err)
	}
	return nil
}

// enter registers a call in progress, or fails once the DB is closed.
func (db *DB) enter() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return ErrClosed
	}
	db.active.Add(1)
	return nil
}

// exit ends a call registered by enter.
func (db *DB) exit() { db.active.Done() }

// MaxValueSize returns the largest value the database accepts: the value log
// file size on disk, just under 1 MiB in memory.
func (db *DB) MaxValueSize() int64 { return db.maxValue }

// Get returns a copy of the value under key in space s, or an error wrapping
// [ErrNotFound].
func (db *DB) Get(s Space, key []byte) (val []byte, err error) {
	err = db.View(func(tx *Tx) error {
		val, err = tx.Get(s, key)
		return err
	})
	return val, err
}

// Has reports whether key exists in space s.
func (db *DB) Has(s Space, key []byte) (ok bool, err error) {
	err = db.View(func(tx *Tx) error {
		ok, err = tx.Has(s, key)
		return err
	})
	return ok, err
}

// Put stores val under key in space s. The database keeps its own copy.
func (db *DB) Put(s Space, key, val []byte) error {
	return db.Update(func(tx *Tx) error { return tx.Put(s, key, val) })
}

// PutSync is Put followed by [DB.Sync]: when it returns nil, the write
// survives a power cut.
func (db *DB) PutSync(s Space, key, val []byte) error {
	return db.UpdateSync(func(tx *Tx) error { return tx.Put(s, key, val) })
}

// Delete removes key from space s. Deleting a missing key is not an error.
func (db *DB) Delete(s Space, key []byte) error {
	return db.Update(func(tx *Tx) error { return tx.Delete(s, key) })
}

// View runs fn in a read-only transaction: fn sees one consistent snapshot.
func (db *DB) View(fn func(*Tx) error) error {
	if err := db.enter(); err != nil {
		return fmt.Errorf("kv: view: %w", err)
	}
	defer db.exit()
	txn := db.bdb.NewTransaction(false)
	defer txn.Discard()
	tx := &Tx{db: db, txn: txn}
	defer tx.finish()
	return fn(tx)
}

// Update runs fn in a read-write transaction and commits it: all of fn's
// writes happen, or none when fn returns an error (which Update returns
// unchanged).
//
// When a concurrent transaction wrote a key that fn read, the commit
// conflicts and Update runs fn again on a fresh snapshot, up to 10 times
// before failing with [ErrConflict]: fn must have no effects outside the Tx.
//
// A transaction is meant for a few related records. It holds at most about
// 15% of a memtable (1.2 MiB by default) of keys and small values, and at
// most about 13,000 entries; values of ValueThreshold bytes or more count as
// about 20 bytes each. Beyond that a Tx write fails with [ErrTxTooBig]; load
// bulk data with [DB.Batch].
func (db *DB) Update(fn func(*Tx) error) error {
	if err := db.enter(); err != nil {
		return fmt.Errorf("kv: update: %w", err)
	}
	defer db.exit()
	return db.update(fn)
}

// update is Update for a call already registered with enter.
func (db *DB) update(fn func(*Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := db.updateOnce(fn)
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
		if attempt == maxConflictRetries {
			return fmt.Errorf("kv: update: %d attempts: %w", attempt+1, ErrConflict)
		}
	}
}

func (db *DB) updateOnce(fn func(*Tx) error) error {
	if err := db.room.check(); err != nil {
		return fmt.Errorf("kv: update: %w", err)
	}
	txn := db.bdb.NewTransaction(true)
	defer txn.Discard()
	tx := &Tx{db: db, txn: txn}
	err := fn(tx)
	tx.finish()
	if err != nil {
		return err
	}
	if err := txn.Commit(); err != nil {
		if errors.Is(err, badger.ErrConflict) {
			return err
		}
		return fmt.Errorf("kv: update: commit: %w", mapErr(err))
	}
	return nil
}

// UpdateSync is Update followed by [DB.Sync]: when it returns nil, the
// transaction, and every write committed before it, survives a power cut.
func (db *DB) UpdateSync(fn func(*Tx) error) error {
	if err := db.enter(); err != nil {
		return fmt.Errorf("kv: update: %w", err)
	}
	defer db.exit()
	if err := db.update(fn); err != nil {
		return err
	}
	return db.sync()
}

// Sync makes every write committed so far durable: it survives a power cut,
// not only a killed process. It flushes the value log, the write-ahead log of
// every memtable (badger's own Sync covers only the current one, so a write
// followed by a memtable switch would otherwise stay in the page cache) and
// the directory. In memory it does nothing.
func (db *DB) Sync() error {
	if err := db.enter(); err != nil {
		return fmt.Errorf("kv: sync: %w", err)
	}
	defer db.exit()
	return db.sync()
}

func (db *DB) sync() error {
	if db.dir == "" {
		return nil
	}
	if err := db.bdb.Sync(); err != nil {
		return fmt.Errorf("kv: sync %s: %w", db.dir, err)
	}
	wals, err := filepath.Glob(filepath.Join(db.dir, "*.mem"))
	if err != nil {
		return fmt.Errorf("kv: sync %s: %w", db.dir, err)
	}
	for _, name := range wals {
		if err := syncFile(name); err != nil {
			return fmt.Errorf("kv: sync %s: %w", db.dir, err)
		}
	}
	if err := durable.SyncDir(db.dir); err != nil {
		return fmt.Errorf("kv: sync %s: %w", db.dir, err)
	}
	return nil
}

// syncFile fsyncs a file that badger writes through a shared mapping; one
// that badger removed meanwhile (flushed to a synced table) is skipped.
func syncFile(name string) error {
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// NextSeq returns the next number of the named sequence: 1 first, then
// strictly increasing, across restarts too. Numbers are leased from the
// database in blocks, so a crash may skip some; Close returns the unused
// rest of the block.
func (db *DB) NextSeq(name string) (uint64, error) {
	if err := db.enter(); err != nil {
		return 0, fmt.Errorf("kv: next seq %q: %w", name, err)
	}
	defer db.exit()
	if name == "" {
		return 0, errors.New("kv: next seq: empty name")
	}
	return db.nextSeq(metaKey("seq/" + name))
}

// seqLease is how many numbers a sequence leases per write.
const seqLease = 64

// nextSeq returns the next number of the sequence stored under key.
func (db *DB) nextSeq(key []byte) (uint64, error) {
	db.seqMu.Lock()
	defer db.seqMu.Unlock()
	seq, ok := db.seqs[string(key)]
	if !ok {
		if err := db.room.check(); err != nil {
			return 0, fmt.Errorf("kv: sequence %q: %w", key[1:], err)
		}
		var err error
		seq, err = db.bdb.GetSequence(key, seqLease)
		if err != nil {
			return 0, fmt.Errorf("kv: sequence %q: %w", key[1:], mapErr(err))
		}
		db.seqs[string(key)] = seq
	}
	n, err := seq.Next()
	if err != nil {
		return 0, fmt.Errorf("kv: sequence %q: %w", key[1:], mapErr(err))
	}
	// badger's sequences start at 0; ours start at 1 so that 0 can mean
	// "before the first".
	return n + 1, nil
}

// metaKey is the full key of one of this package's records.
func metaKey(name string) []byte {
	return append([]byte{byte(Meta)}, name...)
}

// mapErr turns badger's sentinel errors into ours.
func mapErr(err error) error {
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return ErrNotFound
	case errors.Is(err, badger.ErrDBClosed), errors.Is(err, badger.ErrBlockedWrites):
		return ErrClosed
	case errors.Is(err, badger.ErrTxnTooBig):
		return ErrTxTooBig
	case errors.Is(err, badger.ErrConflict):
		return ErrConflict
	}
	return err
}

// where names a database in messages.
func where(dir string) string {
	if dir == "" {
		return "(in memory)"
	}
	return dir
}

// fmtKey formats a key for an error message, shortened when long.
func fmtKey(key []byte) string {
	const max = 32
	if len(key) > max {
		return hex.EncodeToString(key[:max]) + "…"
	}
	return hex.EncodeToString(key)
}
