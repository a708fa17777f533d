package kv

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// errTxDone is returned by a Tx used after its function returned.
var errTxDone = errors.New("transaction is finished")

// Tx is a transaction, handed to the function given to [DB.View] or
// [DB.Update]. It is valid only until that function returns, and only in its
// goroutine.
type Tx struct {
	db   *DB
	txn  *badger.Txn
	done bool
}

func (tx *Tx) finish() { tx.done = true }

// Get returns a copy of the value under key in space s, or an error wrapping
// [ErrNotFound]. The copy stays valid after the transaction.
func (tx *Tx) Get(s Space, key []byte) ([]byte, error) {
	if err := tx.check(s, false); err != nil {
		return nil, fmt.Errorf("kv: get %s %s: %w", s, fmtKey(key), err)
	}
	item, err := tx.txn.Get(fullKey(s, key))
	if err != nil {
		return nil, fmt.Errorf("kv: get %s %s: %w", s, fmtKey(key), mapErr(err))
	}
	val, err := item.ValueCopy(nil)
	if err != nil {
		return nil, fmt.Errorf("kv: get %s %s: %w", s, fmtKey(key), mapErr(err))
	}
	return val, nil
}

// Lookup appends the value under key in space s to dst and reports
// whether the key exists; a missing key is not an error. It is Get for hot
// loops, where a miss is common and a buffer can be reused.
func (tx *Tx) Lookup(s Space, key, dst []byte) (val []byte, ok bool, err error) {
	if err := tx.check(s, false); err != nil {
		return dst, false, fmt.Errorf("kv: lookup %s %s: %w", s, fmtKey(key), err)
	}
	item, err := tx.txn.Get(fullKey(s, key))
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return dst, false, nil
	case err != nil:
		return dst, false, fmt.Errorf("kv: lookup %s %s: %w", s, fmtKey(key), mapErr(err))
	}
	err = item.Value(func(v []byte) error {
		dst = append(dst, v...)
		return nil
	})
	if err != nil {
		return dst, false, fmt.Errorf("kv: lookup %s %s: %w", s, fmtKey(key), mapErr(err))
	}
	return dst, true, nil
}

// Has reports whether key exists in space s, without reading its value.
func (tx *Tx) Has(s Space, key []byte) (bool, error) {
	if err := tx.check(s, false); err != nil {
		return false, fmt.Errorf("kv: has %s %s: %w", s, fmtKey(key), err)
	}
	_, err := tx.txn.Get(fullKey(s, key))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, badger.ErrKeyNotFound):
		return false, nil
	}
	return false, fmt.Errorf("kv: has %s %s: %w", s, fmtKey(key), mapErr(err))
}

// Put stores val under key in space s when the transaction commits. The
// transaction keeps its own copy of key and val.
func (tx *Tx) Put(s Space, key, val []byte) error {
	if err := tx.check(s, true); err != nil {
		return fmt.Errorf("kv: put %s %s: %w", s, fmtKey(key), err)
	}
	if err := tx.db.checkSize(key, val); err != nil {
		return fmt.Errorf("kv: put %s %s: %w", s, fmtKey(key), err)
	}
	k, v := entry(s, key, val)
	if err := tx.txn.Set(k, v); err != nil {
		return fmt.Errorf("kv: put %s %s: %w", s, fmtKey(key), mapErr(err))
	}
	return nil
}

// Delete removes key from space s when the transaction commits.
func (tx *Tx) Delete(s Space, key []byte) error {
	if err := tx.check(s, true); err != nil {
		return fmt.Errorf("kv: delete %s %s: %w", s, fmtKey(key), err)
	}
	if err := tx.db.checkSize(key, nil); err != nil {
		return fmt.Errorf("kv: delete %s %s: %w", s, fmtKey(key), err)
	}
	if err := tx.txn.Delete(fullKey(s, key)); err != nil {
		return fmt.Errorf("kv: delete %s %s: %w", s, fmtKey(key), mapErr(err))
	}
	return nil
}

