package main

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestDebianVersion(t *testing.T) {
	// 23:30 in UTC-5 is the next day in UTC: the date is UTC's.
	when := time.Date(2026, 12, 2, 23, 30, 0, 0, time.FixedZone("UTC-5", -5*3600))
	for _, tt := range []struct {
		describe, hash string
		want           string
	}{
		{"7676fd4", "7676fd4", "0.0~git20261203.7676fd4"},
		{"7676fd4-dirty", "7676fd4", "0.0~git20261203.7676fd4+dirty"},
		{"v1.2.0", "abc1234", "1.2.0"},
		{"1.2.0", "abc1234", "1.2.0"},
		{"v1.2.0-dirty", "abc1234", "1.2.0+dirty"},
		{"v1.2.0-rc1", "abc1234", "1.2.0~rc1"},
		{"v1.2.0-5-gabc1234", "abc1234", "1.2.0+git20261203.5.abc1234"},
		{"v1.2.0-rc1-3-gabc1234-dirty", "abc1234", "1.2.0~rc1+git20261203.3.abc1234+dirty"},
		{"release-3-gabc1234", "abc1234", "0.0~git20261203.abc1234"},
		{"latest", "7676fd4", "0.0~git20261203.7676fd4"},
		{"v1.2.0_beta", "abc1234", "1.2.0.beta"},
	} {
		t.Run(tt.describe, func(t *testing.T) {
			got, err := debianVersion(gitState{describe: tt.describe, hash: tt.hash, time: when})
			if err != nil || got != tt.want {
				t.Fatalf("debianVersion(%q) = %q, %v; want %q", tt.describe, got, err, tt.want)
			}
			if err := checkVersion(got); err != nil {
				t.Fatalf("debianVersion(%q) = %q, which checkVersion refuses: %v", tt.describe, got, err)
			}
			if !native(got) {
				t.Fatalf("debianVersion(%q) = %q has a Debian revision: the packages are native", tt.describe, got)
			}
		})
	}
	for _, d := range []string{"", "-dirty", "latest"} {
		if got, err := debianVersion(gitState{describe: d, time: when}); err == nil {
			t.Errorf("debianVersion(%q) with no hash = %q, want an error", d, got)
		}
	}
}

// TestVersionsSort: dpkg orders the versions as their commits and tags
// are ordered, so that installing a newer build is an upgrade.
func TestVersionsSort(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg is not installed: the order of versions is dpkg's to check (apt-get install dpkg)")
	}
	day := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	v := func(describe string, at time.Time) string {
		t.Helper()
		s, err := debianVersion(gitState{describe: describe, hash: "1111111", time: at})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ordered := []string{
		v("1111111", day),
		v("2222222", day.Add(24*time.Hour)),
		v("v0.1.0-rc1", day),
		v("v0.1.0-rc1-2-g3333333", day),
		v("v0.1.0", day),
		v("v0.1.0-1-g4444444", day),
		v("v0.1.0-1-g4444444-dirty", day),
		v("v0.1.0-2-g5555555", day.Add(24*time.Hour)),
		v("v0.2.0", day),
	}
	for i := 1; i < len(ordered); i++ {
		a, b := ordered[i-1], ordered[i]
		if err := exec.Command("dpkg", "--compare-versions", a, "lt", b).Run(); err != nil {
			t.Errorf("dpkg does not order %s before %s (%v)", a, b, err)
		}
	}
}

func TestCheckVersion(t *testing.T) {
	for _, v := range []string{"1.0", "0.0~git20261203.abc1234", "1:2.0-1", "2.0+dirty", "1.0~rc1-0.1"} {
		if err := checkVersion(v); err != nil {
			t.Errorf("checkVersion(%q) = %v, want nil", v, err)
		}
	}
	for _, v := range []string{"", "v1.0", "1.0-", "1_0", "a1", "1.0 beta", "x:1.0"} {
		if err := checkVersion(v); err == nil {
			t.Errorf("checkVersion(%q) = nil, want an error", v)
		}
	}
	for _, tt := range []struct {
		v, file string
		native  bool
	}{{"1.0", "1.0", true}, {"1:2.0", "2.0", true}, {"1:2.0-1", "2.0-1", false}} {
		if got := fileVersion(tt.v); got != tt.file {
			t.Errorf("fileVersion(%q) = %q, want %q", tt.v, got, tt.file)
		}
		if got := native(tt.v); got != tt.native {
			t.Errorf("native(%q) = %v, want %v", tt.v, got, tt.native)
		}
	}
}

// TestReadSource: in the plug's clone, the version comes from git and
// names the commit; it is a valid Debian version either way.
func TestReadSource(t *testing.T) {
	root, err := moduleRoot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	src, err := readSource(t.Context(), root)
	if err != nil {
		// No git, or a tree without history (an export): the fallback,
		// said as an error so that mkdeb can say it.
		if src.version != fallbackVersion {
			t.Fatalf("readSource without git = %q, %v; want %q", src.version, err, fallbackVersion)
		}
		t.Skipf("no version from git here (%v): the fallback %s is used", err, fallbackVersion)
	}
	if err := checkVersion(src.version); err != nil {
		t.Fatalf("readSource = %q: %v", src.version, err)
	}
	if len(src.commit) != 40 {
		t.Fatalf("readSource commit = %q, want the full hash of HEAD", src.commit)
	}
	if strings.HasPrefix(src.version, "0.0~git") && !strings.Contains(src.version, "."+src.commit[:7]) {
		t.Fatalf("readSource = %q, want a version naming the commit %s", src.version, src.commit[:7])
	}
	if src.time.IsZero() || src.time.After(time.Now().Add(time.Minute)) {
		t.Fatalf("readSource time = %v, want the commit's", src.time)
	}
}
