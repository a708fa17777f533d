package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ulikunitz/xz"
)

func TestParseArches(t *testing.T) {
	all, err := parseArches(allArches())
	if err != nil || len(all) != 3 {
		t.Fatalf("parseArches(%q) = %v, %v; want the three", allArches(), all, err)
	}
	if got := archNames(all); got != "amd64, arm64, armhf" {
		t.Fatalf("the default architectures are %s, want amd64, arm64, armhf", got)
	}
	armhf, err := parseArches(" armhf, armhf ")
	if err != nil || len(armhf) != 1 || armhf[0].goarch != "arm" || armhf[0].goarm != "7" {
		t.Fatalf("parseArches(armhf) = %+v, %v; want one GOARCH=arm GOARM=7", armhf, err)
	}
	for _, bad := range []string{"", ",", "x86_64", "amd64,i386"} {
		if got, err := parseArches(bad); err == nil {
			t.Errorf("parseArches(%q) = %v, want an error", bad, got)
		}
	}
}

func TestParseArgs(t *testing.T) {
	opt, err := parseArgs(nil, io.Discard)
	if err != nil || opt.out != "dist" || len(opt.arches) != 3 || opt.version != "" || opt.maxSize != 0 {
		t.Fatalf("the defaults are %+v, %v; want -out dist, three architectures, the version from git, each architecture's size limit", opt, err)
	}
	for _, a := range opt.arches {
		if want := map[string]int64{"amd64": pcMaxSize, "arm64": 30_000_000, "armhf": 30_000_000}[a.deb]; a.maxSize != want {
			t.Errorf("%s: size limit %d, want %d", a.deb, a.maxSize, want)
		}
	}
	opt, err = parseArgs([]string{"-out", "/tmp/x", "-arch", "arm64", "-version", "1.0~rc1", "-max-size", "30MiB"}, io.Discard)
	if err != nil || opt.out != "/tmp/x" || archNames(opt.arches) != "arm64" || opt.version != "1.0~rc1" || opt.maxSize != 30<<20 {
		t.Fatalf("parseArgs = %+v, %v", opt, err)
	}
	if opt, err := parseArgs([]string{"-max-size", "31457280"}, io.Discard); err != nil || opt.maxSize != 30<<20 {
		t.Fatalf("parseArgs(-max-size 31457280) = %+v, %v; want 30 MiB", opt, err)
	}
	for _, args := range [][]string{{"-out", ""}, {"-arch", "sparc"}, {"-version", "v1"}, {"-max-size", "big"}, {"-max-size", "0"}, {"extra"}, {"-nope"}} {
		_, err := parseArgs(args, io.Discard)
		if _, ok := err.(*usageError); !ok {
			t.Errorf("parseArgs(%q) = %v, want a usage error", args, err)
		}
	}
}

// TestPackageFiles: what a package installs, where, and with which modes.
func TestPackageFiles(t *testing.T) {
	want := []string{
		"/usr/bin/plug 0755",
		"/lib/systemd/system/plug.service 0644",
		"/usr/share/doc/plug/copyright 0644",
		"/usr/share/doc/plug/changelog.gz 0644",
		"/usr/share/man/man1/plug.1.gz 0644",
		"/usr/share/lintian/overrides/plug 0644",
	}
	var got []string
	for _, f := range packageFiles("/stage/amd64/plug", "/stage", "0.0~git20261203.abc1234") {
		got = append(got, fmt.Sprintf("%s %04o", f.dst, f.mode))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("packageFiles = %q, want %q", got, want)
	}
	// A version with a Debian revision is not native: its changelog has
	// the other name (lintian's rule).
	for _, f := range packageFiles("/stage/amd64/plug", "/stage", "1.0-1") {
		if strings.Contains(f.dst, "changelog") && f.dst != "/usr/share/doc/plug/changelog.Debian.gz" {
			t.Fatalf("the changelog of a non-native version is %s", f.dst)
		}
	}
}

// TestService: the unit has the directives the service is made of; the
// integration test TestDebianPackage has systemd-analyze check it whole.
func TestService(t *testing.T) {
	b, err := assets.ReadFile("debian/plug.service")
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			set[line] = true
		}
	}
	for _, d := range []string{
		"User=plug", "Group=plug", "StateDirectory=plug", "StateDirectoryMode=0750",
		"Environment=PLUG_DATA=/var/lib/plug", "ExecStart=/usr/bin/plug up --lan-ui :7443",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=read-only", "PrivateTmp=yes",
		"MemoryMax=320M", "Restart=on-failure", "KillSignal=SIGTERM", "WantedBy=multi-user.target",
	} {
		if !set[d] {
			t.Errorf("plug.service lacks %s", d)
		}
	}
}

