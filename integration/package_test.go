package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	serviceUnit = "/lib/systemd/system/plug.service"
	serviceData = "/var/lib/plug"
	// testMember and testStranger are users the test makes to run plug's
	// commands as a member of group plug and as someone else.
	testMember   = "plugtest-member"
	testStranger = "plugtest-other"
)

// requirePackageTools skips the test, saying why, when it cannot install a
// package here: it needs root and Debian's tools. With PLUG_REQUIRE_ROOT set
// (CI, after .ci/packages) it fails instead.
func requirePackageTools(t *testing.T) {
	t.Helper()
	// dpkg, its maintainer scripts and useradd live in the sbin folders,
	// which not every root's PATH has.
	path := os.Getenv("PATH")
	for _, dir := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} {
		if !slices.Contains(filepath.SplitList(path), dir) {
			path += string(filepath.ListSeparator) + dir
		}
	}
	t.Setenv("PATH", path)
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range []string{"dpkg", "dpkg-query", "lintian", "systemd-analyze", "man", "setpriv", "getent", "useradd", "userdel"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "this test installs the Debian package with dpkg and needs " + strings.Join(missing, ", ") + " (.ci/packages installs the tools; run it as root)"
	if os.Getenv("PLUG_REQUIRE_ROOT") != "" {
		t.Fatal(msg + "; PLUG_REQUIRE_ROOT is set, so it may not be skipped")
	}
	t.Skip(msg)
}

