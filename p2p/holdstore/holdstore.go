package holdstore

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/libp2p/go-libp2p/core/peer"
	"lukechampine.com/blake3/bao"

	"github.com/plug-net/plug/p2p/proof"
	"github.com/plug-net/plug/store/durable"
	"github.com/plug-net/plug/store/kv"
)

// Errors that callers test with [errors.Is]. They are always returned
// wrapped, with what was being done.
var (
	// ErrQuota means a shard does not fit in what this plug gives its owner.
	ErrQuota = errors.New("quota exceeded")
	// ErrMismatch means the bytes of a shard do not hash to its ID.
	ErrMismatch = errors.New("shard bytes do not match the shard ID")
	// ErrTooLarge means a shard is larger than [proof.MaxShardSize].
	ErrTooLarge = errors.New("shard too large")
)

// tmpPrefix starts the names of the temporary files of puts in progress.
const tmpPrefix = ".put-"

// obaoExt ends the names of the outboard tree files.
const obaoExt = ".obao"

// Store holds friends' shards in a directory and their metadata in kv. Its
// methods are safe for concurrent use.
type Store struct {
	dir string
	db  *kv.DB

	mu     sync.Mutex
	owners map[peer.ID]*ownerState
}

// ownerState serializes the changes to one owner's shards and accounting,
// and counts the bytes of its puts in progress.
type ownerState struct {
	mu       sync.Mutex
	reserved int64 // bytes of puts that passed the quota check, not yet recorded
}

// OwnerUsage is what one owner uses.
type OwnerUsage struct {
	Owner  peer.ID
	Used   int64 // bytes
	Shards int
}

// Open opens the store in dir (the daemon uses DIR/shards), creating it with
// mode 0700 if needed, with its metadata in db. It repairs what a crash or a
// damaged disk left (see [Repair]) before returning, and reports it. The
// Store does not own db: close db after the last call to the Store.
func Open(dir string, db *kv.DB) (*Store, Repair, error) {
	if db == nil {
		return nil, Repair{}, errors.New("holdstore: open: no database")
	}
	if err := mkdirSynced(dir); err != nil {
		return nil, Repair{}, fmt.Errorf("holdstore: open %s: %w", dir, err)
	}
	s := &Store{dir: dir, db: db, owners: make(map[peer.ID]*ownerState)}
	rep, err := s.repair()
	if err != nil {
		return nil, rep, fmt.Errorf("holdstore: open %s: %w", dir, err)
	}
	return s, rep, nil
}

// Path returns the name of the file that holds the body of a shard, whether
// or not the store holds it. It is for tests and diagnostics (damaging a
// file simulates a failing disk); callers read shards with [Store.Open].
func (s *Store) Path(owner peer.ID, id [32]byte) string {
	return filepath.Join(s.ownerDir(owner), hex.EncodeToString(id[:]))
}

