package kv

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"
)

// Event is one entry of the event log: the plug's readable record of what it
// did. The log only stores events; writing them for people is the caller's
// job.
type Event struct {
	// Seq is the event's place in the log, assigned by AppendEvent: 1 for
	// the first event, then increasing in append order.
	Seq uint64
	// Time is when it happened; AppendEvent sets a zero Time to now.
	Time time.Time
	// Level is the severity, such as "INFO" or "WARN".
	Level string
	// Component is the part of the plug that acted, such as "p2p".
	Component string
	// Message says what happened.
	Message string
	// Attrs are the details, such as a peer ID or a snapshot ID.
	Attrs map[string]string
}

// eventRecord is how an event is stored under its big-endian Seq in
// [Events]: compact JSON, Seq being the key.
type eventRecord struct {
	Time      time.Time         `json:"t"`
	Level     string            `json:"l,omitempty"`
	Component string            `json:"c,omitempty"`
	Message   string            `json:"m"`
	Attrs     map[string]string `json:"a,omitempty"`
}

// eventSeqName names, in Meta, the sequence that numbers events; it is
// apart from those of NextSeq, which live under "seq/".
const eventSeqName = "events/seq"

// AppendEvent adds e to the event log and returns its sequence number (e.Seq
// is ignored). Events are numbered in the order they are committed, so a
// reader following the log with [DB.Events] misses none. The write is not
// synced.
func (db *DB) AppendEvent(e Event) (uint64, error) {
	if err := db.enter(); err != nil {
		return 0, fmt.Errorf("kv: append event: %w", err)
	}
	defer db.exit()
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	val, err := json.Marshal(eventRecord{
		Time:      e.Time,
		Level:     e.Level,
		Component: e.Component,
		Message:   e.Message,
		Attrs:     e.Attrs,
	})
	if err != nil {
		return 0, fmt.Errorf("kv: append event: %w", err)
	}

	// Hold evMu from numbering to commit, so that no event becomes visible
	// before one with a lower number.
	db.evMu.Lock()
	defer db.evMu.Unlock()
	seq, err := db.nextSeq(metaKey(eventSeqName))
	if err != nil {
		return 0, fmt.Errorf("kv: append event: %w", err)
	}
	err = db.update(func(tx *Tx) error { return tx.Put(Events, eventKey(seq), val) })
	if err != nil {
		return 0, fmt.Errorf("kv: append event %d: %w", seq, err)
	}
	return seq, nil
}

// Events returns up to limit events that follow the one numbered after,
// oldest first; after = 0 starts at the beginning of the log. A limit ≤ 0
// means no limit.
func (db *DB) Events(after uint64, limit int) ([]Event, error) {
	events := []Event{}
	if after == math.MaxUint64 {
		return events, nil
	}
	opt := IterOptions{Start: eventKey(after + 1)}
	err := db.Iterate(Events, opt, func(key, val []byte) error {
		e, err := decodeEvent(key, val)
		if err != nil {
			return err
		}
		events = append(events, e)
		if limit > 0 && len(events) == limit {
			return ErrStop
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kv: events after %d: %w", after, err)
	}
	return events, nil
}

// LastEvents returns the n most recent events, oldest first.
func (db *DB) LastEvents(n int) ([]Event, error) {
	events := []Event{}
	if n <= 0 {
		return events, nil
	}
	err := db.Iterate(Events, IterOptions{Reverse: true}, func(key, val []byte) error {
		e, err := decodeEvent(key, val)
		if err != nil {
			return err
		}
		events = append(events, e)
		if len(events) == n {
			return ErrStop
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kv: last %d events: %w", n, err)
	}
	slices.Reverse(events)
	return events, nil
}

// TrimEvents deletes all but the keep most recent events, to bound the size
// of the log.
func (db *DB) TrimEvents(keep int) error {
	if keep < 0 {
		return fmt.Errorf("kv: trim events to %d: negative count", keep)
	}
	// Find the newest event to delete: the one after the keep newest.
	var last []byte
	seen := 0
	err := db.Iterate(Events, IterOptions{Reverse: true, KeysOnly: true}, func(key, _ []byte) error {
		if seen == keep {
			last = append([]byte(nil), key...)
			return ErrStop
		}
		seen++
		return nil
	})
	if err != nil {
		return fmt.Errorf("kv: trim events to %d: %w", keep, err)
	}
	if last == nil {
		return nil
	}
	err = db.Batch(func(b *Batch) error {
		return db.Iterate(Events, IterOptions{KeysOnly: true}, func(key, _ []byte) error {
			if string(key) > string(last) {
				return ErrStop
			}
			return b.Delete(Events, key)
		})
	})
	if err != nil {
		return fmt.Errorf("kv: trim events to %d: %w", keep, err)
	}
	return nil
}

// eventKey is the key of event seq: big-endian, so that key order is
// number order.
func eventKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

// decodeEvent reads a stored event.
func decodeEvent(key, val []byte) (Event, error) {
	if len(key) != 8 {
		return Event{}, fmt.Errorf("event key %s: %d bytes, want 8", fmtKey(key), len(key))
	}
	seq := binary.BigEndian.Uint64(key)
	var r eventRecord
	if err := json.Unmarshal(val, &r); err != nil {
		return Event{}, fmt.Errorf("event %d: %w", seq, err)
	}
	if r.Time.IsZero() {
		return Event{}, fmt.Errorf("event %d: no time", seq)
	}
	return Event{
		Seq:       seq,
		Time:      r.Time,
		Level:     r.Level,
		Component: r.Component,
		Message:   r.Message,
		Attrs:     r.Attrs,
	}, nil
}