// TestBuildPackage packs a stand-in binary and reads the package back: its
// control fields, its maintainer scripts and every file it installs.
func TestBuildPackage(t *testing.T) {
	stage, out := t.TempDir(), t.TempDir()
	when := time.Date(2026, 12, 3, 4, 5, 6, 0, time.UTC)
	version := "0.0~git20261203.abc1234"
	src := source{version: version, commit: strings.Repeat("ab", 20), time: when}
	if err := writeAssets(stage, version, src); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(stage, "arm64", "plug")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte("\x7fELF stand-in for the plug"), 0o755); err != nil {
		t.Fatal(err)
	}
	a := arches[1]
	path := filepath.Join(out, debName(version, a))
	if err := writeDeb(info(a, version, when, packageFiles(bin, stage, version), maintainerScripts(stage)), path); err != nil {
		t.Fatal(err)
	}
	if got := filepath.Base(path); got != "plug_0.0~git20261203.abc1234_arm64.deb" {
		t.Fatalf("the package is named %s", got)
	}
	members := readAr(t, path)
	if got := string(members["debian-binary"]); got != "2.0\n" {
		t.Fatalf("debian-binary = %q", got)
	}

	control := readTar(t, gzipReader(t, members["control.tar.gz"]))
	fields := string(control["control"].data)
	for _, f := range []string{
		"Package: plug\n", "Version: " + version + "\n", "Architecture: arm64\n", "Section: net\n",
		"Priority: optional\n", "Depends: adduser\n", "Maintainer: " + maintainer + "\n",
		"Description: personal server that backs up your files to your friends\n",
	} {
		if !strings.Contains(fields, f) {
			t.Errorf("control lacks %q:\n%s", f, fields)
		}
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		e, ok := control[s]
		if !ok {
			t.Errorf("no %s", s)
			continue
		}
		if e.mode != 0o755 || !bytes.HasPrefix(e.data, []byte("#!/bin/sh\n")) || !bytes.Contains(e.data, []byte("\nset -e\n")) {
			t.Errorf("%s: mode %04o, want 0755 and a POSIX sh script with set -e:\n%.80s", s, e.mode, e.data)
		}
		// dash is Debian's /bin/sh: the scripts must parse there.
		if out, err := exec.Command("sh", "-n", "-c", string(e.data)).CombinedOutput(); err != nil {
			t.Errorf("%s does not parse: %v\n%s", s, err, out)
		}
	}

	xr, err := xz.NewReader(bytes.NewReader(members["data.tar.xz"]))
	if err != nil {
		t.Fatal(err)
	}
	data := readTar(t, xr)
	var files []string
	for name, e := range data {
		if e.typ == tar.TypeReg {
			files = append(files, fmt.Sprintf("%s %04o %s", name, e.mode, e.owner))
		}
		if !e.time.Equal(when) {
			t.Errorf("%s has the time %v, want the commit's %v (reproducible packages)", name, e.time, when)
		}
	}
	slices.Sort(files)
	want := []string{
		"lib/systemd/system/plug.service 0644 root:root",
		"usr/bin/plug 0755 root:root",
		"usr/share/doc/plug/changelog.gz 0644 root:root",
		"usr/share/doc/plug/copyright 0644 root:root",
		"usr/share/lintian/overrides/plug 0644 root:root",
		"usr/share/man/man1/plug.1.gz 0644 root:root",
	}
	if !slices.Equal(files, want) {
		t.Fatalf("the package installs\n%s\nwant\n%s", strings.Join(files, "\n"), strings.Join(want, "\n"))
	}
	cl, err := io.ReadAll(gzipReader(t, data["usr/share/doc/plug/changelog.gz"].data))
	if err != nil {
		t.Fatal(err)
	}
	if want := "plug (" + version + ") unstable; urgency=medium"; !strings.HasPrefix(string(cl), want) || !strings.Contains(string(cl), src.commit) {
		t.Fatalf("changelog = %q, want it to start with %q and name the commit", cl, want)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(out, ".mkdeb-*")); len(left) > 0 {
		t.Fatalf("temporary files left beside the package: %v", left)
	}
}

// readAr returns the members of an ar archive (a .deb) by name.
func readAr(t *testing.T, path string) map[string][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("!<arch>\n")) {
		t.Fatalf("%s is not an ar archive", path)
	}
	out := map[string][]byte{}
	for b = b[8:]; len(b) >= 60; {
		name := strings.TrimSuffix(strings.TrimSpace(string(b[:16])), "/")
		size, err := strconv.Atoi(strings.TrimSpace(string(b[48:58])))
		if err != nil || 60+size > len(b) {
			t.Fatalf("%s: bad ar member header %q", path, b[:60])
		}
		out[name] = b[60 : 60+size]
		b = b[60+size+size%2:]
	}
	return out
}

func gzipReader(t *testing.T, b []byte) io.Reader {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return zr
}

type tarEntry struct {
	typ   byte
	mode  int64
	owner string
	time  time.Time
	data  []byte
}

// readTar returns the entries of a tar stream by name, without the
// leading "./".
func readTar(t *testing.T, r io.Reader) map[string]tarEntry {
	t.Helper()
	out := map[string]tarEntry{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(h.Name, "./")] = tarEntry{typ: h.Typeflag, mode: h.Mode, owner: h.Uname + ":" + h.Gname, time: h.ModTime, data: b}
	}
}
