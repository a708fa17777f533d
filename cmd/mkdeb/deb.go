package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// assets are the package's files besides the binary: the service, the
// maintainer scripts, the copyright file, the man page and the lintian
// overrides.
//
//go:embed debian
var assets embed.FS

const (
	pkgName    = "plug"
	maintainer = "plug maintainers <maintainers@users.noreply.github.com>"
	// description is the synopsis, then the long description.
	description = `personal server that backs up your files to your friends
A plug is a small personal server that belongs to one person. It chunks,
encrypts (age) and erasure-codes (Reed-Solomon) its owner's files and spreads
them across friends' plugs, so that some friends can vanish without losing
anything; it stores the shards its friends give it; it finds friends through
a Kademlia DHT by peer ID; and it brings everything back on new hardware from
a 24-word recovery phrase. It also runs a microblog shared with friends and
serves a local web UI.
This package runs the plug as the system service plug.service (user plug,
data in /var/lib/plug); "sudo plug status" talks to it.`
)

// The largest stripped plug mkdeb packs, unless -max-size says otherwise.
// A board's (arm64, armhf) must fit the 30 MB of a $30 board's budget;
// a PC's, larger by amd64's longer instructions, gets a ceiling just above
// today's against growth (33,026,313 bytes in 2026-12).
const (
	boardMaxSize = 30_000_000
	pcMaxSize    = 34_000_000
)

// notInlined are the packages a package's plug compiles without inlining
// (-gcflags=PATTERN=-l): big and off the paths where the plug spends its
// time — libp2p's control plane (the DHT, AutoNAT, identify, relays;
// yamux, which carries the bytes, keeps inlining), protobuf, DNS, tracing
// and metrics the plug never turns on, the feed parser, templates, JSON
// and reflection for the API. Inlining copies small functions into each
// caller; without it these packages are about 1.7 MB smaller (arm64
// 31.26 → 29.62 MB), and the benchmarks of the shard streams
// (BenchmarkShardGet, BenchmarkShardPut, BenchmarkStreamRaw) stay within
// this machine's noise. Everything the bytes of a backup pass through
// keeps it: the runtime, crypto, hashing, compression, Reed-Solomon, age,
// badger, quic-go, yamux and the plug's own code.
var notInlined = []string{
	// libp2p's control plane and what it brings along.
	"github.com/libp2p/go-libp2p/...", "github.com/libp2p/go-libp2p-kad-dht/...",
	"github.com/libp2p/go-libp2p-kbucket/...", "github.com/libp2p/go-libp2p-record/...",
	"github.com/libp2p/go-libp2p-routing-helpers/...", "github.com/libp2p/go-netroute/...",
	"github.com/libp2p/zeroconf/...", "github.com/libp2p/go-msgio/...",
	"github.com/libp2p/go-cidranger/...", "github.com/libp2p/go-flow-metrics/...",
	"github.com/libp2p/go-libp2p-asn-util/...", "github.com/ipfs/...", "github.com/ipld/...",
	"github.com/multiformats/...", "github.com/mr-tron/...", "github.com/polydawn/...",
	"github.com/whyrusleeping/...", "github.com/davidlazar/...", "github.com/flynn/...",
	"github.com/decred/...", "github.com/google/gopacket/...", "github.com/huin/...",
	"github.com/koron/...", "github.com/jackpal/...", "github.com/pion/...",
	"github.com/miekg/dns/...", "github.com/benbjohnson/...", "gonum.org/...",
	"google.golang.org/protobuf/...", "go.opentelemetry.io/...", "github.com/go-logr/...",
	"go.uber.org/fx/...", "go.uber.org/dig/...", "go.uber.org/zap/...",
	"github.com/prometheus/...", "golang.org/x/time/...", "golang.org/x/exp/...",
	// The web UI, the harvester, the command line.
	"github.com/mmcdole/...", "github.com/microcosm-cc/...", "github.com/aymerick/...",
	"github.com/gorilla/...", "github.com/skip2/...", "github.com/fsnotify/...",
	"github.com/mattn/...", "golang.org/x/text/...", "golang.org/x/net/...",
	"vendor/golang.org/x/net/...", "vendor/golang.org/x/text/...",
	"net/http/...", "html", "html/template", "text/template/...", "encoding/json",
	"encoding/xml", "encoding/gob", "encoding/base64", "encoding/hex", "encoding/pem",
	"encoding/asn1", "regexp/...", "log", "log/slog", "crypto/x509/...", "go/...", "fmt",
	"reflect", "strconv", "net", "net/netip", "net/url", "mime/...", "unicode", "flag",
	"os/user", "path/...", "archive/...", "image/...", "runtime/pprof", "internal/profile",
}