// TestDebianPackage: the amd64 package that "go run ./cmd/mkdeb" builds,
// installed on this machine with dpkg. lintian passes it; postinst makes
// the user and group plug and /var/lib/plug (plug:plug, 0750);
// systemd-analyze verifies the installed unit; the unit's ExecStart, run as
// its User with its Environment, serves the web UI on loopback; root's
// "plug status", "plug invite" and "plug backup", with no --data and no
// PLUG_DATA, go to /var/lib/plug, and so does a member of group plug (the
// API token is group-readable there), while anyone else keeps their own;
// SIGTERM stops the daemon cleanly; "dpkg -r" keeps the plug's identity for
// the next install; "dpkg --purge" deletes /var/lib/plug and the user.
//
// This machine (and CI) has no systemd as PID 1, so nothing starts the
// service: the test reads User, Group, Environment and ExecStart from the
// installed unit and runs ExecStart itself with setpriv, as systemd would
// (a clean environment, HOME and USER of the user, working directory /).
// The unit's sandboxing (ProtectSystem=, PrivateTmp=, MemoryMax=) is
// systemd's to apply and is not exercised here.
func TestDebianPackage(t *testing.T) {
	requirePackageTools(t)
	// The test installs and purges a package and users: it refuses to run
	// where that would destroy something it did not make.
	if installed(t) {
		t.Fatal("the package plug is installed on this machine: the test would purge it with its data (/var/lib/plug); remove it first (dpkg --purge plug)")
	}
	for _, u := range []string{"plug", testMember, testStranger} {
		if exists(t, "passwd", u) || exists(t, "group", u) {
			t.Fatalf("this machine has a user or group %s already: the test makes and deletes it; remove it first (deluser --system %s; delgroup --system %s)", u, u, u)
		}
	}
	if _, err := os.Stat(serviceData); err == nil {
		t.Fatalf("%s exists already: the test's purge would delete it; move it away first", serviceData)
	}
	t.Cleanup(func() { cleanUpPackage(t) })

	deb := buildPackage(t)
	runLintian(t, deb)

	out := dpkg(t, "-i", deb)
	checkInstalled(t)
	want, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "plug").Output()
	mustOK(t, err)
	if r := asRoot(t, "", "version"); r.code != 0 || r.stdout != "plug "+string(want)+"\n" {
		t.Fatalf("plug version of the package: exit %d, %q; want \"plug %s\"\n%s", r.code, r.stdout, want, r.stderr)
	}
	runSystemdAnalyze(t)
	unit := readUnit(t, serviceUnit)

	svc := startService(t, unit)
	peer := serviceStatus(t)["peer_id"].(string)
	t.Run("the words are in a file, not in the journal", func(t *testing.T) {
		words := filepath.Join(serviceData, "recovery-words")
		st, err := os.Stat(words)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v (mode %v), want a file of mode 0600", words, err, st.Mode())
		}
		b, err := os.ReadFile(words)
		mustOK(t, err)
		phrase := strings.TrimSpace(string(b[strings.LastIndex(string(b), "\n\n")+2:]))
		if len(strings.Fields(phrase)) != 24 {
			t.Fatalf("%s does not end with the 24 words:\n%s", words, b)
		}
		if log := svc.logText(); strings.Contains(log, strings.Join(strings.Fields(phrase)[:3], " ")) || !strings.Contains(log, words) {
			t.Fatalf("the service's log shows the words, or does not say where they are:\n%s", log)
		}
	})
	t.Run("root uses the service's data directory", func(t *testing.T) {
		checkRootsStatus(t, peer)
	})
	t.Run("a member of group plug uses it, anyone else their own", func(t *testing.T) {
		checkOtherUsers(t, peer)
	})
	t.Run("root's plug up refuses the service's directory", func(t *testing.T) {
		r := asRoot(t, "", "up")
		if r.code != 1 || !strings.Contains(r.stderr, serviceData+" holds the plug of the system service") || !strings.Contains(r.stderr, "systemctl start plug") {
			t.Fatalf("plug up by root with no --data: exit %d\n%s", r.code, r.stderr)
		}
	})
	t.Run("root backs up through the service", func(t *testing.T) {
		backupThroughService(t)
	})

	stopService(t, svc)
	t.Run("first boot in a browser on the LAN", func(t *testing.T) {
		firstBootOnTheLAN(t, unit)
	})
	t.Logf("dpkg -i:\n%s", out)

	out = dpkg(t, "-r", "plug")
	if !strings.Contains(out, serviceData+" (this plug's identity and data) and the user plug stay until the package is purged") {
		t.Errorf("dpkg -r did not say that it keeps %s:\n%s", serviceData, out)
	}
	if _, err := os.Stat(filepath.Join(serviceData, "keys")); err != nil {
		t.Fatalf("dpkg -r removed the plug's keys: %v", err)
	}
	if !exists(t, "passwd", "plug") {
		t.Fatal("dpkg -r removed the user plug")
	}
	dpkg(t, "-i", deb)
	checkInstalled(t)
	svc = startService(t, unit)
	if got := serviceStatus(t)["peer_id"]; got != peer {
		t.Fatalf("after dpkg -r and dpkg -i the plug is %v, want the same plug %s", got, peer)
	}
	stopService(t, svc)

	out = dpkg(t, "--purge", "plug")
	for _, said := range []string{"deleted " + serviceData, "deleted the system user plug"} {
		if !strings.Contains(out, said) {
			t.Errorf("dpkg --purge did not say %q:\n%s", said, out)
		}
	}
	if _, err := os.Stat(serviceData); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dpkg --purge left %s: %v", serviceData, err)
	}
	for _, db := range []string{"passwd", "group"} {
		if exists(t, db, "plug") {
			t.Errorf("dpkg --purge left plug in %s", db)
		}
	}
	if installed(t) {
		t.Error("dpkg --purge left the package installed")
	}
}

