package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// bootstrapAddr returns a plug's TCP loopback address ending in /p2p/ID.
func bootstrapAddr(t *testing.T, dir string) string {
	t.Helper()
	for _, a := range status(t, dir)["listen_addrs"].([]any) {
		if s := a.(string); strings.Contains(s, "/ip4/127.0.0.1/tcp/") {
			return s
		}
	}
	t.Fatal("no 127.0.0.1 TCP listen address")
	return ""
}

type friendJSON struct {
	Name       string `json:"name"`
	PeerID     string `json:"peer_id"`
	Online     bool   `json:"online"`
	LastSeen   string `json:"last_seen"`
	QuotaGiven int64  `json:"quota_given"`
	UsedGiven  int64  `json:"used_given"`
	QuotaTaken int64  `json:"quota_taken"`
	UsedTaken  int64  `json:"used_taken"`
}

func friendsOf(t *testing.T, dir string) []friendJSON {
	t.Helper()
	r := mustPlug(t, "friends", "--data", dir, "--json")
	var fs []friendJSON
	if err := json.Unmarshal([]byte(r.stdout), &fs); err != nil {
		t.Fatalf("friends --json: %v\n%s", err, r.stdout)
	}
	// The contract's keys are all there.
	var raw []map[string]any
	fromJSON(t, r.stdout, &raw)
	for _, f := range raw {
		for _, k := range []string{"name", "peer_id", "online", "last_seen", "quota_given", "used_given", "quota_taken", "used_taken"} {
			if _, ok := f[k]; !ok {
				t.Fatalf("friends --json lacks %q: %v", k, f)
			}
		}
	}
	return fs
}

