package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plug-net/plug/integration/netlab"
)

// plugBin is the plug binary built once for every test of the package.
var plugBin string

func TestMain(m *testing.M) {
	if addrs := os.Getenv(strangerProbeEnv); addrs != "" {
		os.Exit(strangerProbe(addrs))
	}
	dir, err := os.MkdirTemp("", "plug-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	plugBin = filepath.Join(dir, "plug")
	// The plug processes run without the race detector even under -race:
	// they move hundreds of megabytes, which the detector slows tenfold, and
	// the packages' own tests run their concurrency (real hosts, the
	// pipeline, the store) under it.
	cmd := exec.Command("go", "build", "-o", plugBin, "../cmd/plug")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build plug:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, "remove the plug binary built for the tests:", err)
	}
	os.Exit(code)
}

// mustOK fails the test at once on err: for the steps that set a test up,
// do the damage it is about, or tear it down, which must work for the test
// to mean anything.
func mustOK(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fromJSON decodes a command's --json output into v.
func fromJSON(t testing.TB, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("the output is not the JSON expected: %v\n%s", err, out)
	}
}

// killProcess ends p with SIGKILL. It fails only when p has ended already,
// which is what it is for, so the error is not looked at.
func killProcess(p *os.Process) { _ = p.Kill() }

// result is what a finished plug command did.
type result struct {
	code   int
	stdout string
	stderr string
}

// plugCommand is the command that runs plug with args on host on (on this
// machine when on is nil).
func plugCommand(on *netlab.Host, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if on == nil {
		cmd = exec.Command(plugBin, args...)
	} else {
		cmd = on.Command(plugBin, args...)
	}
	cmd.Env = append(os.Environ(), "PLUG_DATA=", "XDG_DATA_HOME=", "PLUG_PUBLIC_RANGES=")
	return cmd
}

// plug runs a plug client command to completion.
func plug(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return plugOn(t, nil, stdin, args...)
}

// plugOn runs a plug client command to completion on a lab host (nil: on
// this machine).
func plugOn(t *testing.T, on *netlab.Host, stdin string, args ...string) result {
	t.Helper()
	return runCommand(t, plugCommand(on, args...), stdin, 2*time.Minute)
}

// runCommand runs cmd to completion with stdin, killing it after limit,
// and returns its exit code and output; a command that cannot start fails
// the test.
func runCommand(t *testing.T, cmd *exec.Cmd, stdin string, limit time.Duration) result {
	t.Helper()
	timer := time.AfterFunc(limit, func() { killProcess(cmd.Process) })
	defer timer.Stop()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// mustPlug runs a command that must succeed.
func mustPlug(t *testing.T, args ...string) result {
	t.Helper()
	return mustPlugOn(t, nil, args...)
}

// mustPlugOn runs a command on a lab host that must succeed.
func mustPlugOn(t *testing.T, on *netlab.Host, args ...string) result {
	t.Helper()
	r := plugOn(t, on, "", args...)
	if r.code != 0 {
		t.Fatalf("plug %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// daemon is a running "plug up".
type daemon struct {
	t    *testing.T
	on   *netlab.Host // nil: this machine
	dir  string
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
	err  error
	// watch are the texts the test waits for, each with the channel
	// closed when the daemon writes it next.
	watch map[string]chan struct{}
}

func (d *daemon) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for s, ch := range d.watch {
		if bytes.Contains(p, []byte(s)) { // slog writes a record whole
			close(ch)
			delete(d.watch, s)
		}
	}
	return d.log.Write(p)
}

// when returns a channel closed when the daemon next writes a line
// containing s.
func (d *daemon) when(s string) <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.watch == nil {
		d.watch = map[string]chan struct{}{}
	}
	if ch, ok := d.watch[s]; ok {
		return ch
	}
	ch := make(chan struct{})
	d.watch[s] = ch
	return ch
}

// logText returns what the daemon wrote so far.
func (d *daemon) logText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// startPlug starts "plug up" on dir, listening on 127.0.0.1, and waits
// until it answers status.
func startPlug(t *testing.T, dir string, args ...string) *daemon {
	t.Helper()
	return startPlugOn(t, nil, dir, append([]string{"--listen", "/ip4/127.0.0.1/tcp/0"}, args...)...)
}

// startPlugOn starts "plug up" on dir on a lab host (nil: this machine) and
// waits until it answers status. args give the listen addresses.
func startPlugOn(t *testing.T, on *netlab.Host, dir string, args ...string) *daemon {
	t.Helper()
	cmd := plugCommand(on, append([]string{"up", "--data", dir, "--api", "127.0.0.1:0"}, args...)...)
	d := startDaemon(t, cmd, dir, 60*time.Second, func() bool {
		if _, err := os.Stat(filepath.Join(dir, "api.addr")); err != nil {
			return false
		}
		return plugOn(t, on, "", "status", "--data", dir, "--json").code == 0
	})
	d.on = on
	return d
}

// startDaemon starts cmd (a "plug up" of dir), ended with the test, and
// waits until answers says it answers, failing the test if it exits first
// or does not answer within limit.
func startDaemon(t *testing.T, cmd *exec.Cmd, dir string, limit time.Duration, answers func() bool) *daemon {
	t.Helper()
	d := &daemon{t: t, dir: dir, cmd: cmd, done: make(chan struct{})}
	d.cmd.Stdout, d.cmd.Stderr = d, d
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(d.kill)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			t.Fatalf("%s exited early: %v\n%s", strings.Join(cmd.Args, " "), d.err, d.logText())
		default:
		}
		if answers() {
			return d
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within %v:\n%s", strings.Join(cmd.Args, " "), limit, d.logText())
	return nil
}

// stop sends SIGTERM and returns the exit code.
func (d *daemon) stop() int {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		d.t.Fatalf("stop plug up: %v", err)
	}
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.t.Fatalf("plug up did not stop within 30s of SIGTERM:\n%s", d.logText())
	}
	return d.cmd.ProcessState.ExitCode()
}

// kill ends the daemon with SIGKILL if it still runs.
func (d *daemon) kill() {
	select {
	case <-d.done:
	default:
		killProcess(d.cmd.Process)
		<-d.done
	}
}

func status(t *testing.T, dir string) map[string]any {
	t.Helper()
	return statusOn(t, nil, dir)
}

func statusOn(t *testing.T, on *netlab.Host, dir string) map[string]any {
	t.Helper()
	r := mustPlugOn(t, on, "status", "--data", dir, "--json")
	var st map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, r.stdout)
	}
	return st
}

func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