// Put stores a shard for owner: exactly size bytes read from r, which must
// hash to id. It returns nil once the shard is on disk and recorded, synced.
//
// The quota check comes before any byte is read: when the owner's bytes in
// use, plus those of its puts in progress, plus size exceed quota, Put fails
// with [ErrQuota]. A shard larger than [MaxShardSize] fails with
// [ErrTooLarge], bytes that do not hash to id with [ErrMismatch], a reader
// that ends early with [io.ErrUnexpectedEOF]; then nothing is kept.
//
// Put never reads past size bytes, so r may be a stream that carries more
// messages after the shard. A shard already held is not stored twice: Put
// returns nil without reading r.
func (s *Store) Put(ctx context.Context, owner peer.ID, id [32]byte, size int64, r io.Reader, quota int64) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("holdstore: put shard %s for %s: %w", shortID(id), owner, err)
		}
	}()
	if err := checkOwner(owner); err != nil {
		return err
	}
	switch {
	case size > proof.MaxShardSize:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, size, proof.MaxShardSize)
	case size < 1:
		return fmt.Errorf("%w: a shard of %d bytes", proof.ErrRange, size)
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	// Reserve the bytes, or refuse them, before reading any.
	st := s.state(owner)
	st.mu.Lock()
	held, err := s.db.Has(kv.Held, shardKey(owner, id))
	if err != nil || held {
		st.mu.Unlock()
		return err
	}
	used, _, err := s.usage(owner)
	if err != nil {
		st.mu.Unlock()
		return err
	}
	if taken := used + st.reserved; taken+size > quota {
		st.mu.Unlock()
		return fmt.Errorf("%w: holding %s of your %s; this shard needs %s more",
			ErrQuota, humanize.IBytes(uint64(taken)), humanize.IBytes(uint64(max(quota, 0))), humanize.IBytes(uint64(size)))
	}
	st.reserved += size
	st.mu.Unlock()
	reserved := true
	defer func() {
		if reserved {
			st.mu.Lock()
			st.reserved -= size
			st.mu.Unlock()
		}
	}()

	dir := s.ownerDir(owner)
	if err := mkdirSynced(dir); err != nil {
		return err
	}
	var temps []string // temporary files to remove unless renamed into place
	defer func() {
		for _, name := range temps {
			// After a failure, which is what Put reports; Repair sweeps
			// any leftover.
			_ = os.Remove(name)
		}
	}()
	body, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return err
	}
	temps = append(temps, body.Name())
	tree, err := s.receive(ctx, body, r, id, size)
	if cerr := body.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// The tree is not synced: a crash can leave it missing, short or
	// garbled, and then it is made again from the synced body (see
	// makeTree). That is one sync fewer for every shard a friend stores,
	// each a flush of the disk's cache: slow on a board's SD card.
	treeFile, err := writeTemp(dir, tree)
	if treeFile != "" {
		temps = append(temps, treeFile)
	}
	if err != nil {
		return err
	}

	// From here commit owns the temporary files and the reservation.
	temps, reserved = nil, false
	return s.commit(st, owner, id, size, body.Name(), treeFile)
}

// commit renames a received shard's files into place and records it, under
// the owner's lock so that the usage record and the reservations change
// together, and so that no other put or delete of the shard sees its files
// half done. It releases the put's reservation of size bytes, and on failure
// removes what it did not record.
func (s *Store) commit(st *ownerState, owner peer.ID, id [32]byte, size int64, bodyTmp, treeTmp string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.reserved -= size
	remove := []string{bodyTmp, treeTmp}
	defer func() {
		for _, name := range remove {
			// After a failure, which is what commit reports; Repair sweeps
			// any leftover (temporary files and unrecorded shards alike).
			_ = os.Remove(name)
		}
	}()
	held, err := s.db.Has(kv.Held, shardKey(owner, id))
	if err != nil || held { // a concurrent put of the same shard won
		return err
	}
	final := s.Path(owner, id)
	if err := os.Rename(treeTmp, final+obaoExt); err != nil {
		return err
	}
	remove = []string{bodyTmp, final + obaoExt}
	if err := os.Rename(bodyTmp, final); err != nil {
		return err
	}
	remove = []string{final, final + obaoExt}
	if err := durable.SyncDir(filepath.Dir(final)); err != nil {
		return err
	}
	err = s.db.UpdateSync(func(tx *kv.Tx) error {
		return addRecord(tx, owner, id, size, time.Now())
	})
	if err != nil {
		if ok, herr := s.db.Has(kv.Held, shardKey(owner, id)); herr != nil || ok {
			remove = nil // recorded after all (the sync failed): keep the files
		}
		return err
	}
	remove = nil
	return nil
}

// receive streams size bytes from r into body and returns the shard's Bao
// outboard tree, once the bytes have hashed to id and body is synced.
func (s *Store) receive(ctx context.Context, body *os.File, r io.Reader, id [32]byte, size int64) ([]byte, error) {
	in := &countingReader{ctx: ctx, r: io.LimitReader(r, size)}
	w := bufio.NewWriterSize(body, 64<<10)
	tree := &bufferAt{buf: make([]byte, bao.EncodedSize(int(size), proof.Group, true))}
	// The Bao root is the plain BLAKE3-256 hash of the shard, computed in
	// the same pass; bao hashes each group in this goroutine.
	root, err := bao.Encode(tree, io.TeeReader(in, w), size, proof.Group, true)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("shard ended after %d of %d bytes: %w", in.n, size, io.ErrUnexpectedEOF)
	case err != nil:
		return nil, err
	case root != id:
		return nil, fmt.Errorf("%w: the bytes sent hash to %s", ErrMismatch, shortID(root))
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	if err := body.Sync(); err != nil {
		return nil, err
	}
	return tree.buf, nil
}

