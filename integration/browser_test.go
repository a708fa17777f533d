package integration

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	_ "image/png"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/plug-net/plug/integration/netlab"
)

// The web UI driven in a real browser: Debian's Chromium, headless, through
// the DevTools protocol (chromedp), against real "plug up" processes.

// chromium finds the browser, or skips the test saying how to install it
// (fails instead when $PLUG_REQUIRE_BROWSER is set, as in CI).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("PLUG_CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "no Chromium here: the browser tests of the web UI need it (Debian: apt-get install -y chromium; or set PLUG_CHROMIUM to the browser's path)"
	if os.Getenv("PLUG_REQUIRE_BROWSER") != "" {
		t.Fatal(msg + "; PLUG_REQUIRE_BROWSER is set, so they may not be skipped")
	}
	t.Skip(msg)
	return ""
}

// screenshots is where the pages' screenshots go ($PLUG_SCREENSHOTS,
// default integration/screenshots).
func screenshots(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PLUG_SCREENSHOTS")
	if dir == "" {
		dir = "screenshots"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newBrowser starts a headless Chromium with the flags DESIGN.md names.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	return newBrowserOn(t, nil)
}

// newBrowserOn starts the browser on a host of the network lab (nil: this
// machine), with extra options. chromedp talks to it through a pipe (its
// file descriptors 3 and 4), which "ip netns exec" hands on.
func newBrowserOn(t *testing.T, on *netlab.Host, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	if on != nil {
		opts = append(opts, chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.Args = append([]string{"ip", "netns", "exec", on.NS, cmd.Path}, cmd.Args[1:]...)
			cmd.Path = "/usr/bin/ip"
			if p, err := exec.LookPath("ip"); err == nil {
				cmd.Path = p
			}
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		}))
	}
	opts = append(opts, extra...)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(cancelCtx)
	if err := chromedp.Do(ctx); err != nil { // start the browser now
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// tab is one browser profile (its own cookies) on one plug.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string // http://127.0.0.1:PORT
	dir  string // the plug's data directory

	mu       sync.Mutex
	problems []string // script errors and CSP violations
}

// openTab opens a tab with a fresh browser context (cookie jar) on the
// plug at dir. Script errors, refused inline scripts and dialogs are
// recorded: none may happen.
func openTab(t *testing.T, browser context.Context, dir string) *tab {
	t.Helper()
	base, _ := apiOf(t, dir)
	return openTabAt(t, browser, base, dir)
}

// openTabAt is openTab on the web UI at base.
func openTabAt(t *testing.T, browser context.Context, base, dir string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx, base: base, dir: dir}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	// Dialogs and script that payloads could start count as problems.
	_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.__xss = 0; for (const f of ["alert", "prompt"]) window[f] = () => { window.__xss++; };`,
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Refused to") {
				tb.mu.Lock()
				tb.problems = append(tb.problems, m.Text)
				tb.mu.Unlock()
			}
		}
	}()
	return tb
}

func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("%s: %v\n%s", what, err, tb.text("body"))
	}
}

func (tb *tab) open(path string) {
	tb.t.Helper()
	tb.do("open "+path, chromedp.Navigate(tb.base+path), chromedp.WaitReady(chromedp.CSS("body")))
	if p := eval[string](tb, "location.pathname"); !strings.HasPrefix(p, "/login") && !strings.HasPrefix(p, "/setup") {
		tb.waitFor("the page's script", `document.body.dataset.ready === "1"`, 10*time.Second)
	}
}

// eval runs a script in the page and decodes its value.
func eval[T any](tb *tab, js string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAsValue, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor waits until the script is true in the page; the page may reload
// meanwhile.
func (tb *tab) waitFor(what, js string, d time.Duration) {
	tb.t.Helper()
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+js+")"))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	tb.t.Fatalf("waiting for %s: not within %v (%v)\npage %s:\n%s", what, d, last, eval[string](tb, "location.href"), tb.text("main"))
}

func (tb *tab) text(sel string) string {
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).innerText || ""`, sel)))
	return s
}

