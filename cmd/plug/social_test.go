package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plug-net/plug/social/harvest"
)

// TestImportKindsFromRegistry: "plug import KIND" takes every registered
// importer and refuses anything else as bad usage, naming the importers;
// its usage lines name every importer and what each reads, and the
// --source filters every source.
func TestImportKindsFromRegistry(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "export.zip")
	if err := os.WriteFile(src, []byte("not read: no plug is running"), 0o600); err != nil {
		t.Fatal(err)
	}
	plug := func(args ...string) error {
		std := stdio{in: strings.NewReader(""), out: newOutput(io.Discard), err: newOutput(io.Discard), getenv: func(k string) string {
			if k == "PLUG_DATA" {
				return filepath.Join(dir, "plug") // no daemon: the client fails after the checks
			}
			return ""
		}}
		return run(t.Context(), args, std)
	}
	var ue *usageError
	for _, im := range harvest.Importers() {
		if err := plug("import", string(im.Source), src); err == nil || errors.As(err, &ue) {
			t.Errorf("plug import %s FILE = %v, want past the checks (no plug is running)", im.Source, err)
		}
	}
	for _, bad := range []string{"rss", "plug", "Mastodon"} {
		err := plug("import", bad, src)
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "mastodon, twitter or feed") {
			t.Errorf("plug import %s FILE = %v, want a usage error naming the importers", bad, err)
		} else if ue.usage != importUsage() {
			t.Errorf("plug import %s FILE shows the usage %q, want %q", bad, ue.usage, importUsage())
		}
	}

	if got, want := importKinds(), "mastodon|twitter|feed"; got != want {
		t.Errorf("importKinds() = %q, want %q", got, want)
	}
	help := importHelp()
	for _, im := range harvest.Importers() {
		if !strings.Contains(help, string(im.Source)) || !strings.Contains(help, im.Help) {
			t.Errorf("plug import -h does not say what %s reads:\n%s", im.Source, help)
		}
	}
	// The command table (plug help) says the same.
	if got := findCommand("import").usage; got != importUsage() {
		t.Errorf("plug help shows %q for import, want %q", got, importUsage())
	}
	if got := findCommand("timeline").usage; !strings.Contains(got, "--source "+sourceChoices()+"]") {
		t.Errorf("plug help shows %q for timeline, want --source %s", got, sourceChoices())
	}
}