// writeTemp writes b to a new temporary file in dir, without a sync, and
// returns its name ("" if none was created).
func writeTemp(dir string, b []byte) (string, error) {
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return f.Name(), err
}

// Open returns a reader of a held shard's bytes and its size. The caller
// closes the reader. The bytes are those on disk, unchecked: the owner checks
// them against the shard ID. A shard not held gives an error wrapping
// [fs.ErrNotExist]; one whose file is missing or of the wrong size an error
// wrapping [ErrCorrupt].
func (s *Store) Open(ctx context.Context, owner peer.ID, id [32]byte) (io.ReadSeekCloser, int64, error) {
	f, size, err := s.open(ctx, owner, id)
	if err != nil {
		return nil, 0, fmt.Errorf("holdstore: open shard %s of %s: %w", shortID(id), owner, err)
	}
	return f, size, nil
}

// open opens a held shard's body after checking its record and its size.
func (s *Store) open(ctx context.Context, owner peer.ID, id [32]byte) (*os.File, int64, error) {
	f, size, err := s.openBody(ctx, owner, id)
	if err != nil {
		return nil, 0, err
	}
	if err := checkSize(f, size); err != nil {
		_ = f.Close() // opened to read only: closing it loses nothing
		return nil, 0, err
	}
	return f, size, nil
}

// openBody opens a held shard's body after checking its record, and returns
// the size the record gives.
func (s *Store) openBody(ctx context.Context, owner peer.ID, id [32]byte) (*os.File, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	size, err := s.record(owner, id)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(s.Path(owner, id))
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", proof.ErrCorrupt, err)
	}
	return f, size, nil
}

// checkSize checks that a held shard's body has its size: a body of another
// size gives an error wrapping [errDamaged] and [proof.ErrCorrupt].
func checkSize(f *os.File, size int64) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != size {
		return fmt.Errorf("%w: %w: file of %d bytes, the shard has %d", proof.ErrCorrupt, errDamaged, fi.Size(), size)
	}
	return nil
}

// record returns the size of a held shard, or an error wrapping
// [fs.ErrNotExist].
func (s *Store) record(owner peer.ID, id [32]byte) (int64, error) {
	if err := checkOwner(owner); err != nil {
		return 0, err
	}
	v, err := s.db.Get(kv.Held, shardKey(owner, id))
	if errors.Is(err, kv.ErrNotFound) {
		return 0, fmt.Errorf("not held: %w", fs.ErrNotExist)
	}
	if err != nil {
		return 0, err
	}
	size, _, err := decodeRecord(v)
	return size, err
}

// Has reports whether the store holds a shard for owner.
func (s *Store) Has(ctx context.Context, owner peer.ID, id [32]byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("holdstore: has shard %s of %s: %w", shortID(id), owner, err)
	}
	if err := checkOwner(owner); err != nil {
		return false, fmt.Errorf("holdstore: has shard %s of %s: %w", shortID(id), owner, err)
	}
	ok, err := s.db.Has(kv.Held, shardKey(owner, id))
	if err != nil {
		return false, fmt.Errorf("holdstore: has shard %s of %s: %w", shortID(id), owner, err)
	}
	return ok, nil
}

// Delete drops a shard held for owner and releases its bytes. Deleting a
// shard not held is not an error.
func (s *Store) Delete(ctx context.Context, owner peer.ID, id [32]byte) error {
	if err := s.delete(ctx, owner, id); err != nil {
		return fmt.Errorf("holdstore: delete shard %s of %s: %w", shortID(id), owner, err)
	}
	return nil
}