// shot saves a screenshot of the whole page.
func (tb *tab) shot(name string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(screenshots(tb.t), name), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// clean fails on script errors, refused inline scripts or dialogs so far.
func (tb *tab) clean(where string) {
	tb.t.Helper()
	if n := eval[int](tb, "window.__xss || 0"); n != 0 {
		tb.t.Fatalf("%s: a script payload ran (%d dialogs)", where, n)
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.problems) > 0 {
		tb.t.Fatalf("%s: the page reported problems:\n%s", where, strings.Join(tb.problems, "\n"))
	}
}

// submit presses the form's submit button (form.submit() would skip the
// page's handler).
func submit(form string) chromedp.Action[chromedp.Void] {
	return chromedp.Click(chromedp.CSS("#"+form+` button[type="submit"]`), chromedp.NodeVisible)
}

func js(s string) string { b, _ := json.Marshal(s); return string(b) }

// decodeQR reads the QR code in a PNG.
func decodeQR(t *testing.T, png []byte) string {
	t.Helper()
	img, _, err := image.Decode(bytes.NewReader(png))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		res, err = zxqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	}
	if err != nil {
		t.Fatalf("decode the QR code of the page: %v", err)
	}
	return res.GetText()
}

// zipDir packs a folder as a .zip.
func zipDir(t *testing.T, dir, out string) string {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		w, err := zw.Create(filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
	if err == nil {
		err = zw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// xss are payloads that run script if a page inserts them as HTML; none
// holds a "/" so that each can be a file name too.
var xss = []string{
	`<img src=x onerror=alert(1)>`,
	`"><svg onload=alert(2)>`,
	`<iframe src=javascript:alert(3)>`,
	`<b onmouseover=alert(4)>hover`,
}

// hostileElements counts elements that only an unescaped payload makes.
const hostileElements = `document.querySelectorAll('img[src="x"], svg[onload], iframe, [onerror], [onload], [onmouseover], script:not([src])').length`

// TestBrowserUI: log in, pair through the invite's QR code, back up and
// watch the progress, browse, restore and download, post and see it on the
// friend's timeline, import the Mastodon archive and search it, the live
// log, and hostile strings from a friend, a post, a file name and an
// imported toot shown as text, never run.
func TestBrowserUI(t *testing.T) {
	browser := newBrowser(t)
	fx := fixtures(t)

	// A, B and a friend of A whose name is a payload.
	c := newCluster(t, nil, "a")
	c.start("evil", "--bootstrap", c.boot, "--name", xss[0])
	c.pair("a", "evil")
	c.start("b", "--bootstrap", c.boot, "--name", "b")
	a, b := c.dir("a"), c.dir("b")
	ta, tbb := openTab(t, browser, a), openTab(t, browser, b)

	t.Run("login", func(t *testing.T) {
		ta.t, tbb.t = t, t
		// First visit, on the plug's own machine: the setup, with no
		// code; the words were shown in the terminal.
		ta.open("/")
		ta.do("keep the name",
			chromedp.WaitVisible(chromedp.ID("name-form")),
			chromedp.Submit(chromedp.ID("name-form")),
			chromedp.WaitVisible(chromedp.ID("words-form")))
		if !strings.Contains(ta.text("main"), "in a terminal") {
			t.Fatalf("the words step of a plug started in a terminal:\n%s", ta.text("main"))
		}
		ta.do("set the password",
			chromedp.Submit(chromedp.ID("words-form")),
			chromedp.WaitVisible(chromedp.ID("setup")),
			chromedp.SendKeys(chromedp.ID("password"), "correct horse battery"),
			chromedp.SendKeys(chromedp.ID("confirm"), "correct horse battery"),
			chromedp.Submit(chromedp.ID("setup")),
			chromedp.WaitVisible(chromedp.ID("folder-form")),
			chromedp.Click(chromedp.ID("next")),
			chromedp.WaitVisible(chromedp.ID("invite-qr")),
			chromedp.Click(chromedp.ID("done")),
			chromedp.WaitVisible(chromedp.ID("health")))
		if fi, err := os.Stat(filepath.Join(a, "ui.password")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("the password file: %v %v", fi, err)
		}
		// Log out, and back in with the password.
		ta.do("log out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("login")))
		ta.open("/friends")
		ta.waitFor("the login page after logout", `location.pathname === "/login"`, 10*time.Second)
		ta.do("log in with the password",
			chromedp.SendKeys(chromedp.ID("password"), "correct horse battery"),
			chromedp.Submit(chromedp.ID("login")),
			chromedp.WaitVisible(chromedp.ID("health")))
		ta.waitFor("the overview", `document.querySelector("#peer-id").textContent.startsWith("12D3")`, 5*time.Second)
		cookies := eval[string](ta, "document.cookie")
		if strings.Contains(cookies, "plug_session") {
			t.Fatal("the session cookie is readable from script: want HttpOnly")
		}
		// B logs in with the token of api.token.
		_, token := apiOf(t, b)
		tbb.open("/")
		tbb.do("log in with the token",
			chromedp.Click(chromedp.CSS("details summary")),
			chromedp.SendKeys(chromedp.CSS(`details input[name="password"]`), token),
			chromedp.Submit(chromedp.CSS(`details form`)),
			chromedp.WaitVisible(chromedp.ID("health")))
	})

	var qrPNG string
	t.Run("invite and accept through the QR code", func(t *testing.T) {
		ta.t, tbb.t = t, t
		ta.open("/friends")
		ta.do("make an invite", chromedp.Click(chromedp.ID("make-invite")), chromedp.WaitVisible(chromedp.ID("invite-qr")))
		ta.waitFor("the QR image", `document.querySelector("#invite-qr").complete && document.querySelector("#invite-qr").naturalWidth > 0`, 10*time.Second)
		code := eval[string](ta, `document.querySelector("#invite-code").value`)
		png, err := chromedp.Run(ta.ctx, chromedp.Screenshot(chromedp.ID("invite-qr"), chromedp.NodeVisible))
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeQR(t, png); got != code || !strings.HasPrefix(strings.ToLower(code), "plug1") {
			t.Fatalf("the QR code of the page holds %q; the text shows %q", got, code)
		}
		ta.shot("invite.png")
		qrPNG = filepath.Join(t.TempDir(), "invite.png")
		mustOK(t, os.WriteFile(qrPNG, png, 0o600))

		// B reads the QR code from the picture with the vendored jsQR, then
		// accepts it.
		tbb.open("/friends")
		tbb.do("give B the picture", chromedp.SetUploadFiles(chromedp.ID("qr-file"), []string{qrPNG}, chromedp.NodeReady))
		tbb.waitFor("jsQR to read the code", fmt.Sprintf(`document.querySelector("#accept-code").value === %s`, js(code)), 20*time.Second)
		tbb.do("accept", chromedp.Click(chromedp.CSS(`#accept-form button[type="submit"]`)))
		tbb.waitFor("A in B's friend list", `[...document.querySelectorAll("#friends .name")].some(e => e.textContent === "a")`, 60*time.Second)

		ta.open("/friends")
		ta.waitFor("B in A's friend list", `[...document.querySelectorAll("#friends .name")].some(e => e.textContent === "b")`, 10*time.Second)
		// The quota A gives B is editable.
		ta.do("set B's quota",
			chromedp.SetValue(chromedp.CSS(`#friends tr:has(.name) form.quota input`), "2048", chromedp.NodeReady),
			chromedp.Click(chromedp.CSS(`#friends tr:has(.name) form.quota button`)))
		ta.waitFor("the quota to be set", `document.querySelector("#flash").textContent.includes("2.0 GiB")`, 10*time.Second)
		ta.open("/friends")
		ta.waitFor("both friends online", `document.querySelectorAll("#friends .online").length === 2`, 60*time.Second)
		ta.shot("friends.png")
		ta.clean("friends page with a hostile friend name")
		if n := eval[int](ta, hostileElements); n != 0 {
			t.Fatalf("the friends page holds %d elements made by a friend's name", n)
		}
		if !strings.Contains(ta.text("#friends"), xss[0]) {
			t.Fatalf("the hostile name does not show as text:\n%s", ta.text("#friends"))
		}
	})

	src := filepath.Join(t.TempDir(), "photos")
	mustOK(t, os.MkdirAll(filepath.Join(src, "2026"), 0o755))
	mustOK(t, os.WriteFile(filepath.Join(src, "2026", "note.txt"), []byte("the one file to bring back\n"), 0o644))
	makeFiles(t, filepath.Join(src, "bulk"), 7, 200, 3<<20)
	for _, p := range xss {
		mustOK(t, os.WriteFile(filepath.Join(src, p), []byte(p), 0o644))
	}
	var snapID string
	t.Run("back up with live progress", func(t *testing.T) {
		ta.t = t
		ta.open("/backups")
		ta.do("add the folder", chromedp.SendKeys(chromedp.ID("source-path"), src), submit("add-source"))
		ta.waitFor("the folder in the sources", fmt.Sprintf(`[...document.querySelectorAll("#source-list code")].some(e => e.textContent === %s)`, js(src)), 10*time.Second)
		// Record every value the progress bar takes.
		ta.do("back up now", chromedp.Click(chromedp.ID("backup-now"), chromedp.NodeEnabled))
		eval[chromedp.Void](ta, `window.__seen = []; new MutationObserver(() => window.__seen.push(document.querySelector("#backup-bar").value)).observe(document.querySelector("#backup-pct"), {childList: true, characterData: true, subtree: true}); 0`)
		ta.waitFor("the backup to reach 100%", `document.querySelector("#backup-pct").textContent === "100%" && document.querySelector("#new-snapshot")`, 90*time.Second)
		ta.waitFor("the new snapshot to be listed without a reload", `document.querySelector("#snapshots tr[data-id='" + document.querySelector("#new-snapshot").getAttribute("href").split("/").pop() + "']") !== null`, 10*time.Second)
		seen := eval[[]float64](ta, "window.__seen")
		if len(seen) == 0 || seen[len(seen)-1] != 100 {
			t.Fatalf("the progress bar went %v; want it to end at 100", seen)
		}
		ta.shot("backups.png")
		ta.do("open the snapshot", chromedp.Click(chromedp.ID("new-snapshot")), chromedp.WaitVisible(chromedp.ID("tree")))
		snapID = strings.TrimPrefix(eval[string](ta, "location.pathname"), "/backups/")
	})

	t.Run("the redundancy control", func(t *testing.T) {
		ta.t = t
		ta.open("/backups")
		if got := ta.text("#redundancy-overhead"); got != "2.00" {
			t.Fatalf("overhead with two friends: %q, want 2.00", got)
		}
		eval[chromedp.Void](ta, `{ const a = document.querySelector("#redundancy-auto"); a.checked = false; a.dispatchEvent(new Event("change"));
			const n = document.querySelector("#redundancy-target"); n.value = 2; n.dispatchEvent(new Event("input")); } 0`)
		if words := ta.text("#redundancy-words"); !strings.Contains(words, "pair with 1 more") {
			t.Fatalf("target 2 with two friends: %q, want it to say to pair with 1 more", words)
		}
		eval[chromedp.Void](ta, `{ const n = document.querySelector("#redundancy-target"); n.value = 1; n.dispatchEvent(new Event("input")); } 0`)
		if got := ta.text("#redundancy-overhead"); got != "2.00" {
			t.Fatalf("overhead shown for target 1: %q, want 2.00", got)
		}
		ta.do("set the target", submit("redundancy-form"))
		ta.waitFor("the target chosen by the owner", `document.querySelector("#redundancy-auto") && !document.querySelector("#redundancy-auto").checked`, 10*time.Second)
		var red redundancyJSON
		fromJSON(t, mustPlug(t, "redundancy", "--data", a, "--json").stdout, &red)
		if red.Target != 1 || red.Auto {
			t.Fatalf("after the page set it: %+v, want target 1 chosen by the owner", red)
		}
	})

	t.Run("browse, restore and download", func(t *testing.T) {
		ta.t = t
		ta.open("/backups/" + snapID + "?path=" + src)
		ta.waitFor("the folder's entries", `document.querySelectorAll("#tree tbody tr").length >= 3`, 10*time.Second)
		ta.clean("snapshot with hostile file names")
		if n := eval[int](ta, hostileElements); n != 0 {
			t.Fatalf("the snapshot page holds %d elements made by file names", n)
		}
		for _, p := range xss {
			if !strings.Contains(ta.text("#tree"), p) {
				t.Fatalf("file name %q does not show as text", p)
			}
		}
		ta.do("into 2026", chromedp.Click(chromedp.CSS(`a.dir[href$="2026"]`)), chromedp.WaitVisible(chromedp.CSS(`button.pick[data-path$="note.txt"]`)))
		ta.shot("browse.png")
		to := t.TempDir()
		ta.do("restore note.txt",
			chromedp.Click(chromedp.CSS(`button.pick[data-path$="note.txt"]`)),
			chromedp.SendKeys(chromedp.ID("restore-to"), to),
			submit("restore-form"))
		ta.waitFor("the restore", `document.querySelector("#restore-result").textContent.startsWith("Restored 1 files")`, 60*time.Second)
		got, err := os.ReadFile(filepath.Join(to, src, "2026", "note.txt"))
		if err != nil || string(got) != "the one file to bring back\n" {
			t.Fatalf("restored note.txt: %q %v", got, err)
		}
		dl := eval[string](ta, `(async () => { const a = document.querySelector("a.download"); const r = await fetch(a.href); return r.status + " " + r.headers.get("Content-Disposition") + " " + await r.text(); })()`)
		if want := `200 attachment; filename=note.txt the one file to bring back`; strings.TrimSpace(dl) != want {
			t.Fatalf("download: %q, want %q", dl, want)
		}
	})

	t.Run("post and see it on the friend's timeline", func(t *testing.T) {
		ta.t, tbb.t = t, t
		text := "hello from the browser " + xss[1]
		ta.open("/timeline")
		ta.do("post", chromedp.SendKeys(chromedp.ID("post-text"), text), submit("post-form"))
		ta.waitFor("the post", fmt.Sprintf(`[...document.querySelectorAll(".entry .text")].some(e => e.textContent === %s)`, js(text)), 15*time.Second)
		// B's hostile post reaches A.
		mustPlug(t, "post", "--data", b, "from b "+xss[2])
		deadline := time.Now().Add(60 * time.Second)
		for {
			tbb.open("/timeline")
			if eval[bool](tbb, fmt.Sprintf(`[...document.querySelectorAll(".entry .text")].some(e => e.textContent === %s)`, js(text))) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("A's post did not reach B's timeline:\n%s", tbb.text("#entries"))
			}
			time.Sleep(time.Second)
		}
		tbb.clean("B's timeline")
		for {
			ta.open("/timeline")
			if strings.Contains(ta.text("#entries"), "from b "+xss[2]) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("B's post did not reach A's timeline:\n%s", ta.text("#entries"))
			}
			time.Sleep(time.Second)
		}
		ta.clean("A's timeline with hostile posts")
		if n := eval[int](ta, hostileElements); n != 0 {
			t.Fatalf("the timeline holds %d elements made by posts", n)
		}
	})

	t.Run("import the Mastodon archive and search it", func(t *testing.T) {
		ta.t = t
		archive := zipDir(t, filepath.Join(fx, "mastodon-archive"), filepath.Join(t.TempDir(), "mastodon.zip"))
		ta.open("/import")
		ta.do("upload", chromedp.SetUploadFiles(chromedp.ID("upload-file"), []string{archive}, chromedp.NodeReady), submit("import-upload"))
		ta.waitFor("the import report", `document.querySelector('#import-result [data-key="imported"]')`, 90*time.Second)
		if n := eval[string](ta, `document.querySelector('#import-result [data-key="imported"]').textContent`); n == "0" {
			t.Fatalf("the import imported nothing:\n%s", ta.text("#import-status"))
		}
		ta.shot("import.png")

		// A toot of hostile HTML, imported from a folder on the plug.
		dir := filepath.Join(t.TempDir(), "hostile-export")
		mustOK(t, os.MkdirAll(dir, 0o755))
		var items []map[string]any
		for i, p := range xss {
			items = append(items, map[string]any{
				"type": "Create", "id": fmt.Sprintf("https://example.social/users/ann/statuses/%d/activity", i),
				"published": "2024-01-02T03:04:05Z", "to": []string{"https://www.w3.org/ns/activitystreams#Public"},
				"object": map[string]any{"type": "Note", "id": fmt.Sprintf("https://example.social/users/ann/statuses/%d", i),
					"content": "<p>hostiletoot " + strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(p) + "</p>" + p,
					"url":     "javascript:alert(9)", "published": "2024-01-02T03:04:05Z",
					"to": []string{"https://www.w3.org/ns/activitystreams#Public"}},
			})
		}
		outbox, _ := json.Marshal(map[string]any{"@context": "https://www.w3.org/ns/activitystreams", "type": "OrderedCollection", "orderedItems": items})
		mustOK(t, os.WriteFile(filepath.Join(dir, "outbox.json"), outbox, 0o644))
		ta.open("/import")
		ta.do("import from the plug",
			chromedp.SetValue(chromedp.ID("source-kind"), "mastodon"),
			chromedp.SendKeys(chromedp.ID("import-src"), dir),
			submit("import-source"))
		ta.waitFor("the second report", `document.querySelector('#import-result [data-key="imported"]')`, 30*time.Second)

		ta.open("/timeline?q=caterday")
		ta.waitFor("search results", `document.querySelectorAll(".entry").length > 0`, 10*time.Second)
		if !strings.Contains(strings.ToLower(ta.text("#entries")), "caterday") || !strings.Contains(ta.text("#entries"), "from mastodon") {
			t.Fatalf("the search for caterday shows:\n%s", ta.text("main"))
		}
		ta.open("/timeline?q=hostiletoot")
		ta.waitFor("the hostile toots", fmt.Sprintf(`document.querySelectorAll(".entry").length === %d`, len(xss)), 10*time.Second)
		ta.clean("search results of hostile toots")
		if n := eval[int](ta, hostileElements); n != 0 {
			t.Fatalf("the timeline holds %d elements made by an imported toot", n)
		}
		if n := eval[int](ta, `document.querySelectorAll('a[href^="javascript:"]').length`); n != 0 {
			t.Fatal("an imported javascript: URL became a link")
		}
		// The harvester turns the HTML into text; what is left of each
		// payload shows as text.
		if n := eval[int](ta, `[...document.querySelectorAll(".entry .text")].filter(e => e.textContent.includes("hostiletoot") && /alert\(\d\)/.test(e.textContent)).length`); n != len(xss) {
			t.Fatalf("%d of the %d hostile toots show their payload as text:\n%s", n, len(xss), ta.text("#entries"))
		}
		ta.open("/timeline")
		ta.shot("timeline.png")
	})

	t.Run("overview and the live log", func(t *testing.T) {
		ta.t = t
		ta.open("/")
		words := ta.text("#health-words")
		if !strings.Contains(words, "You can lose 1 friend and keep everything") {
			t.Fatalf("health: %q", words)
		}
		if got := ta.text("#friends-online"); got != "2 of 2" {
			t.Fatalf("friends online: %q", got)
		}
		if got := ta.text("#last-backup"); got == "never" {
			t.Fatalf("last backup: %q", got)
		}
		ta.shot("overview.png")
		ta.clean("overview")

		ta.open("/log")
		ta.waitFor("the log", `document.querySelectorAll("#log tbody tr").length > 5`, 10*time.Second)
		// A new event shows without a reload.
		extra := filepath.Join(t.TempDir(), "docs")
		mustOK(t, os.MkdirAll(extra, 0o755))
		mustPlug(t, "sources", "--data", a, "add", extra)
		ta.waitFor("the live event", fmt.Sprintf(`document.querySelector("#log tbody tr").innerText.includes(%s)`, js(extra)), 20*time.Second)
		ta.shot("log.png")
		ta.clean("log with hostile events")
		if n := eval[int](ta, hostileElements); n != 0 {
			t.Fatalf("the log holds %d elements made by hostile strings", n)
		}
		// The filter keeps only what it names.
		ta.open("/log?level=warn")
		if n := eval[int](ta, `[...document.querySelectorAll("#log tbody tr")].filter(r => !/WARN|ERROR/.test(r.cells[1].textContent)).length`); n != 0 {
			t.Fatalf("the warnings filter shows %d other events", n)
		}
	})
}
