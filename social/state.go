package social

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/plug-net/plug/store/durable"
	"github.com/plug-net/plug/store/kv"
)

// The social state travels with every backup as a folder: DIR/social holds
// the media (by hash) and state.jsonl, a dump of the microblog's records
// written just before the backup. A recovered plug restores the folder and
// loads the dump, and its timeline and search come back.

// StateFile is the dump's name inside the state folder.
const StateFile = "state.jsonl"

// maxStateLine bounds one record of the dump.
const maxStateLine = 1 << 20

// outboxRecoveryGap is how far a recovered plug's outbox sequence jumps
// (more posts than a plug makes between two backups).
const outboxRecoveryGap = 1 << 20

type stateRecord struct {
	K []byte `json:"k"`
	V []byte `json:"v,omitempty"`
}

// StateDir returns the folder that backups carry.
func (s *Service) StateDir() string { return s.cfg.Dir }

// WriteState dumps the microblog's records into the state folder,
// atomically.
func (s *Service) WriteState(ctx context.Context) error {
	path := filepath.Join(s.cfg.Dir, StateFile)
	tmp, err := durable.Temp(path, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(tmp, 256<<10)
	enc := json.NewEncoder(w)
	err = s.db.Iterate(kv.Posts, kv.IterOptions{}, func(k, v []byte) error {
		return enc.Encode(stateRecord{K: k, V: v})
	})
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		durable.Discard(tmp)
		return fmt.Errorf("write the social state: %w", err)
	}
	return durable.Commit(tmp, path)
}

// ReloadState loads the state folder's dump after a recovery put the
// backed-up folder in place (store.StateSource), and says how many records
// it loaded.
func (s *Service) ReloadState(ctx context.Context) (int, error) {
	f, err := os.Open(filepath.Join(s.cfg.Dir, StateFile))
	if err != nil {
		return 0, fmt.Errorf("the restored state has no %s: %w", StateFile, err)
	}
	defer func() { _ = f.Close() }() // opened to read only: closing it loses nothing
	return s.LoadState(ctx, f)
}

// LoadState reads a dump (from a restored state folder) into the store and
// rebuilds the search index. Records already present are overwritten.
func (s *Service) LoadState(ctx context.Context, r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxStateLine)
	n := 0
	err := s.db.Batch(func(b *kv.Batch) error {
		for sc.Scan() {
			var rec stateRecord
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				return fmt.Errorf("line %d: %w", n+1, err)
			}
			if len(rec.K) == 0 || len(rec.K) > 1024 {
				return fmt.Errorf("line %d: bad key", n+1)
			}
			if err := b.Put(kv.Posts, rec.K, rec.V); err != nil {
				return err
			}
			n++
		}
		return sc.Err()
	})
	if err != nil {
		return n, fmt.Errorf("load the social state: %w", err)
	}
	// The lost plug may have posted after the backup: friends' cursors can
	// be past the restored outbox. The outbox goes on far beyond, so that
	// friends pull what this plug posts from now on.
	if err := s.db.UpdateSync(func(tx *kv.Tx) error {
		_, err := advanceOutbox(tx, outboxRecoveryGap)
		return err
	}); err != nil {
		return n, fmt.Errorf("load the social state: %w", err)
	}
	if err := s.Reindex(ctx); err != nil {
		return n, err
	}
	s.log.Info("timeline restored from the backup", "records", n)
	return n, nil
}