func (s *Store) delete(ctx context.Context, owner peer.ID, id [32]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkOwner(owner); err != nil {
		return err
	}
	st := s.state(owner)
	st.mu.Lock()
	defer st.mu.Unlock()
	return s.deleteLocked(owner, id)
}

// dropDamaged deletes a held shard whose bytes were shown wrong through
// body, unless its file was replaced meanwhile (deleted and put again).
func (s *Store) dropDamaged(owner peer.ID, id [32]byte, body *os.File) error {
	st := s.state(owner)
	st.mu.Lock()
	defer st.mu.Unlock()
	now, err := os.Stat(s.Path(owner, id))
	if err != nil {
		return err
	}
	if was, err := body.Stat(); err != nil || !os.SameFile(was, now) {
		return err
	}
	return s.deleteLocked(owner, id)
}

// deleteLocked deletes a held shard's record and files, under the owner's
// lock.
func (s *Store) deleteLocked(owner peer.ID, id [32]byte) error {
	// The record goes first: a crash before the files go leaves files
	// without a record, which Open removes.
	found := false
	err := s.db.Update(func(tx *kv.Tx) error {
		var err error
		found, err = removeRecord(tx, owner, id)
		return err
	})
	if err != nil || !found {
		return err
	}
	return removeFiles(s.Path(owner, id))
}