// buildPackage runs "go run ./cmd/mkdeb -arch amd64" into a temporary
// folder and returns the package it wrote; with $PLUG_DEB_DIR (where
// .ci/packages built them from this same tree) it takes the amd64 package
// there.
func buildPackage(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("PLUG_DEB_DIR"); dir != "" {
		debs, _ := filepath.Glob(filepath.Join(dir, "plug_*_amd64.deb"))
		if len(debs) != 1 {
			t.Fatalf("PLUG_DEB_DIR=%s holds %v, want one plug_VERSION_amd64.deb (run .ci/packages)", dir, debs)
		}
		t.Logf("the package .ci/packages built: %s", debs[0])
		return debs[0]
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", "./cmd/mkdeb", "-arch", "amd64", "-out", dir)
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run ./cmd/mkdeb: %v\n%s", err, out)
	}
	t.Logf("go run ./cmd/mkdeb -arch amd64:\n%s", out)
	debs, _ := filepath.Glob(filepath.Join(dir, "plug_*_amd64.deb"))
	if len(debs) != 1 {
		t.Fatalf("go run ./cmd/mkdeb wrote %v into %s, want one plug_VERSION_amd64.deb", debs, dir)
	}
	return debs[0]
}

// runLintian fails on every lintian error or warning that the package's
// overrides do not explain.
func runLintian(t *testing.T, deb string) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "lintian", "--display-info", "--fail-on", "error,warning", deb).CombinedOutput()
	if err != nil {
		t.Fatalf("lintian %s: %v\n%s", filepath.Base(deb), err, out)
	}
	t.Logf("lintian (errors and warnings fail the test; info shown):\n%s", out)
}

// runSystemdAnalyze verifies the installed unit, whose ExecStart must exist.
func runSystemdAnalyze(t *testing.T) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "systemd-analyze", "verify", serviceUnit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", serviceUnit, err, out)
	}
	// Lines about other units of the machine are not the package's.
	for _, line := range lines(string(out)) {
		if strings.Contains(line, "plug.service") || strings.Contains(line, "/usr/bin/plug") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
	t.Logf("systemd-analyze verify %s: ok%s", serviceUnit, indent(string(out)))
}

// checkInstalled checks what postinst made: the system user and group plug
// and its data directory.
func checkInstalled(t *testing.T) {
	t.Helper()
	pw := getent(t, "passwd", "plug")
	gr := getent(t, "group", "plug")
	if len(pw) < 7 || len(gr) < 3 {
		t.Fatalf("postinst made no user or group plug: passwd %q, group %q", pw, gr)
	}
	uid, _ := strconv.Atoi(pw[2])
	if uid == 0 || uid >= 1000 {
		t.Errorf("the user plug has the uid %d, want a system user's", uid)
	}
	if pw[3] != gr[2] {
		t.Errorf("the user plug's group is %s, want plug's %s", pw[3], gr[2])
	}
	if pw[5] != serviceData {
		t.Errorf("the user plug's home is %s, want %s", pw[5], serviceData)
	}
	st, err := os.Stat(serviceData)
	if err != nil {
		t.Fatalf("postinst made no %s: %v", serviceData, err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if strconv.Itoa(int(sys.Uid)) != pw[2] || strconv.Itoa(int(sys.Gid)) != gr[2] || st.Mode().Perm() != 0o750 || !st.IsDir() {
		t.Errorf("%s is %v owned by %d:%d, want a directory 0750 owned by plug:plug (%s:%s)", serviceData, st.Mode(), sys.Uid, sys.Gid, pw[2], gr[2])
	}
}

// unit is what the test takes from the installed plug.service.
type unit struct {
	user, group string
	env         []string
	execStart   []string
}

// readUnit reads the [Service] section of a unit file.
func readUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }() // read only
	var u unit
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section != "[Service]" {
			continue
		}
		switch k {
		case "User":
			u.user = v
		case "Group":
			u.group = v
		case "Environment":
			// One or more NAME=VALUE, space-separated; no quoting is used.
			u.env = append(u.env, strings.Fields(v)...)
		case "ExecStart":
			u.execStart = strings.Fields(v)
		}
	}
	mustOK(t, sc.Err())
	if u.user == "" || u.group == "" || len(u.execStart) == 0 || strings.ContainsAny(u.execStart[0][:1], "-@+!:") {
		t.Fatalf("%s: want User=, Group= and a plain ExecStart=, got %+v", path, u)
	}
	t.Logf("%s: User=%s Group=%s Environment=%v ExecStart=%v", path, u.user, u.group, u.env, u.execStart)
	return u
}

