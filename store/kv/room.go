package kv

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"golang.org/x/sys/unix"
)

// ErrDiskFull is wrapped by writes refused because the disk of the
// database has too little room left: badger maps its files, and a write
// into a mapped file on a full disk kills the process (SIGBUS). Reads go
// on; writes resume by themselves once there is room again.
var ErrDiskFull = errors.New("the plug's disk is full")

// room guards writes with the free space of the database's disk.
type room struct {
	dir     string
	reserve int64                           // refuse writes below this
	free    func(dir string) (int64, error) // free bytes for an unprivileged writer

	mu      sync.Mutex
	checked time.Time
	left    int64
	full    bool
}

// roomCheckEvery bounds how often the free space is asked while there is
// plenty.
const roomCheckEvery = time.Second

func statfsFree(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// check returns an error wrapping ErrDiskFull when the disk has less than
// the reserve free (and, once full, until it has a quarter more: no
// flapping at the edge).
func (r *room) check() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// With little room left every write asks: a disk can fill within a
	// second.
	if time.Since(r.checked) >= roomCheckEvery || r.left < 4*r.reserve {
		left, err := r.free(r.dir)
		if err != nil {
			return nil // a disk that cannot say is not judged full
		}
		r.checked, r.left = time.Now(), left
		if r.full {
			r.full = left < r.reserve+r.reserve/4
		} else {
			r.full = left < r.reserve
		}
	}
	if r.full {
		return fmt.Errorf("%w: %s free under %s, and the plug keeps %s: free some space on that disk; the plug goes on by itself once there is room",
			ErrDiskFull, humanize.IBytes(uint64(max(r.left, 0))), r.dir, humanize.IBytes(uint64(r.reserve)))
	}
	return nil
}
