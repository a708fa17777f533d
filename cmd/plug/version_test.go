package main

import (
	"io"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionOf(t *testing.T) {
	const rev = "7e1d81717f41707950ea51a7513e88dfe62f8d16"
	stamped := func(version string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/plug-net/plug", Version: version}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	for _, tt := range []struct {
		name string
		set  string
		bi   *debug.BuildInfo
		want string
	}{
		{"set by the package build", "0.0~git20261203.7e1d817", stamped("v0.0.0-20261203081336-7e1d81717f41"), "0.0~git20261203.7e1d817"},
		{"go install of a release", "", stamped("v1.2.0"), "v1.2.0"},
		{"go build in a clone (pseudo-version)", "", stamped("v0.0.0-20261203081336-7e1d81717f41+dirty", "vcs.revision", rev), "v0.0.0-20261203081336-7e1d81717f41+dirty"},
		{"commit recorded, no version", "", stamped("(devel)", "vcs.revision", rev, "vcs.modified", "false"), "devel+7e1d81717f41"},
		{"uncommitted changes", "", stamped("(devel)", "vcs.revision", rev, "vcs.modified", "true"), "devel+7e1d81717f41.dirty"},
		{"nothing recorded", "", stamped("(devel)"), "devel"},
		{"no build info", "", nil, "devel"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionOf(tt.set, tt.bi); got != tt.want {
				t.Fatalf("versionOf(%q, …) = %q, want %q", tt.set, got, tt.want)
			}
		})
	}
}

// TestVersionCommand: "plug version" prints "plug VERSION" on one line;
// cmd/mkdeb checks that line in the binaries it packs, with the version it
// set at link time.
func TestVersionCommand(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		var out strings.Builder
		std := stdio{out: newOutput(&out), err: newOutput(io.Discard), getenv: func(string) string { return "" }}
		if err := run(t.Context(), []string{arg}, std); err != nil {
			t.Fatalf("plug %s: %v", arg, err)
		}
		if got, want := out.String(), "plug "+version()+"\n"; got != want {
			t.Fatalf("plug %s printed %q, want %q", arg, got, want)
		}
	}
}