// startService runs the unit's ExecStart as systemd would and waits until
// the web UI answers on loopback at the address the daemon wrote.
func startService(t *testing.T, u unit) *daemon {
	t.Helper()
	pw := getent(t, "passwd", u.user)
	args := append([]string{"--reuid=" + u.user, "--regid=" + u.group, "--init-groups", "--"}, u.execStart...)
	cmd := exec.Command("setpriv", args...)
	cmd.Dir = "/"
	cmd.Env = append([]string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
		"HOME=" + pw[5], "USER=" + u.user, "LOGNAME=" + u.user, "SHELL=" + pw[6],
	}, u.env...)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	return startDaemon(t, cmd, serviceData, 60*time.Second, func() bool {
		addr, tok, ok := serviceAPI()
		if !ok {
			return false
		}
		if host, _, _ := net.SplitHostPort(addr); !net.ParseIP(host).IsLoopback() {
			t.Fatalf("the service's API listens on %s, want loopback", addr)
		}
		req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+addr+"/api/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close() // only the status matters
		if resp.StatusCode != http.StatusOK {
			return false
		}
		checkLoginPage(t, client, addr)
		return true
	})
}

// serviceAPI reads the address and the token the daemon wrote in its directory.
func serviceAPI() (addr, token string, ok bool) {
	a, err1 := os.ReadFile(filepath.Join(serviceData, "api.addr"))
	k, err2 := os.ReadFile(filepath.Join(serviceData, "api.token"))
	return strings.TrimSpace(string(a)), strings.TrimSpace(string(k)), err1 == nil && err2 == nil
}

