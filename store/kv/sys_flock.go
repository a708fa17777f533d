//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package kv

import (
	"errors"
	"os"
	"syscall"
)

// dirLocked reports whether another owner holds badger's lock on dir (an
// flock on the directory), by trying to take it without waiting.
func dirLocked(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }() // opened to read only, for the lock test
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return false
	}
	return errors.Is(err, syscall.EWOULDBLOCK)
}
