package main

import "runtime/debug"

// buildVersion is the version a build gives the plug at link time: the
// Debian packages set it to their own version (cmd/mkdeb links with
// -ldflags "-X main.buildVersion=VERSION"). Nothing assigns it at run
// time; empty when the build did not set it.
var buildVersion string

// version is what "plug version" and the status say the plug is.
func version() string {
	bi, _ := debug.ReadBuildInfo()
	return versionOf(buildVersion, bi)
}

// versionOf is the version set at link time when there is one; else the
// main module's version that the go command recorded ("go install
// …@v1.2.0" records the release, "go build" in a clone a pseudo-version
// from git); else "devel", followed by the commit and ".dirty" for
// uncommitted changes when the build recorded them (devel+7e1d81717f41).
func versionOf(set string, bi *debug.BuildInfo) string {
	if set != "" {
		return set
	}
	if bi == nil {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	v := "devel+" + rev[:min(len(rev), 12)]
	if dirty {
		v += ".dirty"
	}
	return v
}