// checkLoginPage: the web UI's login page answers on the API's address.
func checkLoginPage(t *testing.T, client *http.Client, addr string) {
	t.Helper()
	resp, err := client.Get("http://" + addr + "/login")
	if err != nil {
		t.Fatalf("the web UI does not answer: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close() // read whole
	mustOK(t, err)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET http://%s/login: %s %s\n%.300s", addr, resp.Status, resp.Header.Get("Content-Type"), body)
	}
}

// stopService sends SIGTERM, as systemd stops the unit, and checks that the
// daemon stopped cleanly: exit 0, its store closed, api.addr removed.
func stopService(t *testing.T, d *daemon) {
	t.Helper()
	if code := d.stop(); code != 0 {
		t.Fatalf("the service exited %d on SIGTERM, want 0:\n%s", code, d.logText())
	}
	if !strings.Contains(d.logText(), "plug stopped") {
		t.Fatalf("the service's log does not end with \"plug stopped\":\n%s", d.logText())
	}
	if _, err := os.Stat(filepath.Join(serviceData, "api.addr")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("api.addr is still there after the service stopped: %v", err)
	}
}

// asRoot runs the installed plug as root, with neither PLUG_DATA nor
// XDG_DATA_HOME, as "sudo plug ..." would.
func asRoot(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return runPlugAs(t, nil, stdin, args...)
}

// runPlugAs runs /usr/bin/plug, as root when prefix is nil, else through
// prefix (setpriv ... --), with the environment of a login shell without
// PLUG_DATA and XDG_DATA_HOME.
func runPlugAs(t *testing.T, prefix []string, stdin string, args ...string) result {
	t.Helper()
	argv := append(append(slices.Clone(prefix), "/usr/bin/plug"), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PLUG_DATA=") && !strings.HasPrefix(kv, "XDG_DATA_HOME=") && (prefix == nil || !strings.HasPrefix(kv, "HOME=")) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if prefix != nil {
		cmd.Env = append(cmd.Env, "HOME=/nonexistent")
	}
	return runCommand(t, cmd, stdin, 2*time.Minute)
}

// serviceStatus is root's "plug status --json" with no --data.
func serviceStatus(t *testing.T) map[string]any {
	t.Helper()
	r := asRoot(t, "", "status", "--json")
	if r.code != 0 {
		t.Fatalf("plug status --json as root with no --data: exit %d\n%s", r.code, r.stderr)
	}
	var st map[string]any
	fromJSON(t, r.stdout, &st)
	return st
}

func checkRootsStatus(t *testing.T, peer string) {
	r := asRoot(t, "", "status")
	if r.code != 0 || !strings.Contains(r.stdout, peer) || !strings.Contains(r.stdout, serviceData) {
		t.Fatalf("plug status as root with no --data: exit %d, want the service's plug %s in %s\n%s%s", r.code, peer, serviceData, r.stdout, r.stderr)
	}
	for _, f := range []struct {
		name string
		mode os.FileMode
	}{{"api.token", 0o640}, {"api.addr", 0o644}, {"keys", 0o600}} {
		st, err := os.Stat(filepath.Join(serviceData, f.name))
		if err != nil || st.Mode().Perm() != f.mode {
			t.Errorf("%s/%s: %v, mode %v; want %v", serviceData, f.name, err, st.Mode().Perm(), f.mode)
		}
	}
}

// checkOtherUsers makes a member of group plug and a user outside it, and
// runs "plug status" as each, with no --data and no PLUG_DATA.
func checkOtherUsers(t *testing.T, peer string) {
	for _, u := range []struct{ name, groups string }{{testMember, "plug"}, {testStranger, ""}} {
		args := []string{"--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"}
		if u.groups != "" {
			args = append(args, "--groups", u.groups)
		}
		if out, err := exec.Command("useradd", append(args, u.name)...).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s: %v\n%s", u.name, err, out)
		}
	}
	as := func(user string) []string {
		return []string{"setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups", "--"}
	}
	r := runPlugAs(t, as(testMember), "", "status", "--json")
	if r.code != 0 {
		t.Fatalf("plug status --json by %s (in group plug): exit %d\n%s", testMember, r.code, r.stderr)
	}
	var st map[string]any
	fromJSON(t, r.stdout, &st)
	if st["peer_id"] != peer {
		t.Fatalf("plug status by %s (in group plug) found the plug %v, want the service's %s", testMember, st["peer_id"], peer)
	}
	r = runPlugAs(t, as(testStranger), "", "status")
	if want := "no plug is running on /nonexistent/.local/share/plug"; r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("plug status by %s (not in group plug): exit %d, want 1 and %q\n%s%s", testStranger, r.code, want, r.stdout, r.stderr)
	}
}

// backupThroughService pairs the service's plug with two ordinary test
// plugs (a backup needs at least two friends: one may be lost) and backs up
// a small folder with root's "plug backup", no --data.
func backupThroughService(t *testing.T) {
	base := t.TempDir()
	for _, n := range []string{"bob", "cat"} {
		startPlug(t, filepath.Join(base, n), "--bootstrap", "none", "--name", n)
		r := asRoot(t, "", "invite", "--json")
		if r.code != 0 {
			t.Fatalf("plug invite --json as root: exit %d\n%s", r.code, r.stderr)
		}
		var inv struct{ Code string }
		fromJSON(t, r.stdout, &inv)
		mustPlug(t, "accept", "--data", filepath.Join(base, n), inv.Code)
	}
	r := asRoot(t, "", "friends", "--json")
	if r.code != 0 {
		t.Fatalf("plug friends --json as root: exit %d\n%s", r.code, r.stderr)
	}
	var friends []friendJSON
	fromJSON(t, r.stdout, &friends)
	if len(friends) != 2 {
		t.Fatalf("the service's plug lists %d friends, want bob and cat:\n%s", len(friends), r.stdout)
	}

	// The daemon runs as user plug and reads what it backs up: the folder
	// must be readable by it. It is made outside t.TempDir (0700 folders)
	// and opened to everyone. (Under systemd, PrivateTmp= would give the
	// service its own /tmp; nothing applies it here.)
	src, err := os.MkdirTemp("", "plug-package-src-")
	mustOK(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(src) }) // a temporary folder: nothing to keep
	mustOK(t, os.Chmod(src, 0o755))
	const n = 12
	for i := range n {
		p := filepath.Join(src, "docs", fmt.Sprintf("note-%02d.txt", i))
		mustOK(t, os.MkdirAll(filepath.Dir(p), 0o755))
		mustOK(t, os.WriteFile(p, bytes.Repeat([]byte(fmt.Sprintf("note %d\n", i)), 1000+i), 0o644))
	}
	r = asRoot(t, "", "backup", "--json", src)
	if r.code != 0 {
		t.Fatalf("plug backup as root with no --data: exit %d\n%s", r.code, r.stderr)
	}
	var b struct {
		ID    string `json:"snapshot_id"`
		Files int    `json:"files"`
	}
	fromJSON(t, r.stdout, &b)
	if b.ID == "" || b.Files != n {
		t.Fatalf("plug backup --json = %s, want a snapshot of %d files", r.stdout, n)
	}
	r = asRoot(t, "", "snapshots", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, b.ID) {
		t.Fatalf("plug snapshots as root does not list %s: exit %d\n%s%s", b.ID, r.code, r.stdout, r.stderr)
	}
	for _, f := range []string{"bob", "cat"} {
		if held, _ := filepath.Glob(filepath.Join(base, f, "shards", "*", "*")); len(held) == 0 {
			t.Errorf("%s holds no shard of the service's backup", f)
		}
	}
}

