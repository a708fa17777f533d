package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serviceTree makes a stand-in for /var/lib/plug: a directory owned by this
// test's user, holding a plug (its keys file) when withKeys.
func serviceTree(t *testing.T, withKeys bool) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "plug")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if withKeys {
		if err := os.WriteFile(filepath.Join(dir, "keys"), []byte("keys\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestServiceDir: the system service's data directory is the default for
// root and the members of group plug once it holds a plug; for nobody
// else, and never for "up" or "init" run by anyone but its owner.
func TestServiceDir(t *testing.T) {
	owner := os.Geteuid() // the test's directories belong to it
	other := owner + 1
	if owner == 0 {
		other = 4242
	}
	member := func(string) bool { return true }
	stranger := func(string) bool { return false }
	withPlug := serviceTree(t, true)
	empty := serviceTree(t, false)
	missing := filepath.Join(t.TempDir(), "absent")
	// notRoots is owned by someone other than root: chowned when the test
	// runs as root, the test's own user otherwise.
	notRoots := serviceTree(t, true)
	if owner == 0 {
		if err := os.Chown(notRoots, other, other); err != nil {
			t.Fatal(err)
		}
	}
	keysDir := serviceTree(t, false)
	if err := os.Mkdir(filepath.Join(keysDir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		dir     string
		cmd     string
		euid    int
		inGroup func(string) bool
		want    string // "" for no service directory
		err     string // part of the refusal, "" for none
	}{
		{"root uses it", withPlug, "status", 0, stranger, withPlug, ""},
		{"a member of group plug uses it", withPlug, "backup", other, member, withPlug, ""},
		{"anyone else keeps their own", withPlug, "status", other, stranger, "", ""},
		{"no plug made yet", empty, "status", 0, member, "", ""},
		{"no directory", missing, "status", 0, member, "", ""},
		{"keys that are not a file", keysDir, "status", 0, member, "", ""},
		{"its owner runs it", withPlug, "up", owner, member, withPlug, ""},
		{"up by a member who is not its owner", withPlug, "up", other, member, "", "systemctl start plug"},
		{"init by a member who is not its owner", withPlug, "init", other, member, "", "--data DIR"},
		{"up by root, not its owner", notRoots, "up", 0, stranger, "", "sudo -u plug plug up"},
		{"up elsewhere when there is no plug", empty, "up", other, member, "", ""},
		{"up by someone it is not for", withPlug, "up", other, stranger, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := serviceMachine{dir: tt.dir, group: "plug", euid: tt.euid, inGroup: tt.inGroup}
			got, err := serviceDir(tt.cmd, m)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), tt.dir) {
					t.Fatalf("serviceDir(%s) = %q, %v; want a refusal naming %s and saying %q", tt.cmd, got, err, tt.dir, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("serviceDir(%s) = %q, %v; want %q", tt.cmd, got, err, tt.want)
			}
		})
	}
}

// TestDataDirFlagAndEnvironmentWin: --data, then $PLUG_DATA, come before
// any default, the system service's included.
func TestDataDirFlagAndEnvironmentWin(t *testing.T) {
	env := map[string]string{"PLUG_DATA": "/srv/from-env", "XDG_DATA_HOME": "/xdg", "HOME": "/home/ann"}
	std := stdio{out: newOutput(io.Discard), err: newOutput(io.Discard), getenv: func(k string) string { return env[k] }}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--data", "/srv/from-flag"}, "/srv/from-flag"},
		{nil, "/srv/from-env"},
	} {
		f := newFlags("status", std)
		if _, err := f.parse(tt.args); err != nil {
			t.Fatal(err)
		}
		if got, err := f.dataDir(std); err != nil || got != tt.want {
			t.Errorf("dataDir with %v = %q, %v; want %q", tt.args, got, err, tt.want)
		}
	}
}

// TestTokenMode: the API token is readable by the data directory's group
// exactly when that group may enter the directory, and follows a change of
// the directory's mode at the next start, keeping its value.
func TestTokenMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plug")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	d := dataDir(dir)
	mode := func() os.FileMode {
		t.Helper()
		st, err := os.Stat(d.apiToken())
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode().Perm()
	}
	tok, err := d.ensureAPIToken()
	if err != nil {
		t.Fatal(err)
	}
	if got := mode(); got != 0o640 {
		t.Fatalf("api.token in a 0750 directory has mode %v, want 0640", got)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	again, err := d.ensureAPIToken()
	if err != nil {
		t.Fatal(err)
	}
	if again != tok {
		t.Fatalf("the token changed at a restart: %q, then %q", tok, again)
	}
	if got := mode(); got != 0o600 {
		t.Fatalf("api.token in a 0700 directory has mode %v, want 0600", got)
	}
	for _, tt := range []struct {
		dir  os.FileMode
		want os.FileMode
	}{{0o700, 0o600}, {0o750, 0o640}, {0o710, 0o640}, {0o705, 0o600}, {0o755, 0o640}} {
		if err := os.Chmod(dir, tt.dir); err != nil {
			t.Fatal(err)
		}
		if got := d.tokenMode(); got != tt.want {
			t.Errorf("tokenMode in a %v directory = %v, want %v", tt.dir, got, tt.want)
		}
	}
}
