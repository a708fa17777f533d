package integration

import (
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestArmhfOwner: the plug a 32-bit ARM board runs (GOARCH=arm GOARM=7,
// built as for the armhf package) owns the data. Its daemon runs under
// qemu-arm-static beside three friends of this machine's architecture; it
// pairs with them, backs up a folder (a few MiB of random data, small files,
// a symlink), proves the friends hold it and restores it byte-identical. The
// owner's invite, backup, verify, snapshots and restore are the ARM binary's
// commands too, so ARM code chunks, encrypts, codes, checks and reads back
// everything, and the shards it wrote cross the architectures both ways.
//
// It skips, saying how to install the emulator, when qemu-arm-static is
// missing, unless PLUG_REQUIRE_QEMU is set (CI), where it fails.
func TestArmhfOwner(t *testing.T) {
	qemu := qemuArm(t)
	bin := buildArmhf(t)
	arm := armPlug{qemu: qemu, bin: bin}

	base := t.TempDir()
	z := filepath.Join(base, "z")
	startPlug(t, z, "--bootstrap", "none", "--name", "zed")
	boot := bootstrapAddr(t, z)
	a := filepath.Join(base, "a")
	start := time.Now()
	owner := arm.start(t, a, "--listen", "/ip4/127.0.0.1/tcp/0", "--bootstrap", boot, "--name", "ann")
	t.Logf("the armhf owner answered status %v after it started", time.Since(start).Round(time.Millisecond))

	for _, n := range []string{"bob", "cat", "dan"} {
		dir := filepath.Join(base, n)
		startPlug(t, dir, "--bootstrap", boot, "--name", n)
		var inv struct{ Code string }
		fromJSON(t, arm.must(t, "invite", "--data", a, "--json").stdout, &inv)
		mustPlug(t, "accept", "--data", dir, inv.Code)
	}
	if fs := friendsOf(t, a); len(fs) != 3 {
		t.Fatalf("the armhf owner lists %d friends after three accepted its invites, want 3: %+v\n%s", len(fs), fs, owner.logText())
	}

	src := filepath.Join(base, "src")
	makeFiles(t, src, 13, 40, 5<<20+123, 1<<20)
	start = time.Now()
	var res struct {
		ID    string `json:"snapshot_id"`
		Files int64  `json:"files"`
	}
	fromJSON(t, arm.must(t, "backup", "--data", a, "--json", src).stdout, &res)
	if res.ID == "" || res.Files != 42 {
		t.Fatalf("the armhf owner's backup: snapshot %q of %d files, want an ID and 42 files", res.ID, res.Files)
	}
	t.Logf("the armhf owner backed up 6 MiB in %v", time.Since(start).Round(time.Millisecond))

	var v verifyJSON
	r := arm.run(t, "verify", "--data", a, "--json")
	fromJSON(t, r.stdout, &v)
	if r.code != 0 || !v.OK || v.CanLose < 1 {
		t.Fatalf("verify on the armhf owner after its backup: exit %d, %+v; want ok and can lose 1\n%s", r.code, v, r.stderr)
	}
	for _, f := range v.Friends {
		if f.Shards == 0 || f.Proved == 0 || f.Missing+f.Corrupt > 0 || f.Offline {
			t.Fatalf("verify on the armhf owner: %s holds %d shards, proved %d, missing %d, corrupt %d, offline %v; want proofs and none bad",
				f.Name, f.Shards, f.Proved, f.Missing, f.Corrupt, f.Offline)
		}
	}

	var snaps []struct {
		ID string `json:"id"`
	}
	fromJSON(t, arm.must(t, "snapshots", "--data", a, "--json").stdout, &snaps)
	if len(snaps) != 1 || snaps[0].ID != res.ID {
		t.Fatalf("snapshots on the armhf owner: %+v, want the one backed up, %s", snaps, res.ID)
	}
	out := filepath.Join(base, "out")
	start = time.Now()
	arm.must(t, "restore", "--data", a, "latest", "--to", out)
	t.Logf("the armhf owner restored it from its friends in %v", time.Since(start).Round(time.Millisecond))
	sameFiles(t, src, filepath.Join(out, src))
}

// qemuArm returns the path of qemu-arm-static, or skips the test saying how
// to install it (fails instead when PLUG_REQUIRE_QEMU is set, as in CI).
func qemuArm(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("qemu-arm-static")
	if err == nil {
		return p
	}
	const msg = "no qemu-arm-static here: the armhf owner's test runs the ARM build under it (Debian: apt-get install -y qemu-user-static)"
	if os.Getenv("PLUG_REQUIRE_QEMU") != "" {
		t.Fatal(msg + "; PLUG_REQUIRE_QEMU is set, so it may not be skipped")
	}
	t.Skip(msg)
	return ""
}

// buildArmhf builds ./cmd/plug as the armhf package does (cmd/mkdeb): for
// GOARCH=arm GOARM=7 without cgo, stripped, into a temporary folder, and
// checks that the result is a 32-bit ARM executable. Unlike the package it
// keeps the build's paths (no -trimpath), which changes no behaviour and
// lets the build reuse what CI's cross-compile step compiled.
func buildArmhf(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "plug-armhf")
	cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", bin, "../cmd/plug")
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm", "GOARM=7", "CGO_ENABLED=0")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build plug for GOARCH=arm GOARM=7: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	mustOK(t, err)
	defer func() { mustOK(t, f.Close()) }()
	if f.Machine != elf.EM_ARM || f.Class != elf.ELFCLASS32 {
		t.Fatalf("the armhf build is %v %v, want EM_ARM ELFCLASS32", f.Machine, f.Class)
	}
	t.Logf("built the armhf plug in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// armPlug runs the ARM build of plug under the emulator.
type armPlug struct {
	qemu string // qemu-arm-static
	bin  string // the plug built for arm
}

// armTimeout bounds one command under emulation (plugOn's 2 minutes, with
// room for an emulator that is 5 to 20 times slower).
const armTimeout = 5 * time.Minute

// command is plugCommand for the ARM build.
func (p armPlug) command(args ...string) *exec.Cmd {
	cmd := exec.Command(p.qemu, append([]string{p.bin}, args...)...)
	cmd.Env = append(os.Environ(), "PLUG_DATA=", "XDG_DATA_HOME=", "PLUG_PUBLIC_RANGES=")
	return cmd
}

// run runs a client command of the ARM build to completion.
func (p armPlug) run(t *testing.T, args ...string) result {
	t.Helper()
	return runCommand(t, p.command(args...), "", armTimeout)
}

// must runs a client command of the ARM build that must succeed.
func (p armPlug) must(t *testing.T, args ...string) result {
	t.Helper()
	r := p.run(t, args...)
	if r.code != 0 {
		t.Fatalf("armhf plug %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// start is startPlugOn for the ARM build on this machine: "plug up" on dir
// under the emulator, ended with the test, once it answers status (asked
// with the ARM build too).
func (p armPlug) start(t *testing.T, dir string, args ...string) *daemon {
	t.Helper()
	cmd := p.command(append([]string{"up", "--data", dir, "--api", "127.0.0.1:0"}, args...)...)
	return startDaemon(t, cmd, dir, armTimeout, func() bool {
		if _, err := os.Stat(filepath.Join(dir, "api.addr")); err != nil {
			return false
		}
		r := p.run(t, "status", "--data", dir, "--json")
		return r.code == 0 && json.Valid([]byte(r.stdout))
	})
}
