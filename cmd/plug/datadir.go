package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/plug-net/plug/store/durable"
)

// dataDir is the layout of a plug's data directory (DESIGN.md).
type dataDir string

func (d dataDir) keys() string     { return filepath.Join(string(d), "keys") }
func (d dataDir) db() string       { return filepath.Join(string(d), "db") }
func (d dataDir) shards() string   { return filepath.Join(string(d), "shards") }
func (d dataDir) apiAddr() string  { return filepath.Join(string(d), "api.addr") }
func (d dataDir) apiToken() string { return filepath.Join(string(d), "api.token") }
func (d dataDir) lockFile() string { return filepath.Join(string(d), "plug.pid") }

// recoveryWords is where a plug run as a service keeps its 24 words until
// its owner copied them (PLUG_WORDS=file): never in the journal.
func (d dataDir) recoveryWords() string { return filepath.Join(string(d), "recovery-words") }
func (d dataDir) social() string        { return filepath.Join(string(d), "social") }

// recovering marks a plug made by "plug init --recover" until it has found
// its head record.
func (d dataDir) recovering() string { return filepath.Join(string(d), "recovering") }
func (d dataDir) search() string     { return filepath.Join(string(d), "search") }

// passwordFile keeps the bcrypt hash of the web UI's password.
func (d dataDir) uiCert() string    { return filepath.Join(string(d), "ui-cert.pem") }
func (d dataDir) uiKey() string     { return filepath.Join(string(d), "ui-key.pem") }
func (d dataDir) setupCode() string { return filepath.Join(string(d), "setup-code") }
func (d dataDir) nameFile() string  { return filepath.Join(string(d), "name") }

func (d dataDir) passwordFile() string { return filepath.Join(string(d), "ui.password") }

// downloads holds files of snapshots on their way to a browser.
func (d dataDir) downloads() string { return filepath.Join(string(d), "downloads") }

func (d dataDir) uploads() string { return filepath.Join(string(d), "uploads") }

// errAlreadyRunning says another plug process owns the data directory.
type errAlreadyRunning struct {
	dir string
	pid int
}

func (e *errAlreadyRunning) Error() string {
	who := "another process"
	if e.pid > 0 {
		who = fmt.Sprintf("pid %d", e.pid)
	}
	return fmt.Sprintf("a plug is already running on %s (%s): use \"plug status --data %s\" to talk to it, or stop it first", e.dir, who, e.dir)
}

// lock takes the data directory for this process with an exclusive flock on
// DIR/plug.pid and writes our pid into it. The lock ends with the process, so
// a killed plug never leaves a stale lock behind.
func (d dataDir) lock() (release func(), err error) {
	f, err := os.OpenFile(d.lockFile(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(d.lockFile())
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		_ = f.Close() // opened only to lock it
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &errAlreadyRunning{dir: string(d), pid: pid}
		}
		return nil, fmt.Errorf("lock data directory %s: %w", d, err)
	}
	// The pid is for people ("already running as pid N"); the lock is the
	// flock, which holds even when the pid cannot be written.
	if err := f.Truncate(0); err == nil {
		if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err == nil {
			_ = f.Sync()
		}
	}
	return func() {
		// The lock ends with the file's close (or the process) whatever
		// these say; an old pid left in the file is harmless.
		_ = f.Truncate(0)
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}

// ensureAPIToken returns the API token in DIR/api.token, creating it on first
// use (mode tokenMode). The token stays the same across restarts, so a
// logged-in web UI and scripts keep working.
func (d dataDir) ensureAPIToken() (string, error) {
	mode := d.tokenMode()
	b, err := os.ReadFile(d.apiToken())
	if err == nil {
		if tok := strings.TrimSpace(string(b)); len(tok) >= 32 {
			if err := os.Chmod(d.apiToken(), mode); err != nil {
				return "", fmt.Errorf("api token: %w", err)
			}
			return tok, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("api token: %w", err)
	}
	var raw [32]byte
	rand.Read(raw[:])
	tok := hex.EncodeToString(raw[:])
	if err := durable.WriteFile(d.apiToken(), []byte(tok+"\n"), mode); err != nil {
		return "", fmt.Errorf("api token: %w", err)
	}
	return tok, nil
}

// tokenMode is the mode of the API token: 0600, or 0640 when the data
// directory lets its group in (search permission, as the system service's
// /var/lib/plug has: 0750, user and group plug), so that the group's
// members can run the plug's commands against the daemon of another user.
// The directory decides who reaches the token; a plug's own directory,
// made 0700, keeps it to its owner. The keys and the web UI's password stay
// 0600 in every case.
func (d dataDir) tokenMode() fs.FileMode {
	if st, err := os.Stat(string(d)); err == nil && st.Mode().Perm()&0o010 != 0 {
		return 0o640
	}
	return 0o600
}