// removeFiles removes a shard's body and outboard tree; missing ones are
// not an error.
func removeFiles(body string) error {
	var errs []error
	for _, name := range []string{body, body + obaoExt} {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Usage returns the bytes and the number of shards held for owner.
func (s *Store) Usage(owner peer.ID) (used int64, shards int, err error) {
	if err := checkOwner(owner); err != nil {
		return 0, 0, fmt.Errorf("holdstore: usage of %s: %w", owner, err)
	}
	used, shards, err = s.usage(owner)
	if err != nil {
		return 0, 0, fmt.Errorf("holdstore: usage of %s: %w", owner, err)
	}
	return used, shards, nil
}

// usage reads owner's usage record; none means nothing held.
func (s *Store) usage(owner peer.ID) (used int64, shards int, err error) {
	v, err := s.db.Get(kv.Held, usageKey(owner))
	if errors.Is(err, kv.ErrNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	return decodeUsage(v)
}

// Owners returns the usage of every owner that has shards here, in the
// order of their peer ID bytes.
func (s *Store) Owners() ([]OwnerUsage, error) {
	var out []OwnerUsage
	err := s.db.Iterate(kv.Held, kv.IterOptions{Prefix: []byte{tagUsage}}, func(k, v []byte) error {
		owner, rest, err := parseOwnerKey(k)
		if err != nil || len(rest) != 0 {
			return fmt.Errorf("usage record %x: malformed key", k)
		}
		used, shards, err := decodeUsage(v)
		if err != nil {
			return fmt.Errorf("usage record of %s: %w", owner, err)
		}
		out = append(out, OwnerUsage{Owner: owner, Used: used, Shards: shards})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("holdstore: list owners: %w", err)
	}
	return out, nil
}

// listPage is how many records List reads per kv transaction.
const listPage = 1000

// List calls fn for each shard held for owner, in the order of their IDs.
// An error from fn ends the listing and is returned unchanged. fn may call
// the Store, Delete included.
func (s *Store) List(ctx context.Context, owner peer.ID, fn func(id [32]byte, size int64) error) error {
	if err := checkOwner(owner); err != nil {
		return fmt.Errorf("holdstore: list shards of %s: %w", owner, err)
	}
	type entry struct {
		id   [32]byte
		size int64
	}
	prefix := ownerKey(tagShard, owner)
	start := prefix
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("holdstore: list shards of %s: %w", owner, err)
		}
		page := make([]entry, 0, listPage)
		err := s.db.Iterate(kv.Held, kv.IterOptions{Prefix: prefix, Start: start}, func(k, v []byte) error {
			if len(page) == listPage {
				return kv.ErrStop
			}
			var e entry
			if len(k) != len(prefix)+32 {
				return fmt.Errorf("shard record %x: malformed key", k)
			}
			copy(e.id[:], k[len(prefix):])
			var err error
			if e.size, _, err = decodeRecord(v); err != nil {
				return fmt.Errorf("shard record %s: %w", shortID(e.id), err)
			}
			page = append(page, e)
			return nil
		})
		if err != nil {
			return fmt.Errorf("holdstore: list shards of %s: %w", owner, err)
		}
		for _, e := range page {
			if err := fn(e.id, e.size); err != nil {
				return err
			}
		}
		if len(page) < listPage {
			return nil
		}
		last := page[len(page)-1].id
		start = append(append(append([]byte(nil), prefix...), last[:]...), 0)
	}
}

// deletePage is how many records DeleteOwner drops per kv transaction.
const deletePage = 1000

// DeleteOwner drops every shard held for owner (a friend removed) and
// returns the bytes freed.
func (s *Store) DeleteOwner(ctx context.Context, owner peer.ID) (freed int64, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("holdstore: delete shards of %s: %w", owner, err)
		}
	}()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := checkOwner(owner); err != nil {
		return 0, err
	}
	st := s.state(owner)
	st.mu.Lock()
	defer st.mu.Unlock()
	// Records first, in transactions of bounded size, then the usage
	// record, then the files: a crash on the way leaves files without
	// records, or a usage record that Open recomputes.
	prefix := ownerKey(tagShard, owner)
	for {
		var keys [][]byte
		err := s.db.Iterate(kv.Held, kv.IterOptions{Prefix: prefix}, func(k, v []byte) error {
			if len(keys) == deletePage {
				return kv.ErrStop
			}
			size, _, err := decodeRecord(v)
			if err != nil {
				return fmt.Errorf("shard record %x: %w", k, err)
			}
			freed += size
			keys = append(keys, append([]byte(nil), k...))
			return nil
		})
		if err != nil {
			return freed, err
		}
		if len(keys) == 0 {
			break
		}
		err = s.db.Update(func(tx *kv.Tx) error {
			for _, k := range keys {
				if err := tx.Delete(kv.Held, k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return freed, err
		}
	}
	if err := s.db.Delete(kv.Held, usageKey(owner)); err != nil {
		return freed, err
	}
	if err := os.RemoveAll(s.ownerDir(owner)); err != nil {
		return freed, err
	}
	return freed, nil
}

// state returns owner's lock and reservations.
func (s *Store) state(owner peer.ID) *ownerState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.owners[owner]
	if !ok {
		st = &ownerState{}
		s.owners[owner] = st
	}
	return st
}

// ownerDir is the directory of owner's shards.
func (s *Store) ownerDir(owner peer.ID) string {
	return filepath.Join(s.dir, owner.String())
}

// checkOwner refuses peer IDs that cannot name an owner.
func checkOwner(owner peer.ID) error {
	if len(owner) == 0 || len(owner) > 255 {
		return fmt.Errorf("invalid owner peer ID of %d bytes", len(owner))
	}
	return nil
}

// Keys and records in kv.Held; see the package documentation.
const (
	tagShard byte = 's'
	tagUsage byte = 'u'

	recordLen = 16
	usageLen  = 16
)

// ownerKey is tag, the owner's length and the owner's bytes.
func ownerKey(tag byte, owner peer.ID) []byte {
	k := make([]byte, 0, 2+len(owner)+32)
	k = append(k, tag, byte(len(owner)))
	return append(k, owner...)
}

func shardKey(owner peer.ID, id [32]byte) []byte {
	return append(ownerKey(tagShard, owner), id[:]...)
}

func usageKey(owner peer.ID) []byte { return ownerKey(tagUsage, owner) }

// parseOwnerKey splits a key after its tag into the owner and the rest.
func parseOwnerKey(k []byte) (peer.ID, []byte, error) {
	if len(k) < 2 || int(k[1]) == 0 || len(k) < 2+int(k[1]) {
		return "", nil, errors.New("malformed key")
	}
	n := 2 + int(k[1])
	return peer.ID(k[2:n]), k[n:], nil
}

func encodeRecord(size int64, stored time.Time) []byte {
	b := binary.LittleEndian.AppendUint64(make([]byte, 0, recordLen), uint64(size))
	return binary.LittleEndian.AppendUint64(b, uint64(stored.UnixNano()))
}

func decodeRecord(v []byte) (size int64, stored time.Time, err error) {
	if len(v) != recordLen {
		return 0, time.Time{}, fmt.Errorf("shard record of %d bytes, want %d", len(v), recordLen)
	}
	size = int64(binary.LittleEndian.Uint64(v))
	if size < 1 || size > proof.MaxShardSize {
		return 0, time.Time{}, fmt.Errorf("shard record with a size of %d bytes", size)
	}
	return size, time.Unix(0, int64(binary.LittleEndian.Uint64(v[8:]))), nil
}

func encodeUsage(used int64, shards int) []byte {
	b := binary.LittleEndian.AppendUint64(make([]byte, 0, usageLen), uint64(used))
	return binary.LittleEndian.AppendUint64(b, uint64(shards))
}

func decodeUsage(v []byte) (used int64, shards int, err error) {
	if len(v) != usageLen {
		return 0, 0, fmt.Errorf("usage record of %d bytes, want %d", len(v), usageLen)
	}
	u, n := binary.LittleEndian.Uint64(v), binary.LittleEndian.Uint64(v[8:])
	if u > 1<<62 || n > 1<<31 {
		return 0, 0, fmt.Errorf("usage record of %d bytes in %d shards", u, n)
	}
	return int64(u), int(n), nil
}

// addRecord records a shard and adds it to its owner's usage.
func addRecord(tx *kv.Tx, owner peer.ID, id [32]byte, size int64, stored time.Time) error {
	if err := tx.Put(kv.Held, shardKey(owner, id), encodeRecord(size, stored)); err != nil {
		return err
	}
	return addUsage(tx, owner, size, 1)
}

// removeRecord drops a shard's record and its bytes from its owner's usage,
// and reports whether there was one.
func removeRecord(tx *kv.Tx, owner peer.ID, id [32]byte) (bool, error) {
	key := shardKey(owner, id)
	v, err := tx.Get(kv.Held, key)
	if errors.Is(err, kv.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := tx.Delete(kv.Held, key); err != nil {
		return false, err
	}
	size, _, err := decodeRecord(v)
	if err != nil {
		// A damaged record: drop it; Open will recompute the usage.
		return true, nil
	}
	return true, addUsage(tx, owner, -size, -1)
}

// addUsage adds bytes and shards to owner's usage record, deleting it when
// no shard is left.
func addUsage(tx *kv.Tx, owner peer.ID, bytes int64, shards int) error {
	key := usageKey(owner)
	var used int64
	var n int
	v, err := tx.Get(kv.Held, key)
	switch {
	case err == nil:
		if used, n, err = decodeUsage(v); err != nil {
			return err
		}
	case !errors.Is(err, kv.ErrNotFound):
		return err
	}
	used, n = max(used+bytes, 0), max(n+shards, 0)
	if n == 0 {
		return tx.Delete(kv.Held, key)
	}
	return tx.Put(kv.Held, key, encodeUsage(used, n))
}

// mkdirSynced creates dir with mode 0700 if it does not exist, and makes the
// new directory survive a power cut by syncing its parent.
func mkdirSynced(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return durable.SyncDir(filepath.Dir(dir))
}

// countingReader counts the bytes read, and stops when ctx is done.
type countingReader struct {
	ctx context.Context
	r   io.Reader
	n   int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// bufferAt is an [io.WriterAt] on a buffer of the final size.
type bufferAt struct{ buf []byte }

func (b *bufferAt) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(b.buf)) {
		return 0, fmt.Errorf("write of %d bytes at %d past the %d of a Bao tree", len(p), off, len(b.buf))
	}
	return copy(b.buf[off:], p), nil
}

// shortID names a shard in messages: its first 8 bytes in hex.
func shortID(id [32]byte) string { return hex.EncodeToString(id[:8]) }
