package integration

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/plug-net/plug/integration/netlab"
	"github.com/plug-net/plug/p2p/lanname"
)

// firstBootOnTheLAN: the installed service runs on a board in a home
// network of the lab (its unit's ExecStart, as its user, as systemd would);
// the owner's laptop on the same network finds it as NAME.local over mDNS
// and walks the first setup in Chromium over HTTPS: the setup code from the
// journal (a wrong one refused, and the same code refused to a second
// browser once used), the name, the 24 words shown once and three typed
// back (their file is then gone), the password, a folder, and an invite
// whose QR code, read from a screenshot, is a working invite code.
func firstBootOnTheLAN(t *testing.T, u unit) {
	chromium(t) // skips (or fails in CI) without a browser
	lab := netlab.New(t)
	home := lab.AddHome("home", netlab.HomeOptions{})
	board, laptop := home.AddHost("board"), home.AddHost("laptop")
	wordsFile := filepath.Join(serviceData, "recovery-words")
	kept, err := os.ReadFile(wordsFile)
	if err != nil {
		t.Fatalf("the service's first start kept no words for the setup: %v", err)
	}
	words := strings.Fields(string(kept[strings.LastIndex(strings.TrimSpace(string(kept)), "\n")+1:]))
	if len(words) != 24 {
		t.Fatalf("%s does not end with 24 words", wordsFile)
	}

	svc := startServiceOn(t, u, board)
	log := svc.logText()
	m := regexp.MustCompile(`open (https://(\S+?):7443/) and give the setup code ([A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4})`).FindStringSubmatch(log)
	fp := regexp.MustCompile(`fingerprint SHA-256 ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})`).FindStringSubmatch(log)
	if m == nil || fp == nil {
		t.Fatalf("the journal does not give the URL, the setup code and the certificate's fingerprint:\n%s", log)
	}
	url, host, code := m[1], m[2], m[3]
	if !strings.HasSuffix(host, ".local") {
		t.Fatalf("the plug's URL %s is not at NAME.local", url)
	}
	if strings.Contains(log, words[0]+" "+words[1]) {
		t.Fatal("the journal shows the recovery words")
	}
	if r := runOnAsRoot(t, board, "setup-code"); r.code != 0 || strings.TrimSpace(r.stdout) != code {
		t.Fatalf("sudo plug setup-code: exit %d, %q, want %s\n%s", r.code, r.stdout, code, r.stderr)
	}
	var st struct {
		LANUI, LANHost, Cert string
	}
	r := runOnAsRoot(t, board, "status", "--json")
	var raw map[string]any
	mustOK(t, json.Unmarshal([]byte(r.stdout), &raw))
	st.LANUI, _ = raw["lan_ui"].(string)
	st.Cert, _ = raw["ui_cert_sha256"].(string)
	if st.LANUI != url || st.Cert != fp[1] {
		t.Fatalf("plug status: lan_ui %q, ui_cert_sha256 %q; the journal said %s and %s", st.LANUI, st.Cert, url, fp[1])
	}
	if r := runOnAsRoot(t, board, "status"); !strings.Contains(r.stdout, fp[1]) {
		t.Fatalf("plug status does not show the certificate's fingerprint:\n%s", r.stdout)
	}

	// The laptop finds the plug by its name, over multicast DNS.
	var addr string
	mustOK(t, laptop.Do(func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
		defer cancel()
		a, err := lanname.Resolve(ctx, host)
		addr = a.String()
		return err
	}))
	if addr != board.Addr().String() {
		t.Fatalf("%s resolved to %s on the LAN, want the board's %s", host, addr, board.Addr())
	}
	// The certificate the laptop is served is the one the journal names;
	// the browser is told to accept that one (its public key) and no other,
	// as the owner does by comparing the fingerprint.
	conn, err := laptop.DialContext(t.Context(), "tcp", net.JoinHostPort(addr, "7443"))
	mustOK(t, err)
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, ServerName: host}) // checked below by fingerprint
	mustOK(t, tc.HandshakeContext(t.Context()))
	leaf := tc.ConnectionState().PeerCertificates[0]
	_ = tc.Close() // only the certificate was wanted
	if got := colonHex(sha256.Sum256(leaf.Raw)); got != fp[1] {
		t.Fatalf("the laptop is served a certificate of SHA-256 %s, the journal says %s", got, fp[1])
	}
	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)

	browser := newBrowserOn(t, laptop,
		chromedp.Flag("host-resolver-rules", "MAP "+host+" "+addr),
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])))
	base := strings.TrimSuffix(url, "/")
	owner := openTabAt(t, browser, base, serviceData)
	owner.open("/")
	owner.waitFor("the setup code's page", `location.pathname === "/setup" && document.body.dataset.step === "code"`, 30*time.Second)
	owner.shot("firstboot-1-code.png")
	owner.do("a wrong code",
		chromedp.SendKeys(chromedp.ID("code"), "ABCD-EFGH-JKMN"),
		chromedp.Submit(chromedp.ID("code-form")),
		chromedp.WaitVisible(chromedp.ID("problem")))
	if p := owner.text("#problem"); !strings.Contains(p, "not a setup code") || owner.text("body") == "" {
		t.Fatalf("a wrong code: %q", p)
	}
	owner.do("the code from the journal, typed in lower case",
		chromedp.SetValue(chromedp.ID("code"), strings.ToLower(code)),
		chromedp.Submit(chromedp.ID("code-form")),
		chromedp.WaitVisible(chromedp.ID("name-form")))

	// A second browser with the same code, now used: refused.
	intruder := openTabAt(t, browser, base, serviceData)
	intruder.open("/setup")
	intruder.do("the used code",
		chromedp.SendKeys(chromedp.ID("code"), code),
		chromedp.Submit(chromedp.ID("code-form")),
		chromedp.WaitVisible(chromedp.ID("problem")))
	if p := intruder.text("#problem"); !strings.Contains(p, "used already") {
		t.Fatalf("the used code in a second browser: %q", p)
	}

	owner.do("name the plug",
		chromedp.SetValue(chromedp.ID("name"), "Kitchen plug"),
		chromedp.Submit(chromedp.ID("name-form")),
		chromedp.WaitVisible(chromedp.ID("words")))
	shown := strings.Fields(owner.text("#words"))
	if strings.Join(shown, " ") != strings.Join(words, " ") {
		t.Fatalf("the page shows the words\n%v\nthe plug kept\n%v", shown, words)
	}
	owner.shot("firstboot-2-words.png")
	owner.do("the words are on paper",
		chromedp.Submit(chromedp.ID("words-form")),
		chromedp.WaitVisible(chromedp.ID("check-form")))
	if n := eval[int](owner, `document.querySelectorAll("#words li").length`); n != 0 || strings.Contains(owner.text("main"), strings.Join(words[:3], "\n")) {
		t.Fatalf("the check page still shows the words (%d)", n)
	}
	places := eval[[]string](owner, `[...document.querySelectorAll("#check-form input")].map(e => e.dataset.place)`)
	if len(places) != 3 {
		t.Fatalf("the check asks for %v", places)
	}
	wrong := []chromedp.Action[chromedp.Void]{}
	right := []chromedp.Action[chromedp.Void]{}
	for i, p := range places {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 24 {
			t.Fatalf("the check asks for word %q", p)
		}
		w := words[n-1]
		if i == 0 {
			w = "zoo" + w // not a word of the list
		}
		wrong = append(wrong, chromedp.SetValue(chromedp.ID("w"+strconv.Itoa(i+1)), w))
		right = append(right, chromedp.SetValue(chromedp.ID("w"+strconv.Itoa(i+1)), words[n-1]))
	}
	owner.do("a wrong word", append(wrong, chromedp.Submit(chromedp.ID("check-form")), chromedp.WaitVisible(chromedp.ID("problem")))...)
	if _, err := os.Stat(wordsFile); err != nil {
		t.Fatalf("a wrong word deleted the words: %v", err)
	}
	owner.do("the three words", append(right, chromedp.Submit(chromedp.ID("check-form")), chromedp.WaitVisible(chromedp.ID("setup")))...)
	if _, err := os.Stat(wordsFile); !os.IsNotExist(err) {
		t.Fatalf("after the check the plug still keeps its words: %v", err)
	}
	if !strings.Contains(owner.text("main"), filepath.Join(serviceData, "api.token")) {
		t.Fatalf("the password page does not name %s:\n%s", filepath.Join(serviceData, "api.token"), owner.text("main"))
	}
	owner.do("the password",
		chromedp.SendKeys(chromedp.ID("password"), "correct horse battery"),
		chromedp.SendKeys(chromedp.ID("confirm"), "correct horse battery"),
		chromedp.Submit(chromedp.ID("setup")),
		chromedp.WaitVisible(chromedp.ID("folder-form")))
	owner.do("a folder",
		chromedp.SendKeys(chromedp.ID("path"), "/usr/share/doc/plug"),
		chromedp.Submit(chromedp.ID("folder-form")),
		chromedp.WaitVisible(chromedp.ID("sources")))
	if !strings.Contains(owner.text("#sources"), "/usr/share/doc/plug") {
		t.Fatalf("the folder is not listed: %q", owner.text("main"))
	}
	owner.do("the invite", chromedp.Click(chromedp.ID("next")), chromedp.WaitVisible(chromedp.ID("invite-qr")))
	owner.waitFor("the QR code", `document.querySelector("#invite-qr").complete && document.querySelector("#invite-qr").naturalWidth > 0`, 10*time.Second)
	owner.shot("firstboot-3-invite.png")
	png, err := chromedp.Run(owner.ctx, chromedp.Screenshot(chromedp.ID("invite-qr"), chromedp.NodeVisible))
	mustOK(t, err)
	inv := decodeQR(t, png)
	if text := strings.TrimSpace(eval[string](owner, `document.querySelector("#invite-code").value`)); inv != text || !strings.HasPrefix(strings.ToLower(inv), "plug1") {
		t.Fatalf("the QR code reads %q, the page's invite code is %q", inv, text)
	}
	owner.do("done", chromedp.Click(chromedp.ID("done")), chromedp.WaitVisible(chromedp.ID("health")))
	owner.clean("the first boot")
	intruder.clean("the used code")

	// Set up: the name, the folder and the password hold; no setup again.
	raw = map[string]any{}
	mustOK(t, json.Unmarshal([]byte(runOnAsRoot(t, board, "status", "--json").stdout), &raw))
	if raw["name"] != "Kitchen plug" || raw["lan_host"] != "kitchen-plug.local" || fmt.Sprint(raw["sources"]) != "[/usr/share/doc/plug]" {
		t.Fatalf("after the setup: name %v, lan_host %v, sources %v", raw["name"], raw["lan_host"], raw["sources"])
	}
	if r := runOnAsRoot(t, board, "setup-code"); r.code != 1 || !strings.Contains(r.stderr, "set up already") {
		t.Fatalf("plug setup-code after the setup: exit %d\n%s", r.code, r.stderr)
	}
	intruder.open("/setup")
	intruder.waitFor("the login page", `location.pathname === "/login"`, 10*time.Second)
	stopService(t, svc)
}

