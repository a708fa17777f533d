package integration

import (
	"bufio"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/plug-net/plug"

// allowedImports reads the table of allowed imports from DESIGN.md: the
// rows between the "layering" markers, "| `pkg`, `pkg` | `dep`, `dep/*` |"
// ("—" for none). A dependency ending in "/*" allows its sub-packages.
func allowedImports(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open("../DESIGN.md")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }() // opened to read only: closing it loses nothing
	allowed := map[string][]string{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "<!-- layering:"):
			in = true
			continue
		case strings.HasPrefix(line, "<!-- /layering"):
			in = false
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 2 {
			t.Fatalf("DESIGN.md layering row %q: want two cells", line)
		}
		var deps []string
		for _, d := range strings.Split(cells[1], ",") {
			if d = strings.Trim(strings.TrimSpace(d), "`"); d != "" && d != "—" {
				deps = append(deps, d)
			}
		}
		for _, p := range strings.Split(cells[0], ",") {
			p = strings.Trim(strings.TrimSpace(p), "`")
			if _, dup := allowed[p]; dup {
				t.Fatalf("DESIGN.md lists %s twice in the layering table", p)
			}
			allowed[p] = deps
		}
	}
	if len(allowed) == 0 {
		t.Fatal("DESIGN.md has no layering table (<!-- layering: ... --> markers)")
	}
	return allowed
}

// TestLayering: every package imports only what DESIGN.md's layering table
// allows it (the arrows of the package picture), and every package is in
// the table. Tests may import more.
func TestLayering(t *testing.T) {
	allowed := allowedImports(t)
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := rel(fields[0])
		seen[pkg] = true
		rules, ok := allowed[pkg]
		if !ok {
			t.Errorf("package %s is not in DESIGN.md's layering table: add it, with what it may import", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			if dep := rel(imp); !permits(rules, dep) {
				t.Errorf("%s imports %s, which DESIGN.md's layering table does not allow (it allows %s)", pkg, dep, strings.Join(rules, ", "))
			}
		}
	}
	for pkg := range allowed {
		if !seen[pkg] {
			t.Errorf("DESIGN.md's layering table lists %s, which does not exist", pkg)
		}
	}
}

func rel(p string) string { return strings.TrimPrefix(p, module+"/") }

func permits(rules []string, dep string) bool {
	return slices.ContainsFunc(rules, func(r string) bool {
		if base, ok := strings.CutSuffix(r, "/*"); ok {
			return strings.HasPrefix(dep, base+"/")
		}
		return r == dep
	})
}
