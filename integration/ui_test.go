package integration

import (
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRemoteUIWarns: with --allow-remote-ui a non-loopback --api is
// served, with a warning in the log; choosing the first password from
// another machine then takes the API token.
func TestRemoteUIWarns(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plug")
	d := startPlug(t, dir, "--bootstrap", "none", "--api", "0.0.0.0:0", "--allow-remote-ui")
	if log := d.logText(); !strings.Contains(log, "the web UI is open to the network") {
		t.Fatalf("no warning about the open web UI in the log:\n%s", log)
	}
	base, _ := apiOf(t, dir)
	host, port, err := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	if err != nil || !net.ParseIP(host).IsUnspecified() {
		t.Fatalf("api.addr %s, want the unspecified address", base)
	}
	// Reach the plug through an address of this machine that is not
	// loopback, when it has one.
	var remote string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			remote = ipn.IP.String()
			break
		}
	}
	if remote == "" {
		t.Skip("this machine has no non-loopback IPv4 address to reach the plug from")
	}
	u := "http://" + net.JoinHostPort(remote, port) + "/login/setup"
	c := &http.Client{CheckRedirect: noRedirect}
	resp, err := c.PostForm(u, url.Values{"password": {"correct horse"}, "confirm": {"correct horse"}})
	if err != nil {
		t.Fatal(err)
	}
	closeBody(resp)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("first password from %s without the token: %d, want 403", remote, resp.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(dir, "ui.password")); err == nil {
		t.Fatal("a password was set from another machine without the token")
	}
}
