package kv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// DefaultGCInterval is how often RunGC collects by default.
const DefaultGCInterval = 10 * time.Minute

const (
	// gcDiscardRatio is the share of a value log file that must be garbage
	// for GC to rewrite it: half, so that a rewrite at least halves a file.
	gcDiscardRatio = 0.5
	// gcMaxRewrites bounds the files one GC call rewrites, so that a call
	// takes bounded time.
	gcMaxRewrites = 8
)

// GC reclaims value log space left by overwritten and deleted values: it
// rewrites the value log files that are at least half garbage, a few at
// most per call. In memory it does nothing.
func (db *DB) GC() error {
	if err := db.enter(); err != nil {
		return fmt.Errorf("kv: gc: %w", err)
	}
	defer db.exit()
	if db.dir == "" {
		return nil
	}
	for range gcMaxRewrites {
		err := db.bdb.RunValueLogGC(gcDiscardRatio)
		switch {
		case err == nil:
			// A file was rewritten; there may be another.
		case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrRejected):
			// Nothing left to reclaim, or a GC is already running.
			return nil
		default:
			return fmt.Errorf("kv: gc %s: %w", db.dir, mapErr(err))
		}
	}
	return nil
}

// RunGC calls GC every interval (DefaultGCInterval if ≤ 0) until ctx is done,
// then returns nil. It returns GC's error if one fails.
func (db *DB) RunGC(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		every = DefaultGCInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := db.GC(); err != nil {
				return err
			}
		}
	}
}