// Iterate calls fn for the keys of space s selected by opt, in order; see
// [DB.Iterate]. In a read-write transaction it sees the transaction's own
// writes.
func (tx *Tx) Iterate(s Space, opt IterOptions, fn func(key, val []byte) error) error {
	if err := tx.check(s, false); err != nil {
		return fmt.Errorf("kv: iterate %s: %w", s, err)
	}
	return iterate(tx.txn, s, opt, fn)
}

// Count returns the number of keys in space s that start with prefix.
func (tx *Tx) Count(s Space, prefix []byte) (int, error) {
	n := 0
	err := tx.Iterate(s, IterOptions{Prefix: prefix, KeysOnly: true}, func(_, _ []byte) error {
		n++
		return nil
	})
	return n, err
}

// check validates a call on the transaction.
func (tx *Tx) check(s Space, write bool) error {
	switch {
	case tx.done:
		return errTxDone
	case write && !s.writable(), !s.valid():
		return ErrBadSpace
	}
	return nil
}

// checkSize refuses keys and values that badger would refuse with a less
// helpful message (a hex dump of the value).
func (db *DB) checkSize(key, val []byte) error {
	if len(key) > MaxKeySize {
		return fmt.Errorf("%w: key of %d bytes, at most %d", ErrTooLarge, len(key), MaxKeySize)
	}
	if int64(len(val)) > db.maxValue {
		return fmt.Errorf("%w: value of %d bytes, at most %d", ErrTooLarge, len(val), db.maxValue)
	}
	return nil
}

// fullKey prefixes key with its space.
func fullKey(s Space, key []byte) []byte {
	k := make([]byte, 1+len(key))
	k[0] = byte(s)
	copy(k[1:], key)
	return k
}

// entry copies a key and a value into one allocation for badger, which keeps
// them until the commit: callers may reuse their buffers at once.
func entry(s Space, key, val []byte) (k, v []byte) {
	buf := make([]byte, 1+len(key)+len(val))
	buf[0] = byte(s)
	copy(buf[1:], key)
	copy(buf[1+len(key):], val)
	return buf[: 1+len(key) : 1+len(key)], buf[1+len(key):]
}

// IterOptions select what [DB.Iterate] visits. The zero value visits the
// whole space in ascending key order.
type IterOptions struct {
	// Prefix limits the iteration to keys that start with it.
	Prefix []byte
	// Start is where to begin: the first key visited is the smallest one
	// ≥ Start (the largest one ≤ Start when Reverse). Empty means the first
	// (last) key of the Prefix range.
	Start []byte
	// Reverse visits keys in descending order.
	Reverse bool
	// KeysOnly skips reading values: fn gets a nil val.
	KeysOnly bool
}

// Iterate calls fn for each key of space s selected by opt, in key order,
// on one consistent snapshot. Keys are given without the space byte.
//
// key and val are valid only during the call to fn: copy them to keep them.
// fn may return [ErrStop] to end early, and Iterate then returns nil; any
// other error ends the iteration and is returned unchanged.
func (db *DB) Iterate(s Space, opt IterOptions, fn func(key, val []byte) error) error {
	return db.View(func(tx *Tx) error { return tx.Iterate(s, opt, fn) })
}

// Count returns the number of keys in space s that start with prefix. It
// visits each of them.
func (db *DB) Count(s Space, prefix []byte) (n int, err error) {
	err = db.View(func(tx *Tx) error {
		n, err = tx.Count(s, prefix)
		return err
	})
	return n, err
}

