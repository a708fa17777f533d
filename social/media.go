package social

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/zeebo/blake3"

	"github.com/plug-net/plug/store/durable"
)

// MediaRef names a stored image or attachment by its BLAKE3 hash.
type MediaRef struct {
	Hash    string `json:"hash,omitempty"` // empty when Missing
	Name    string `json:"name"`
	Type    string `json:"type,omitempty"`
	Size    int64  `json:"size,omitempty"`
	Missing bool   `json:"missing,omitempty"` // referenced by an export that did not include it
}

// mediaStore keeps media files by content: DIR/<2 hex>/<64 hex>.
type mediaStore struct{ dir string }

// put stores r (at most max bytes) and returns its hash and size. An
// existing file with the same content is kept.
func (m mediaStore) put(r io.Reader, max int64) (string, int64, error) {
	return m.putExpect(r, max, "")
}

// putExpect is put of bytes that must hash to want (unless want is ""):
// other bytes are not kept.
func (m mediaStore) putExpect(r io.Reader, max int64, want string) (string, int64, error) {
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return "", 0, err
	}
	tmp, err := durable.Temp(filepath.Join(m.dir, "put"), 0o600)
	if err != nil {
		return "", 0, fmt.Errorf("store media: %w", err)
	}
	h := blake3.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, max+1))
	if err == nil && n > max {
		err = fmt.Errorf("larger than %d bytes", max)
	}
	if err != nil {
		durable.Discard(tmp)
		return "", 0, fmt.Errorf("store media: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if want != "" && sum != want {
		durable.Discard(tmp)
		return "", 0, errMediaMismatch
	}
	p := m.path(sum)
	if _, err := os.Stat(p); err == nil {
		durable.Discard(tmp)
		return sum, n, nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		durable.Discard(tmp)
		return "", 0, err
	}
	if err := durable.Commit(tmp, p); err != nil {
		return "", 0, fmt.Errorf("store media: %w", err)
	}
	return sum, n, nil
}

func (m mediaStore) path(hash string) string {
	return filepath.Join(m.dir, hash[:2], hash)
}

// open opens a stored medium; an error wraps fs.ErrNotExist when it is not
// stored.
func (m mediaStore) open(hash string) (*os.File, error) {
	if !hashRe.MatchString(hash) {
		return nil, fmt.Errorf("media %.70q: %w", hash, fs.ErrNotExist)
	}
	return os.Open(m.path(hash))
}

func (m mediaStore) has(hash string) bool {
	if !hashRe.MatchString(hash) {
		return false
	}
	_, err := os.Stat(m.path(hash))
	return err == nil
}

var errMediaMismatch = errors.New("media does not match its hash")