// TestPairByCode: plug invite / plug accept / plug friends with real
// processes, as scripts and the README use them.
func TestPairByCode(t *testing.T) {
	base := t.TempDir()
	z, a, b := filepath.Join(base, "z"), filepath.Join(base, "a"), filepath.Join(base, "b")
	startPlug(t, z, "--bootstrap", "none", "--name", "zed")
	boot := bootstrapAddr(t, z)
	startPlug(t, a, "--bootstrap", boot, "--name", "ann")
	startPlug(t, b, "--bootstrap", boot, "--name", "bob")
	if fs := friendsOf(t, a); len(fs) != 0 {
		t.Fatalf("new plug has friends: %v", fs)
	}

	png := filepath.Join(base, "invite.png")
	r := mustPlug(t, "invite", "--data", a, "--json", "--png", png)
	var inv struct {
		Code    string `json:"code"`
		Expires string `json:"expires"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &inv); err != nil || !strings.HasPrefix(inv.Code, "PLUG1") || inv.Expires == "" {
		t.Fatalf("invite --json: %v %q", err, r.stdout)
	}
	if fi, err := os.Stat(png); err != nil || fi.Size() < 100 {
		t.Fatalf("invite --png wrote nothing: %v", err)
	}
	// Without --json the code stands alone on one line.
	r = mustPlug(t, "invite", "--data", a)
	if ls := lines(r.stdout); len(ls) != 1 || !strings.HasPrefix(ls[0], "PLUG1") {
		t.Fatalf("invite printed %q", r.stdout)
	}

	r = mustPlug(t, "accept", "--data", b, inv.Code)
	if !strings.Contains(r.stdout, "ann") {
		t.Fatalf("accept said %q", r.stdout)
	}
	fa, fb := friendsOf(t, a), friendsOf(t, b)
	if len(fa) != 1 || fa[0].Name != "bob" || len(fb) != 1 || fb[0].Name != "ann" {
		t.Fatalf("after accept: A lists %v, B lists %v", fa, fb)
	}
	if !fa[0].Online || fa[0].QuotaGiven != 10<<30 || fb[0].QuotaTaken != 10<<30 {
		t.Fatalf("friend record %+v / %+v: want online, 10 GiB each way", fa[0], fb[0])
	}

	// The same code from another plug is refused, saying why.
	c := filepath.Join(base, "c")
	startPlug(t, c, "--bootstrap", boot, "--name", "cat")
	r = plug(t, "", "accept", "--data", c, inv.Code)
	if r.code != 1 || !strings.Contains(r.stderr, "already used") {
		t.Fatalf("reused invite: exit %d, %q", r.code, r.stderr)
	}
	r = plug(t, "", "accept", "--data", b, "PLUG1AAAA")
	if r.code != 1 || !strings.Contains(r.stderr, "mistyped") {
		t.Fatalf("mistyped invite: exit %d, %q", r.code, r.stderr)
	}

	// Quota and removal.
	mustPlug(t, "friends", "--data", a, "quota", "bob", "20GiB")
	if fa := friendsOf(t, a); fa[0].QuotaGiven != 20<<30 {
		t.Fatalf("quota_given after change: %d", fa[0].QuotaGiven)
	}
	r = plug(t, "", "friends", "--data", a, "quota", "nobody", "1GiB")
	if r.code != 1 || !strings.Contains(r.stderr, `no friend is called "nobody"`) {
		t.Fatalf("quota for an unknown friend: exit %d %q", r.code, r.stderr)
	}
	mustPlug(t, "friends", "--data", a, "remove", "bob")
	if fa := friendsOf(t, a); len(fa) != 0 {
		t.Fatalf("after remove: %v", fa)
	}
	if st := status(t, a); st["friends"].(float64) != 0 {
		t.Fatalf("status friends after remove: %v", st["friends"])
	}
}

// TestOfflineBootstrap: with no reachable bootstrap peer the plug still
// comes up and serves its API, says so in status, retries with backoff, and
// logs it once rather than at every attempt.
func TestOfflineBootstrap(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plug")
	// A bootstrap peer on a closed port: the same path as a machine offline.
	dead := "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWHkpc9hB9YMudWqYCZi1uibrSS9E7LnCqcrgm8av3sWDD"
	d := startPlug(t, dir, "--bootstrap", dead)
	deadline := time.Now().Add(30 * time.Second)
	var dht string
	for time.Now().Before(deadline) {
		dht, _ = status(t, dir)["dht"].(string)
		if strings.HasPrefix(dht, "offline") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.HasPrefix(dht, "offline: no bootstrap peer reachable") || !strings.Contains(dht, "retrying in") {
		t.Fatalf("status dht = %q, want it to say offline and retrying", dht)
	}
	// Several retries at the start of the backoff. Status says when the next
	// attempt is ("retrying in 3s"): between two attempts that only counts
	// down, so each time it goes up the plug has tried again.
	retryingIn := func() time.Duration {
		dht, _ := status(t, dir)["dht"].(string)
		_, in, ok := strings.Cut(dht, "retrying in ")
		wait, err := time.ParseDuration(in)
		if !ok || err != nil {
			t.Fatalf("status dht = %q, want it to say when it retries", dht)
		}
		return wait
	}
	last, retries := retryingIn(), 0
	eventually(t, time.Minute, "the plug did not retry the bootstrap peer twice", func() bool {
		in := retryingIn()
		if in > last {
			retries++
		}
		last = in
		return retries >= 2
	})
	if n := strings.Count(d.logText(), "no DHT bootstrap peer reachable"); n != 1 {
		t.Fatalf("the log says the DHT is offline %d times, want once:\n%s", n, d.logText())
	}
}

// TestAcceptWaitsForTheInviter: an invite accepted while the inviting plug
// is down is not refused at once: accept says what it waits for and keeps
// trying, and pairs once the inviter is back (at another port, found
// through the DHT).
func TestAcceptWaitsForTheInviter(t *testing.T) {
	base := t.TempDir()
	z, a, b := filepath.Join(base, "z"), filepath.Join(base, "a"), filepath.Join(base, "b")
	startPlug(t, z, "--bootstrap", "none", "--name", "zed")
	boot := bootstrapAddr(t, z)
	da := startPlug(t, a, "--bootstrap", boot, "--name", "ann")
	startPlug(t, b, "--bootstrap", boot, "--name", "bob")
	var inv struct{ Code string }
	fromJSON(t, mustPlug(t, "invite", "--data", a, "--json").stdout, &inv)
	da.stop()

	cmd := plugCommand(nil, "accept", "--data", b, inv.Code)
	var stdout, stderr safeBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { killProcess(cmd.Process) })
	eventually(t, time.Minute, "accept to say it keeps trying", func() bool {
		return strings.Contains(stderr.String(), "still trying after")
	})
	startPlug(t, a, "--bootstrap", boot, "--name", "ann") // a new port: the invite's address is stale
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("accept after the inviter came back: %v\n%s", err, stderr.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("accept did not finish:\n%s", stderr.String())
	}
	if !strings.Contains(stdout.String(), "You and ann are now friends") {
		t.Fatalf("accept said %q", stdout.String())
	}
	t.Logf("accept waited, saying:\n%s", stderr.String())
	if fa := friendsOf(t, a); len(fa) != 1 || fa[0].Name != "bob" {
		t.Fatalf("ann lists %v", fa)
	}
}
