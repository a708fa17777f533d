package main

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// The plug of the system service (the Debian package's plug.service) runs
// as user plug with its data in /var/lib/plug. Root and the members of
// group plug use it by default: "sudo plug status" works with no --data.
const (
	serviceDataDir = "/var/lib/plug"
	serviceGroup   = "plug"
)

// serviceMachine is what choosing the service's data directory reads of the
// machine; tests give their own.
type serviceMachine struct {
	dir   string // the service's data directory
	group string // the group whose members may use it
	euid  int
	// inGroup says whether this process belongs to group (as its
	// effective group or a supplementary one).
	inGroup func(group string) bool
}

func thisMachine() serviceMachine {
	return serviceMachine{dir: serviceDataDir, group: serviceGroup, euid: os.Geteuid(), inGroup: processInGroup}
}

// serviceDir is the data directory of the system service when this user may
// use it: when it holds a plug (its keys file; a directory the user may not
// enter holds none as far as the user can see) and the user is root or in
// group plug. It is "" otherwise, and the usual defaults apply.
//
// The commands that run a plug rather than talk to one (up, init) never
// take it by default for anyone but its owner: a "sudo plug up" on it would
// fill the service's store with files that user plug cannot open. They
// refuse instead, saying what to do.
func serviceDir(cmd string, m serviceMachine) (string, error) {
	st, err := os.Stat(filepath.Join(m.dir, "keys"))
	if err != nil || !st.Mode().IsRegular() {
		return "", nil
	}
	if m.euid != 0 && !m.inGroup(m.group) {
		return "", nil
	}
	if cmd == "up" || cmd == "init" {
		owner := -1
		if dst, err := os.Stat(m.dir); err == nil {
			if sys, ok := dst.Sys().(*syscall.Stat_t); ok {
				owner = int(sys.Uid)
			}
		}
		if owner != m.euid {
			return "", fmt.Errorf("%s holds the plug of the system service, which runs as user %s: start it with \"systemctl start plug\" (or \"sudo -u plug plug up\"), or give another plug its own folder with --data DIR", m.dir, m.group)
		}
	}
	return m.dir, nil
}

// processInGroup says whether this process is in the named group.
func processInGroup(name string) bool {
	g, err := user.LookupGroup(name)
	if err != nil {
		return false
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return false
	}
	if os.Getegid() == gid {
		return true
	}
	groups, err := os.Getgroups()
	return err == nil && slices.Contains(groups, gid)
}
