package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// fallbackVersion is the version of packages built without git and without
// -version.
const fallbackVersion = "0.0~unknown"

// source is what the packages say of the tree they were built from.
type source struct {
	version string    // the Debian version
	commit  string    // the full hash of HEAD; "" without git
	time    time.Time // the commit's time: the files' times in the packages
}

// gitState is what git says of the tree: the input of debianVersion.
type gitState struct {
	describe string    // git describe --tags --always --dirty --abbrev=7
	hash     string    // git rev-parse --short=7 HEAD
	time     time.Time // the committer time of HEAD
}

var (
	// afterTag is the "-N-gHASH" that git describe adds after the tag when
	// HEAD is N commits past it.
	afterTag = regexp.MustCompile(`^(.+)-([0-9]+)-g([0-9a-f]+)$`)
	hashOnly = regexp.MustCompile(`^[0-9a-f]{4,40}$`)
	// upstreamChars are the characters of a Debian upstream version of a
	// native package (no revision, so no hyphen).
	upstreamChars = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)
)

// debianVersion turns git's description of the tree into a Debian version:
//
//	v1.2.0                      1.2.0
//	v1.2.0-rc1                  1.2.0~rc1 (sorts before 1.2.0)
//	v1.2.0-5-gabc1234           1.2.0+git20261203.5.abc1234
//	abc1234 (no tag)            0.0~git20261203.abc1234
//	any of them with -dirty     the same with +dirty
//
// The date is the commit's (UTC), so that a later commit sorts after an
// earlier one (on different days). A tag that cannot start a Debian version
// (it must start with a digit, after an optional "v") is ignored, as if
// there were none.
func debianVersion(g gitState) (string, error) {
	d, dirty := strings.CutSuffix(strings.TrimSpace(g.describe), "-dirty")
	if d == "" {
		return "", errors.New("git describe said nothing")
	}
	suffix := ""
	if dirty {
		suffix = "+dirty"
	}
	date := g.time.UTC().Format("20060102")
	noTag := func(hash string) (string, error) {
		if !hashOnly.MatchString(hash) {
			return "", fmt.Errorf("no commit hash in %q", g.describe)
		}
		return "0.0~git" + date + "." + hash + suffix, nil
	}
	if hashOnly.MatchString(d) {
		return noTag(d)
	}
	tag, n, hash := d, "", ""
	if m := afterTag.FindStringSubmatch(d); m != nil {
		tag, n, hash = m[1], m[2], m[3]
	}
	up, ok := upstreamOfTag(tag)
	if !ok {
		return noTag(cmp.Or(hash, g.hash))
	}
	if n != "" {
		up += "+git" + date + "." + n + "." + hash
	}
	return up + suffix, nil
}

// upstreamOfTag turns a release tag into a Debian upstream version: the
// leading "v" goes, and a hyphen (a pre-release, v1.2.0-rc1) becomes "~".
func upstreamOfTag(tag string) (string, bool) {
	t := tag
	if len(t) > 1 && (t[0] == 'v' || t[0] == 'V') {
		t = t[1:]
	}
	t = strings.ReplaceAll(t, "-", "~")
	t = strings.ReplaceAll(t, "_", ".")
	return t, upstreamChars.MatchString(t)
}

var fullVersion = regexp.MustCompile(`^([0-9]+:)?[0-9][A-Za-z0-9.+~-]*$`)

// checkVersion says whether v is a Debian version (policy 5.6.12): an
// optional epoch, an upstream version starting with a digit, an optional
// Debian revision after the last hyphen.
func checkVersion(v string) error {
	if !fullVersion.MatchString(v) {
		return errors.New("not a Debian version: it starts with a digit (after an optional epoch \"N:\") and has only letters, digits and . + ~ - (such as 1.2.0 or 0.0~git20261203.abc1234)")
	}
	if strings.HasSuffix(v, "-") {
		return errors.New("not a Debian version: the Debian revision after the last hyphen is empty")
	}
	return nil
}

// fileVersion is the version in a package's file name: without the epoch.
func fileVersion(v string) string {
	if i := strings.IndexByte(v, ':'); i >= 0 {
		return v[i+1:]
	}
	return v
}

// native says whether v is the version of a native package: one without a
// Debian revision, whose changelog is changelog.gz (else changelog.Debian.gz).
func native(v string) bool { return !strings.Contains(fileVersion(v), "-") }

// readSource asks git for the version and time of the tree at root. Without
// git (not installed, or not a clone) it returns the fallback version, the
// time of $SOURCE_DATE_EPOCH or now, and an error saying what happened.
func readSource(ctx context.Context, root string) (source, error) {
	fallback := source{version: fallbackVersion, time: sourceDateEpoch()}
	if _, err := exec.LookPath("git"); err != nil {
		return fallback, errors.New("git is not installed, so the version cannot be read from the tree")
	}
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", root}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return strings.TrimSpace(string(out)), nil
	}
	full, err := git("rev-parse", "HEAD")
	if err != nil {
		return fallback, fmt.Errorf("%s is not a git clone with a commit (%v), so the version cannot be read from it", root, err)
	}
	var g gitState
	if g.describe, err = git("describe", "--tags", "--always", "--dirty", "--abbrev=7"); err != nil {
		return fallback, err
	}
	if g.hash, err = git("rev-parse", "--short=7", "HEAD"); err != nil {
		return fallback, err
	}
	ct, err := git("show", "-s", "--format=%ct", "HEAD")
	if err != nil {
		return fallback, err
	}
	sec, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return fallback, fmt.Errorf("git show --format=%%ct: %q is not a time", ct)
	}
	g.time = time.Unix(sec, 0).UTC()
	v, err := debianVersion(g)
	if err != nil {
		return fallback, err
	}
	return source{version: v, commit: full, time: g.time}, nil
}

// sourceDateEpoch is $SOURCE_DATE_EPOCH (reproducible builds), else now.
func sourceDateEpoch() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(sec, 0).UTC()
		}
	}
	return time.Now().UTC().Truncate(time.Second)
}

// moduleRoot finds the plug's source tree: the main module of the go
// command, which must be github.com/plug-net/plug.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w (is the go command on PATH?)", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the plug's source tree: run mkdeb from it (go run ./cmd/mkdeb)")
	}
	b, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	if !bytes.HasPrefix(bytes.TrimSpace(b), []byte("module github.com/plug-net/plug\n")) {
		return "", fmt.Errorf("%s is not the plug's go.mod: run mkdeb from the plug's source tree", gomod)
	}
	return filepath.Dir(gomod), nil
}