// gcflags are the compiler's flags for the plug of a package: notInlined.
func gcflags() []string {
	out := make([]string, len(notInlined))
	for i, p := range notInlined {
		out[i] = "-gcflags=" + p + "=-l"
	}
	return out
}

// versionVar is the variable of ./cmd/plug that the build sets to the
// package's version (go build -ldflags "-X main.buildVersion=VERSION");
// "plug version" prints it.
const versionVar = "main.buildVersion"

// arch is one architecture the packages are built for.
type arch struct {
	deb     string // the Debian name
	goarch  string
	goarm   string // GOARM, for 32-bit ARM
	maxSize int64  // the largest stripped plug to pack, unless -max-size
}

// arches are the plug's hardware: ARM boards (64 and 32 bit) and PCs.
var arches = []arch{
	{deb: "amd64", goarch: "amd64", maxSize: pcMaxSize},
	{deb: "arm64", goarch: "arm64", maxSize: boardMaxSize},
	{deb: "armhf", goarch: "arm", goarm: "7", maxSize: boardMaxSize},
}

func allArches() string {
	var names []string
	for _, a := range arches {
		names = append(names, a.deb)
	}
	return strings.Join(names, ",")
}

// parseArches reads -arch: Debian architecture names, comma-separated.
func parseArches(list string) ([]arch, error) {
	var out []arch
	seen := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		found := false
		for _, a := range arches {
			if a.deb == name {
				out = append(out, a)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("-arch: unknown architecture %q: choose among %s", name, allArches())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-arch is empty: choose among %s", allArches())
	}
	return out, nil
}

// debName is the conventional file name of a package.
func debName(version string, a arch) string {
	return fmt.Sprintf("%s_%s_%s.deb", pkgName, fileVersion(version), a.deb)
}

// file is one file a package installs.
type file struct {
	dst  string      // where it is installed
	src  string      // where it is while the package is built
	mode fs.FileMode // its permissions
}

// packageFiles lists what a package installs: binary is the plug built
// for its architecture, stage the folder where writeAssets put the rest.
// The directories that hold them are added by nfpm (root, 0755); the
// data directory /var/lib/plug is made by postinst, for user plug.
func packageFiles(binary, stage, version string) []file {
	changelog := "changelog.Debian.gz"
	if native(version) {
		changelog = "changelog.gz"
	}
	return []file{
		{dst: "/usr/bin/plug", src: binary, mode: 0o755},
		{dst: "/lib/systemd/system/plug.service", src: filepath.Join(stage, "plug.service"), mode: 0o644},
		{dst: "/usr/share/doc/plug/copyright", src: filepath.Join(stage, "copyright"), mode: 0o644},
		{dst: "/usr/share/doc/plug/" + changelog, src: filepath.Join(stage, "changelog.gz"), mode: 0o644},
		{dst: "/usr/share/man/man1/plug.1.gz", src: filepath.Join(stage, "plug.1.gz"), mode: 0o644},
		{dst: "/usr/share/lintian/overrides/plug", src: filepath.Join(stage, "lintian-overrides"), mode: 0o644},
	}
}

// maintainerScripts are the scripts in the staging folder, by nfpm's name.
func maintainerScripts(stage string) nfpm.Scripts {
	return nfpm.Scripts{
		PostInstall: filepath.Join(stage, "postinst"),
		PreRemove:   filepath.Join(stage, "prerm"),
		PostRemove:  filepath.Join(stage, "postrm"),
	}
}

// writeAssets puts the package's files besides the binary into stage: the
// embedded ones as they are (the man page gzipped) and the changelog, made
// for this version.
func writeAssets(stage, version string, src source) error {
	for _, name := range []string{"plug.service", "copyright", "lintian-overrides", "postinst", "prerm", "postrm"} {
		b, err := assets.ReadFile("debian/" + name)
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if strings.HasPrefix(name, "post") || strings.HasPrefix(name, "pre") {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(stage, name), b, mode); err != nil {
			return err
		}
	}
	man, err := assets.ReadFile("debian/plug.1")
	if err != nil {
		return err
	}
	if err := writeGzip(filepath.Join(stage, "plug.1.gz"), man); err != nil {
		return err
	}
	return writeGzip(filepath.Join(stage, "changelog.gz"), changelog(version, src))
}

// changelog is the package's Debian changelog: one entry, for this build.
func changelog(version string, src source) []byte {
	what := "  * Built by cmd/mkdeb from a tree without git history."
	if src.commit != "" {
		what = "  * Built by cmd/mkdeb from commit " + src.commit + "."
	}
	return fmt.Appendf(nil, "%s (%s) unstable; urgency=medium\n\n%s\n\n -- %s  %s\n",
		pkgName, version, what, maintainer, src.time.UTC().Format(time.RFC1123Z))
}

// writeGzip writes b gzipped the way lintian wants documentation: best
// compression, no name and no time in the header (reproducible).
func writeGzip(path string, b []byte) error {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(b); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// info is the nfpm description of the package for one architecture.
func info(a arch, version string, mtime time.Time, contents []file, scripts nfpm.Scripts) *nfpm.Info {
	var cs files.Contents
	for _, f := range contents {
		cs = append(cs, &files.Content{
			Source: f.src, Destination: f.dst, Type: files.TypeFile,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: f.mode, MTime: mtime},
		})
	}
	return nfpm.WithDefaults(&nfpm.Info{
		Name:          pkgName,
		Arch:          a.deb,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none", // a Debian version already, not semver
		Section:       "net",
		Priority:      "optional",
		Maintainer:    maintainer,
		Description:   description,
		MTime:         mtime,
		Overridables: nfpm.Overridables{
			Umask:    0o022,
			Depends:  []string{"adduser"},
			Contents: cs,
			Scripts:  scripts,
			Deb:      nfpm.Deb{Compression: "xz"},
		},
	})
}

// writeDeb writes the package of inf to path, whole or not at all.
func writeDeb(inf *nfpm.Info, path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mkdeb-*.deb")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // gone once renamed
	if err := deb.Default.Package(inf, tmp); err != nil {
		_ = tmp.Close() // the packaging error is the one to report
		return fmt.Errorf("pack %s: %w", filepath.Base(path), err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// builder builds the packages of one version into one folder.
type builder struct {
	root    string // the source tree
	out     string
	version string
	maxSize int64 // the largest plug binary to pack, in bytes; 0: each arch's own
	src     source
	log     *reporter
}

// build cross-compiles the plug for each architecture and packs it.
func (b *builder) build(ctx context.Context, as []arch) error {
	if err := os.MkdirAll(b.out, 0o755); err != nil {
		return fmt.Errorf("make the output folder: %w", err)
	}
	stage, err := os.MkdirTemp("", "mkdeb-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(stage) }() // a temporary folder: nothing in it is kept
	if err := writeAssets(stage, b.version, b.src); err != nil {
		return fmt.Errorf("write the package's files: %w", err)
	}
	b.log.printf("plug %s for %s\n", b.version, archNames(as))
	for _, a := range as {
		start := time.Now()
		bin := filepath.Join(stage, a.deb, "plug")
		b.log.printf("  %-5s  go build ./cmd/plug (GOARCH=%s%s CGO_ENABLED=0 -trimpath -ldflags=\"%s\", %d packages without inlining) ...\n", a.deb, a.goarch, goarmNote(a), ldflags(b.version), len(notInlined))
		if err := b.compile(ctx, a, bin); err != nil {
			return err
		}
		limit := a.maxSize
		if b.maxSize != 0 {
			limit = b.maxSize
		}
		size, err := checkBinary(ctx, bin, a, b.version, limit)
		if err != nil {
			return err
		}
		b.log.printf("  %-5s  plug: %s bytes (%s; at most %s)\n", a.deb, humanize.Comma(size), humanize.IBytes(uint64(size)), humanize.Comma(limit))
		path := filepath.Join(b.out, debName(b.version, a))
		inf := info(a, b.version, b.src.time, packageFiles(bin, stage, b.version), maintainerScripts(stage))
		if err := writeDeb(inf, path); err != nil {
			return err
		}
		dst, err := os.Stat(path)
		if err != nil {
			return err
		}
		b.log.printf("  %-5s  wrote %s: %s in %s\n", a.deb, path, humanize.IBytes(uint64(dst.Size())), time.Since(start).Round(100*time.Millisecond))
	}
	return b.log.err
}

// ldflags are the linker's flags for the plug of a package: stripped (no
// symbol table, no DWARF), with the package's version in versionVar. A
// Debian version has no spaces (checkVersion), so it needs no quoting.
func ldflags(version string) string {
	return "-s -w -X " + versionVar + "=" + version
}

// compile cross-compiles ./cmd/plug for a into bin: static (no cgo),
// stripped, with paths of the build machine trimmed, the package's version
// linked in, and notInlined compiled without inlining.
func (b *builder) compile(ctx context.Context, a arch, bin string) error {
	args := append([]string{"build", "-trimpath"}, gcflags()...)
	args = append(args, "-ldflags="+ldflags(b.version), "-o", bin, "./cmd/plug")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = b.root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+a.goarch, "GOARM="+a.goarm, "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build ./cmd/plug for %s: %v\n%s", a.deb, err, out.String())
	}
	return nil
}

// checkBinary returns the size of the plug built for a at bin, and refuses
// it when it is larger than maxSize bytes or does not carry version: the
// plug built for this machine must print "plug VERSION" when run as "plug
// version"; one that this machine cannot run must hold the version's
// bytes (linked in by versionVar, they are nowhere else in it).
func checkBinary(ctx context.Context, bin string, a arch, version string, maxSize int64) (int64, error) {
	st, err := os.Stat(bin)
	if err != nil {
		return 0, err
	}
	size := st.Size()
	if size > maxSize {
		return size, fmt.Errorf("the plug for %s is %s bytes (%s), over the limit of %s bytes (%s, -max-size): find what grew (go tool nm -size -sort size on a build without -s -w) and cut it, rather than raise the limit",
			a.deb, humanize.Comma(size), humanize.IBytes(uint64(size)), humanize.Comma(maxSize), humanize.IBytes(uint64(maxSize)))
	}
	if a.goarch == runtime.GOARCH && runtime.GOOS == "linux" {
		cmd := exec.CommandContext(ctx, bin, "version")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return size, fmt.Errorf("run the plug built for %s (plug version): %v\n%s", a.deb, err, stderr.String())
		}
		if got, want := string(out), "plug "+version+"\n"; got != want {
			return size, fmt.Errorf("the plug built for %s says %q to \"plug version\", want %q: is %s still the variable of ./cmd/plug that holds the version?", a.deb, got, want, versionVar)
		}
		return size, nil
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return size, err
	}
	if !bytes.Contains(data, []byte(version)) {
		return size, fmt.Errorf("the plug built for %s does not hold its version %s: is %s still the variable of ./cmd/plug that holds the version?", a.deb, version, versionVar)
	}
	return size, nil
}

func goarmNote(a arch) string {
	if a.goarm == "" {
		return ""
	}
	return " GOARM=" + a.goarm
}

func archNames(as []arch) string {
	var names []string
	for _, a := range as {
		names = append(names, a.deb)
	}
	return strings.Join(names, ", ")
}

// reporter writes progress for people and keeps the first write error, so
// that lost output fails the build instead of passing unnoticed.
type reporter struct {
	w   io.Writer
	err error
}

func (r *reporter) printf(format string, a ...any) {
	if r.err == nil {
		_, r.err = fmt.Fprintf(r.w, format, a...)
	}
}