// dpkg runs dpkg and returns what it said. dpkg refuses to run while
// another dpkg or apt holds its lock, and has no way to wait for it: the
// test tries again every 2 s for up to 5 minutes while it says so.
func dpkg(t *testing.T, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		out, err := exec.Command("dpkg", args...).CombinedOutput()
		if err == nil {
			return string(out)
		}
		if !bytes.Contains(out, []byte("locked by another process")) || time.Now().After(deadline) {
			t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		time.Sleep(2 * time.Second)
	}
}

// installed says whether dpkg knows the package plug as installed (or
// half-installed, or removed with its configuration left).
func installed(t *testing.T) bool {
	t.Helper()
	out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Abbrev}", "plug").Output()
	if err != nil {
		return false // dpkg-query fails on a package it does not know
	}
	s := strings.TrimSpace(string(out))
	return s != "" && s != "un"
}

// getent returns the fields of name in database db (passwd, group), nil
// when it has none.
func getent(t *testing.T, db, name string) []string {
	t.Helper()
	out, err := exec.Command("getent", db, name).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 2 {
		return nil // not found
	}
	mustOK(t, err)
	return strings.Split(strings.TrimSpace(string(out)), ":")
}

func exists(t *testing.T, db, name string) bool { return getent(t, db, name) != nil }

// cleanUpPackage leaves the machine as the test found it, whatever
// happened: the package purged, the test's users and plug's user, group and
// data directory gone (the test checked at its start that none was there).
func cleanUpPackage(t *testing.T) {
	if installed(t) {
		if out, err := exec.Command("dpkg", "--purge", "plug").CombinedOutput(); err != nil {
			t.Errorf("clean-up: dpkg --purge plug: %v\n%s", err, out)
		}
	}
	for _, u := range []string{testMember, testStranger, "plug"} {
		if exists(t, "passwd", u) {
			if out, err := exec.Command("userdel", u).CombinedOutput(); err != nil {
				t.Errorf("clean-up: userdel %s: %v\n%s", u, err, out)
			}
		}
		if exists(t, "group", u) {
			if out, err := exec.Command("groupdel", u).CombinedOutput(); err != nil {
				t.Errorf("clean-up: groupdel %s: %v\n%s", u, err, out)
			}
		}
	}
	if err := os.RemoveAll(serviceData); err != nil {
		t.Errorf("clean-up: %v", err)
	}
}

func indent(s string) string {
	if strings.TrimSpace(s) == "" {
		return ""
	}
	return "\n  " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n  ")
}