// iterate implements Iterate on a badger transaction.
func iterate(txn *badger.Txn, s Space, opt IterOptions, fn func(key, val []byte) error) error {
	prefix := fullKey(s, opt.Prefix)
	bopt := badger.IteratorOptions{Reverse: opt.Reverse}
	if !opt.Reverse {
		// badger checks Prefix against every key and skips tables that
		// cannot hold it. In reverse its Valid would stop at once on the
		// key just past the range where we seek to, so we check ourselves.
		bopt.Prefix = prefix
	}
	it := txn.NewIterator(bopt)
	defer it.Close()

	// past is the first key after the prefix range (nil: there is none).
	past := prefixEnd(prefix)
	switch {
	case !opt.Reverse:
		seek := prefix
		if start := fullKey(s, opt.Start); bytes.Compare(start, seek) > 0 {
			seek = start
		}
		it.Seek(seek)
	case len(opt.Start) > 0 && (past == nil || bytes.Compare(fullKey(s, opt.Start), past) < 0):
		it.Seek(fullKey(s, opt.Start))
	case past != nil:
		it.Seek(past)
		if it.Valid() && bytes.Equal(it.Item().Key(), past) {
			it.Next()
		}
	default:
		it.Rewind()
	}

	for ; it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		key := item.Key()[1:]
		var err error
		if opt.KeysOnly {
			err = fn(key, nil)
		} else {
			err = item.Value(func(val []byte) error { return fn(key, val) })
		}
		if errors.Is(err, ErrStop) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// prefixEnd returns the smallest key greater than every key that starts with
// prefix, or nil if there is none (prefix is all 0xff).
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Batch loads many writes quickly. Unlike a [Tx] it is not atomic: it commits
// whenever a transaction is full, so a crash, or an error from the function
// given to [DB.Batch], may leave part of it written. It belongs to the
// goroutine that runs that function.
type Batch struct {
	db   *DB
	txn  *badger.Txn
	done bool
}

// Batch runs fn to load a bulk of writes and commits them. It has no size
// limit. When fn returns an error, the writes not yet committed are dropped
// and Batch returns that error unchanged.
func (db *DB) Batch(fn func(*Batch) error) error {
	if err := db.enter(); err != nil {
		return fmt.Errorf("kv: batch: %w", err)
	}
	defer db.exit()
	if err := db.room.check(); err != nil {
		return fmt.Errorf("kv: batch: %w", err)
	}
	b := &Batch{db: db, txn: db.bdb.NewTransaction(true)}
	defer func() {
		b.done = true
		b.txn.Discard()
	}()
	if err := fn(b); err != nil {
		return err
	}
	if err := b.txn.Commit(); err != nil {
		return fmt.Errorf("kv: batch: commit: %w", mapErr(err))
	}
	return nil
}

// Put stores val under key in space s. The batch keeps its own copy.
func (b *Batch) Put(s Space, key, val []byte) error {
	if err := b.check(s, key, val); err != nil {
		return fmt.Errorf("kv: batch put %s %s: %w", s, fmtKey(key), err)
	}
	k, v := entry(s, key, val)
	if err := b.write(func() error { return b.txn.Set(k, v) }); err != nil {
		return fmt.Errorf("kv: batch put %s %s: %w", s, fmtKey(key), err)
	}
	return nil
}

// Delete removes key from space s.
func (b *Batch) Delete(s Space, key []byte) error {
	if err := b.check(s, key, nil); err != nil {
		return fmt.Errorf("kv: batch delete %s %s: %w", s, fmtKey(key), err)
	}
	k := fullKey(s, key)
	if err := b.write(func() error { return b.txn.Delete(k) }); err != nil {
		return fmt.Errorf("kv: batch delete %s %s: %w", s, fmtKey(key), err)
	}
	return nil
}

func (b *Batch) check(s Space, key, val []byte) error {
	switch {
	case b.done:
		return errTxDone
	case !s.writable():
		return ErrBadSpace
	}
	return b.db.checkSize(key, val)
}

// write adds one write to the current transaction, committing it first and
// starting another when it is full.
func (b *Batch) write(add func() error) error {
	err := add()
	if !errors.Is(err, badger.ErrTxnTooBig) {
		return mapErr(err)
	}
	if err := b.db.room.check(); err != nil {
		return err
	}
	// Blind writes never conflict, so this commit cannot fail for that.
	if err := b.txn.Commit(); err != nil {
		return fmt.Errorf("commit: %w", mapErr(err))
	}
	b.txn = b.db.bdb.NewTransaction(true)
	return mapErr(add())
}
