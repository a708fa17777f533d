package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestCheckBinary: mkdeb packs a plug only if it is within -max-size and
// says the package's version: the plug for this machine when run as "plug
// version", the others by holding the version's bytes. Stand-ins play the
// plug: a shell script for this machine, bytes for the others.
func TestCheckBinary(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the plug built for this machine is run only on Linux")
	}
	const version = "1.2.0~rc1+git20261203.3.abc1234"
	here := arch{deb: "here", goarch: runtime.GOARCH}
	other := arch{deb: "other", goarch: "other"}
	write := func(t *testing.T, content string) string {
		t.Helper()
		bin := filepath.Join(t.TempDir(), "plug")
		if err := os.WriteFile(bin, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		return bin
	}
	says := func(line string) string { return "#!/bin/sh\n[ \"$1\" = version ] || exit 2\necho '" + line + "'\n" }
	for _, tt := range []struct {
		name    string
		a       arch
		content string
		max     int64
		wantErr string // "" for none
	}{
		{"runs and says the version", here, says("plug " + version), 1 << 20, ""},
		{"says another version", here, says("plug 0.1.0-dev"), 1 << 20, `says "plug 0.1.0-dev\n"`},
		{"fails to run", here, "#!/bin/sh\nexit 3\n", 1 << 20, "exit status 3"},
		{"holds the version", other, "\x7fELF..." + version + "...", 1 << 20, ""},
		{"lacks the version", other, "\x7fELF...0.1.0-dev...", 1 << 20, "does not hold its version " + version},
		{"too large", here, says("plug " + version), 10, "over the limit of 10 bytes"},
		{"exactly the limit", other, version, int64(len(version)), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bin := write(t, tt.content)
			size, err := checkBinary(t.Context(), bin, tt.a, version, tt.max)
			if size != int64(len(tt.content)) {
				t.Errorf("checkBinary size = %d, want %d", size, len(tt.content))
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("checkBinary: %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("checkBinary: %v, want an error saying %q", err, tt.wantErr)
			}
		})
	}
}

// TestVersionVariable: the variable that mkdeb sets at link time
// (versionVar) is a package-level string of ./cmd/plug. The linker ignores
// -X for a variable that does not exist, so a rename would otherwise go
// unnoticed until mkdeb runs the plug it built.
func TestVersionVariable(t *testing.T) {
	pkg, name, ok := strings.Cut(versionVar, ".")
	if !ok || pkg != "main" {
		t.Fatalf("versionVar = %q, want main.NAME", versionVar)
	}
	root, err := moduleRoot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "cmd", "plug", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in cmd/plug: %v", err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for _, id := range vs.Names {
					if id.Name != name {
						continue
					}
					if typ, ok := vs.Type.(*ast.Ident); !ok || typ.Name != "string" || len(vs.Values) != 0 {
						t.Fatalf("%s: var %s is not a plain string variable (var %s string), which -X can set", fset.Position(id.Pos()), name, name)
					}
					return
				}
			}
		}
	}
	t.Fatalf("cmd/plug has no package-level var %s: mkdeb's -X %s=VERSION would set nothing, and \"plug version\" would not say the package's version", name, versionVar)
}

// TestNotInlined keeps the list of packages compiled without inlining
// honest: every pattern names packages the plug links (a stale one would
// hide that a new dependency is missing from the list), and none of them
// is on the path of a backup's bytes, which must keep the compiler's
// inlining.
func TestNotInlined(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to list the plug's packages")
	}
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", "github.com/plug-net/plug/cmd/plug").Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/plug: %v", err)
	}
	deps := strings.Fields(string(out))
	match := func(pattern, pkg string) bool {
		if base, ok := strings.CutSuffix(pattern, "/..."); ok {
			return pkg == base || strings.HasPrefix(pkg, base+"/")
		}
		return pkg == pattern
	}
	hot := []string{
		"runtime", "sync", "io", "bufio", "bytes", "os", "syscall", "crypto/tls", "crypto/aes",
		"crypto/sha256", "hash/crc32", "compress/flate", "golang.org/x/crypto/chacha20poly1305",
		"golang.org/x/sys/unix", "github.com/plug-net/plug/store/packer", "github.com/plug-net/plug/p2p/holdstore",
		"github.com/klauspost/reedsolomon", "github.com/klauspost/compress/zstd", "github.com/zeebo/blake3",
		"lukechampine.com/blake3/bao", "filippo.io/age", "github.com/dgraph-io/badger/v4",
		"github.com/quic-go/quic-go", "github.com/libp2p/go-yamux/v5",
	}
	for _, p := range notInlined {
		n := 0
		for _, d := range deps {
			if match(p, d) {
				n++
			}
		}
		if n == 0 {
			t.Errorf("notInlined has %q, which matches none of the plug's packages: drop it", p)
		}
		for _, h := range hot {
			if match(p, h) {
				t.Errorf("notInlined has %q, which takes inlining from %s, on the path of a backup's bytes", p, h)
			}
		}
	}
	for _, h := range hot {
		if !slices.Contains(deps, h) {
			t.Errorf("%s is not among the plug's packages any more: update the test's list of hot packages", h)
		}
	}
}