// startServiceOn is startService on a host of the lab: the unit's
// ExecStart in the host's network namespace, as the unit's user. It waits
// for the web UI on the network to answer.
func startServiceOn(t *testing.T, u unit, on *netlab.Host) *daemon {
	t.Helper()
	pw := getent(t, "passwd", u.user)
	args := append([]string{"netns", "exec", on.NS, "setpriv", "--reuid=" + u.user, "--regid=" + u.group, "--init-groups", "--"}, u.execStart...)
	cmd := exec.Command("ip", args...)
	cmd.Dir = "/"
	cmd.Env = append([]string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
		"HOME=" + pw[5], "USER=" + u.user, "LOGNAME=" + u.user, "SHELL=" + pw[6],
	}, u.env...)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		Proxy: nil, DialContext: on.DialContext,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // a readiness probe; the certificate is checked by fingerprint
	}}
	d := startDaemon(t, cmd, serviceData, 60*time.Second, func() bool {
		resp, err := client.Get("https://" + net.JoinHostPort(on.Addr().String(), "7443") + "/login")
		if err != nil {
			return false
		}
		_ = resp.Body.Close() // only the status matters
		return resp.StatusCode == http.StatusOK
	})
	// The setup code is said once the UI serves; wait for the line.
	select {
	case <-d.when("give the setup code"):
	case <-time.After(10 * time.Second):
		if !strings.Contains(d.logText(), "give the setup code") {
			t.Fatalf("the service does not say its setup code:\n%s", d.logText())
		}
	}
	return d
}

// runOnAsRoot runs the installed plug as root on a host of the lab, as
// "sudo plug ..." on the board.
func runOnAsRoot(t *testing.T, on *netlab.Host, args ...string) result {
	t.Helper()
	return runPlugAs(t, []string{"ip", "netns", "exec", on.NS}, "", args...)
}

// colonHex writes a hash as browsers show fingerprints: AB:CD:….
func colonHex(sum [32]byte) string {
	parts := make([]string, len(sum))
	for i, c := range sum {
		parts[i] = fmt.Sprintf("%02X", c)
	}
	return strings.Join(parts, ":")
}
