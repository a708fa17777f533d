package integration

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestInitRecoverSamePeer: the same 24 words give the same plug.
func TestInitRecoverSamePeer(t *testing.T) {
	base := t.TempDir()
	r := mustPlug(t, "init", "--data", filepath.Join(base, "a"), "--json")
	var a struct {
		PeerID string `json:"peer_id"`
		Phrase string `json:"recovery_phrase"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &a); err != nil {
		t.Fatalf("init --json: %v\n%s", err, r.stdout)
	}
	if n := len(strings.Fields(a.Phrase)); n != 24 || a.PeerID == "" {
		t.Fatalf("init --json gave %d words and peer ID %q", n, a.PeerID)
	}
	for _, dir := range []string{"b", "c"} {
		r := plug(t, a.Phrase+"\n", "init", "--recover", "--data", filepath.Join(base, dir), "--json")
		if r.code != 0 {
			t.Fatalf("init --recover: exit %d: %s", r.code, r.stderr)
		}
		var b struct {
			PeerID string `json:"peer_id"`
		}
		fromJSON(t, r.stdout, &b)
		if b.PeerID != a.PeerID {
			t.Fatalf("recovered peer ID %s, want %s", b.PeerID, a.PeerID)
		}
	}
	// Without --json the words stand alone on one line of stdout.
	r = mustPlug(t, "init", "--data", filepath.Join(base, "d"))
	if ls := lines(r.stdout); len(ls) != 1 || len(strings.Fields(ls[0])) != 24 {
		t.Fatalf("init printed %q on stdout, want the 24 words on one line", r.stdout)
	}
	if !strings.Contains(r.stderr, "Write these 24 words down") {
		t.Fatalf("init did not tell the owner to write the words down: %q", r.stderr)
	}
	// A second init on the same directory is refused.
	if r := plug(t, "", "init", "--data", filepath.Join(base, "a")); r.code != 1 || !strings.Contains(r.stderr, "already holds plug "+a.PeerID) {
		t.Fatalf("second init: exit %d, %q", r.code, r.stderr)
	}
}

// TestInitRecoverRefusesBadPhrase: a wrong word, a bad checksum or a wrong
// count is refused with a message naming the problem, and nothing is written.
func TestInitRecoverRefusesBadPhrase(t *testing.T) {
	good := "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art"
	words := strings.Fields(good)
	tests := []struct {
		name, phrase, want string
	}{
		{"wrong word", strings.Replace(good, "abandon", "abandom", 1), `word 1 of the recovery phrase, "abandom", is not a BIP-39 word`},
		{"checksum", strings.Join(append(words[:23:23], "zoo"), " "), "checksum does not match"},
		{"word count", strings.Join(words[:12], " "), "has 12 words; it must have exactly 24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "plug")
			r := plug(t, tt.phrase+"\n", "init", "--recover", "--data", dir)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1", r.code)
			}
			if !strings.Contains(r.stderr, tt.want) || !strings.Contains(r.stderr, "nothing was written") {
				t.Fatalf("stderr %q does not say %q and that nothing was written", r.stderr, tt.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("the data directory was created (%v)", err)
			}
		})
	}
}

// TestUpStatusStopRestart: plug up brings itself up on first run, answers
// status, writes api.addr and a 0600 api.token, refuses a second daemon on
// the same directory, exits 0 on SIGTERM and comes back as the same plug.
func TestUpStatusStopRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plug")
	if r := plug(t, "", "status", "--data", dir); r.code != 1 || !strings.Contains(r.stderr, "no plug is running on "+dir+": start one with \"plug up --data "+dir+"\"") {
		t.Fatalf("status with no daemon: exit %d, %q", r.code, r.stderr)
	}
	d := startPlug(t, dir, "--bootstrap", "none")
	if !strings.Contains(d.logText(), "Write these 24 words down") {
		t.Fatalf("first plug up did not show the recovery words:\n%s", d.logText())
	}
	st := status(t, dir)
	for _, k := range []string{"peer_id", "listen_addrs", "version", "uptime_s", "friends", "reachability"} {
		if _, ok := st[k]; !ok {
			t.Errorf("status --json lacks %q: %v", k, st)
		}
	}
	peerID := st["peer_id"].(string)
	addrs := st["listen_addrs"].([]any)
	if len(addrs) == 0 || !strings.HasSuffix(addrs[0].(string), "/p2p/"+peerID) {
		t.Fatalf("listen_addrs %v do not end in /p2p/%s", addrs, peerID)
	}
	fi, err := os.Stat(filepath.Join(dir, "api.token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("api.token: %v, mode %v", err, fi.Mode())
	}
	tok, _ := os.ReadFile(filepath.Join(dir, "api.token"))
	if strings.Contains(d.logText(), strings.TrimSpace(string(tok))) {
		t.Fatal("the API token appears in the daemon's log")
	}

	// A second daemon on the same directory names the running one.
	r := plug(t, "", "up", "--data", dir, "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0")
	if r.code != 1 || !strings.Contains(r.stderr, "already running on "+dir) || !strings.Contains(r.stderr, "pid ") {
		t.Fatalf("second plug up: exit %d, %q", r.code, r.stderr)
	}

	// The event log tells what happened.
	r = mustPlug(t, "log", "--data", dir)
	if !strings.Contains(r.stdout, "plug is up") {
		t.Fatalf("plug log does not show the start:\n%s", r.stdout)
	}

	if code := d.stop(); code != 0 {
		t.Fatalf("SIGTERM: exit %d, want 0\n%s", code, d.logText())
	}
	if _, err := os.Stat(filepath.Join(dir, "api.addr")); !os.IsNotExist(err) {
		t.Fatal("api.addr left behind after a clean stop")
	}

	d2 := startPlug(t, dir, "--bootstrap", "none")
	if got := status(t, dir)["peer_id"]; got != peerID {
		t.Fatalf("restarted plug is %v, want %s", got, peerID)
	}
	if strings.Contains(d2.logText(), "Write these 24 words down") {
		t.Fatal("restart showed the recovery words again")
	}
	r = mustPlug(t, "log", "--data", dir)
	if strings.Count(r.stdout, "plug is up") != 2 || !strings.Contains(r.stdout, "plug stopped") {
		t.Fatalf("event log after a restart:\n%s", r.stdout)
	}
	if code := d2.stop(); code != 0 {
		t.Fatalf("second SIGTERM: exit %d", code)
	}
}

// TestLogFollow: "plug log --follow" prints events as they happen.
func TestLogFollow(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plug")
	startPlug(t, dir, "--bootstrap", "none")
	eventually(t, 20*time.Second, "the event log does not show the start", func() bool {
		return strings.Contains(mustPlug(t, "log", "--data", dir, "--json", "-n", "1000").stdout, "plug is up")
	})
	cmd := exec.Command(plugBin, "log", "--data", dir, "--follow", "-n", "1")
	var out safeBuffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		killProcess(cmd.Process)
		_ = cmd.Wait() // killed just above: its error only says so
	}()
	// The follower prints the newest event first; once it has, it follows
	// from that event on, and every later one is for it to show.
	eventually(t, 20*time.Second, "log --follow -n 1 did not print the newest event", func() bool {
		return out.String() != ""
	})
	// A refused login is an event the owner should see.
	addr, _ := os.ReadFile(filepath.Join(dir, "api.addr"))
	resp, err := http.PostForm("http://"+strings.TrimSpace(string(addr))+"/login", url.Values{"token": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	closeBody(resp)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "login refused") {
		if time.Now().After(deadline) {
			t.Fatalf("log --follow did not show the refused login; got:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
