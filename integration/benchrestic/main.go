// Command benchrestic times plug against restic on the same data in the same run: first
// backup, unchanged re-backup and restore, with wall time, CPU time and peak RSS of each.
//
// Run it from the repository root:
//
//	go run ./integration/benchrestic [-restic PATH] [-sets random,gotree] [-random-size 1GiB] [-mixed-size 10GiB] [-workdir DIR] [-keep] [-json FILE]
//
// -restic names the restic to compare with; the newest (0.19.0) is on the Go module proxy:
//
//	GONOSUMDB=github.com/restic/restic GOBIN=/tmp/restic019 go install github.com/restic/restic/cmd/restic@v0.19.0
//	go run ./integration/benchrestic -restic /tmp/restic019/restic
//
// For each data set it starts a fresh bootstrap plug and four plugs A, B, C, D on
// 127.0.0.1 (A pairs with the other three) for the plug rows and stops them before the
// restic rows, which use a local restic repository. Plug goes first unless -order says
// otherwise. Nothing drops the page cache: every data set is freshly written into the work
// directory, so both tools read it warm; `sync` runs before every timed step, and nothing
// is deleted before exit but the plugs' own directories once they are stopped.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
)

type config struct {
	sets       []string
	randomSize int64
	mixedSize  int64
	workdir    string
	keep       bool
	jsonOut    string
	order      string
	verbose    bool
	timeout    time.Duration
	restic     string // -restic: the restic to compare with ("" = the one on PATH)
	profile    string // -profile: where the owner's CPU profiles of each plug row go
	smallFiles int    // -small-files: the size of the small data set
}

// row is one measured step of one data set; restic fields are nil when restic is absent.
type row struct {
	Name           string   `json:"row"`
	PlugS          float64  `json:"plug_s"`
	PlugRSSMiB     float64  `json:"plug_owner_peak_rss_mib"`
	FriendsRSSMiB  float64  `json:"plug_friends_peak_rss_mib"`
	OwnerCPUS      float64  `json:"plug_owner_cpu_s"`
	FriendsCPUS    float64  `json:"plug_friends_cpu_s"`
	ClientCPUS     float64  `json:"plug_client_cpu_s"`
	PlugOtherPct   float64  `json:"plug_other_load_pct"` // CPU used by unrelated processes, % of the machine
	PlugNote       string   `json:"plug_note,omitempty"`
	PlugErr        string   `json:"plug_error,omitempty"`
	ResticS        *float64 `json:"restic_s,omitempty"`
	ResticRSSMiB   *float64 `json:"restic_peak_rss_mib,omitempty"`
	ResticCPUS     *float64 `json:"restic_cpu_s,omitempty"`
	ResticOtherPct *float64 `json:"restic_other_load_pct,omitempty"`
	ResticNote     string   `json:"restic_note,omitempty"`
	ResticErr      string   `json:"restic_error,omitempty"`
}

type setResult struct {
	Name          string  `json:"name"`
	Path          string  `json:"path"`
	Files         int     `json:"files"`
	Bytes         int64   `json:"bytes"`
	Rows          []*row  `json:"rows"`
	RSSPerRow     bool    `json:"rss_per_row"` // false: plug RSS columns are cumulative peaks since start
	OwnerPeakMiB  float64 `json:"owner_peak_rss_mib"`
	FriendPeakMiB float64 `json:"friends_peak_rss_mib"`
}

type report struct {
	Time          time.Time    `json:"time"`
	GoVersion     string       `json:"go_version"`
	CPUs          int          `json:"cpus"`
	PlugSource    string       `json:"plug_source"` // commit, and the files changed since
	ResticVersion string       `json:"restic_version,omitempty"`
	Method        string       `json:"method"`
	Sets          []*setResult `json:"sets"`
}

const method = "order %s; fresh plugs (bootstrap + A,B,C,D on 127.0.0.1 TCP) per data set, stopped before restic runs; " +
	"sync before each timed step, page cache not dropped (data freshly written, warm for both); nothing deleted until exit but the stopped plugs' directories; " +
	"restic: local repository, default options; plug RSS: VmHWM of the daemons, reset per row via /proc/PID/clear_refs; " +
	"restic RSS: ru_maxrss of the command; restore verified (size + SHA-256 of every file) outside the timing"

func main() {
	var cfg config
	sets := flag.String("sets", "random,gotree", "comma-separated data sets: random (one file of random bytes), gotree (a copy of $(go env GOROOT)), small (-small-files files of 0-4 KiB in folders of 1,000), mixed (-mixed-size of random bytes: four large files, about 900 of 64 KiB-4 MiB, 100,000 of 0-4 KiB at 10 GiB)")
	flag.IntVar(&cfg.smallFiles, "small-files", 100_000, "how many files the small data set has")
	size := flag.String("random-size", "1GiB", "size of the random data set")
	mixed := flag.String("mixed-size", "10GiB", "size of the mixed data set (it needs about four times as much free space in the work directory)")
	flag.StringVar(&cfg.workdir, "workdir", os.TempDir(), "`DIR` in which the work directory (data sets, plugs, repositories) is made")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the work directory (and the logs in it) on exit")
	flag.StringVar(&cfg.jsonOut, "json", "", "also write the results as JSON to `FILE`")
	flag.BoolVar(&cfg.verbose, "v", false, "run the plugs with -v (debug logs in WORKDIR/logs)")
	flag.StringVar(&cfg.order, "order", "plug-first", "which tool runs first on each data set: plug-first, restic-first or alternate")
	flag.DurationVar(&cfg.timeout, "timeout", 30*time.Minute, "limit for each timed command")
	flag.StringVar(&cfg.restic, "restic", "", "the restic `binary` to compare with (default: restic on PATH, else Debian's, installed with apt-get); see the README for restic 0.19")
	flag.StringVar(&cfg.profile, "profile", "", "write the owner daemon's CPU profile of each plug row into `DIR` (one-second slices SET-ROW-NNN.pprof; read them together with go tool pprof -top DIR/SET-ROW-[0-9]*.pprof), and its heap after each slice (SET-ROW-NNN.heap; go tool pprof -sample_index=inuse_space -top); friend B's as SET-ROW-friend-NNN.pprof and .heap")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "benchrestic: unexpected argument %q (see -h)\n", flag.Arg(0))
		os.Exit(2)
	}
	n, err := humanize.ParseBytes(*size)
	if err != nil || n == 0 {
		fmt.Fprintf(os.Stderr, "benchrestic: bad -random-size %q: give a size such as 1GiB or 200MB\n", *size)
		os.Exit(2)
	}
	cfg.randomSize = int64(n)
	if n, err = humanize.ParseBytes(*mixed); err != nil || n < 64<<20 {
		fmt.Fprintf(os.Stderr, "benchrestic: bad -mixed-size %q: give a size of at least 64MiB, such as 10GiB\n", *mixed)
		os.Exit(2)
	}
	cfg.mixedSize = int64(n)
	if cfg.order != "plug-first" && cfg.order != "restic-first" && cfg.order != "alternate" {
		fmt.Fprintf(os.Stderr, "benchrestic: bad -order %q: give plug-first, restic-first or alternate\n", cfg.order)
		os.Exit(2)
	}
	for _, s := range strings.Split(*sets, ",") {
		if s = strings.TrimSpace(s); s != "random" && s != "gotree" && s != "small" && s != "mixed" {
			fmt.Fprintf(os.Stderr, "benchrestic: unknown data set %q (known: random, gotree, small, mixed)\n", s)
			os.Exit(2)
		}
		cfg.sets = append(cfg.sets, strings.TrimSpace(s))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	err = run(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrestic:", err)
		os.Exit(1)
	}
}

// bench holds the state of one run.
type bench struct {
	cfg      config
	work     string // the work directory, removed on exit unless -keep
	plug     string // the built plug binary
	restic   string // "" when restic is not available
	password bool   // restic needs RESTIC_PASSWORD (no --insecure-no-password)
}

func run(ctx context.Context, cfg config) (err error) {
	b := &bench{cfg: cfg}
	if b.work, err = os.MkdirTemp(cfg.workdir, "benchrestic-"); err != nil {
		return fmt.Errorf("make the work directory: %w", err)
	}
	defer func() { // the plugs are stopped by then (plugRows stops its own)
		if cfg.keep {
			fmt.Printf("kept the work directory %s\n", b.work)
			return
		}
		if rerr := os.RemoveAll(b.work); rerr != nil && err == nil {
			err = fmt.Errorf("remove the work directory (remove it by hand): %w", rerr)
		}
	}()
	for _, d := range []string{"bin", "logs", "data", "restore"} {
		if err := os.MkdirAll(filepath.Join(b.work, d), 0o755); err != nil {
			return err
		}
	}
	fmt.Printf("work directory: %s\n", b.work)
	source, err := b.buildPlug(ctx)
	if err != nil {
		return err
	}
	rep := &report{Time: time.Now().UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), PlugSource: source,
		Method: fmt.Sprintf(method, cfg.order)}
	rep.ResticVersion = b.findRestic(ctx)
	var failed []string
	for i, name := range cfg.sets {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		res, err := b.runSet(ctx, name, i)
		if err != nil {
			return fmt.Errorf("data set %s: %w", name, err)
		}
		rep.Sets = append(rep.Sets, res)
		if err := printSet(res, b.restic != ""); err != nil {
			return fmt.Errorf("print the results: %w", err)
		}
		for _, r := range res.Rows {
			if r.PlugErr != "" || r.ResticErr != "" {
				failed = append(failed, name+"/"+r.Name)
			}
		}
	}
	printSummary(rep, b.restic != "")
	if cfg.jsonOut != "" {
		data, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(cfg.jsonOut, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", cfg.jsonOut, err)
		}
		fmt.Printf("results written to %s\n", cfg.jsonOut)
	}
	if len(failed) > 0 {
		return fmt.Errorf("some steps failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// buildPlug builds ./cmd/plug of the module that holds the current directory and
// says which source it built: the commit and the files changed since.
func (b *bench) buildPlug(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", errors.New("run benchrestic inside the plug module (go env GOMOD found none)")
	}
	b.plug = filepath.Join(b.work, "bin", "plug")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", b.plug, "./cmd/plug")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/plug: %v\n%s", err, out)
	}
	head, _ := exec.CommandContext(ctx, "git", "-C", cmd.Dir, "rev-parse", "--short", "HEAD").Output()
	dirty, _ := exec.CommandContext(ctx, "git", "-C", cmd.Dir, "status", "--porcelain", "--untracked-files=no").Output()
	source := "commit " + strings.TrimSpace(string(head))
	var files []string
	for _, line := range strings.Split(strings.TrimRight(string(dirty), "\n"), "\n") {
		if len(line) > 3 {
			files = append(files, line[3:])
		}
	}
	if len(files) > 0 {
		source += " + uncommitted changes in " + strings.Join(files, ", ")
	}
	fmt.Printf("built ./cmd/plug (%s)\n", source)
	return source, nil
}

// findRestic looks for restic (-restic, else on PATH), installs Debian's
// with apt-get when there is none and it can, and returns its version.
func (b *bench) findRestic(ctx context.Context) string {
	if b.cfg.restic != "" {
		if _, err := os.Stat(b.cfg.restic); err != nil {
			fmt.Printf("-restic %s: %v: skipping the restic rows\n", b.cfg.restic, err)
			return ""
		}
		return b.useRestic(ctx, b.cfg.restic)
	}
	path, err := exec.LookPath("restic")
	if _, aptErr := exec.LookPath("apt-get"); err != nil && aptErr == nil && os.Geteuid() == 0 {
		for _, args := range [][]string{{"install", "-y", "restic"}, {"update"}, {"install", "-y", "restic"}} {
			fmt.Printf("restic is not on PATH: running apt-get %s\n", strings.Join(args, " "))
			cmd := exec.CommandContext(ctx, "apt-get", args...)
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if cmd.Run() == nil && args[0] == "install" {
				break
			}
		}
		path, err = exec.LookPath("restic")
	}
	if err != nil {
		fmt.Println("restic not installed: skipping the restic rows")
		return ""
	}
	return b.useRestic(ctx, path)
}

// useRestic takes the restic at path and returns its version.
func (b *bench) useRestic(ctx context.Context, path string) string {
	b.restic = path
	out, _ := exec.CommandContext(ctx, path, "version").Output()
	help, _ := exec.CommandContext(ctx, path, "--help").CombinedOutput()
	b.password = !bytes.Contains(help, []byte("--insecure-no-password"))
	v := strings.TrimSpace(string(out))
	fmt.Printf("using %s (%s)\n", v, path)
	return v
}

// runSet prepares data set number index and measures plug and restic on it.
func (b *bench) runSet(ctx context.Context, name string, index int) (*setResult, error) {
	src := filepath.Join(b.work, "data", name)
	var files int
	var size int64
	var err error
	fmt.Printf("\n== data set %s: preparing %s\n", name, src)
	switch name {
	case "random":
		files, size, err = 1, b.cfg.randomSize, writeRandom(filepath.Join(src, "random.bin"), b.cfg.randomSize, 0)
	case "gotree":
		var goroot []byte
		if goroot, err = exec.CommandContext(ctx, "go", "env", "GOROOT").Output(); err == nil {
			files, size, err = copyTree(ctx, strings.TrimSpace(string(goroot)), filepath.Join(src, "go"))
		}
	case "small":
		files = b.cfg.smallFiles
		size, err = writeSmall(src, b.cfg.smallFiles)
	case "mixed":
		files, size, err = writeMixed(src, b.cfg.mixedSize)
	}
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	fmt.Printf("   %d files, %s (%d bytes)\n", files, humanize.IBytes(uint64(size)), size)
	res := &setResult{Name: name, Path: src, Files: files, Bytes: size}
	for _, n := range []string{"backup", "rebackup", "restore"} {
		res.Rows = append(res.Rows, &row{Name: n})
	}
	tools := map[string]func(context.Context, *setResult) error{"plug": b.plugRows, "restic": b.resticRows}
	order := []string{"plug", "restic"}
	if b.cfg.order == "restic-first" || (b.cfg.order == "alternate" && index%2 == 1) {
		order = []string{"restic", "plug"}
	}
	for _, tool := range order {
		if tool == "restic" && b.restic == "" {
			continue
		}
		if err := tools[tool](ctx, res); err != nil {
			fmt.Printf("   %s: %v\n", tool, err)
		}
		if tool == "plug" && !b.cfg.keep {
			// The plugs are stopped: their shards (a set's size and half
			// again) make room for restic's repository.
			if err := os.RemoveAll(filepath.Join(b.work, "plugs-"+name)); err != nil {
				fmt.Printf("   could not remove the plugs' directories: %v\n", err)
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return res, nil
}

// plugRows starts a fresh set of plugs and measures backup, re-backup and restore.
func (b *bench) plugRows(ctx context.Context, res *setResult) (err error) {
	fail := func(r *row, err error) error {
		for _, later := range res.Rows[slices.Index(res.Rows, r):] {
			later.PlugErr = "not run: " + r.Name + " failed"
		}
		r.PlugErr = err.Error()
		return fmt.Errorf("%s failed: %w", r.Name, err)
	}
	c, err := b.startCluster(ctx, filepath.Join(b.work, "plugs-"+res.Name))
	defer c.stop()
	if err != nil {
		return fail(res.Rows[0], err)
	}
	a := c.daemons[1]
	defer func() {
		if err != nil && ctx.Err() == nil {
			c.printLogTails()
		}
	}()
	res.RSSPerRow = true
	for name, st := range c.stats() { // startup and pairing, before the first reset
		if name == "a" {
			res.OwnerPeakMiB = mib(st.hwm)
		} else if name != "z" {
			res.FriendPeakMiB = max(res.FriendPeakMiB, mib(st.hwm))
		}
	}
	measure := func(r *row, args ...string) (cmdResult, error) {
		syscall.Sync()
		if !c.resetPeaks() {
			res.RSSPerRow = false
		}
		before, busy := c.stats(), machineBusy()
		stopOwner := b.profileRow(ctx, a.dir, res.Name+"-"+r.Name)
		stopFriend := b.profileRow(ctx, c.daemons[2].dir, res.Name+"-"+r.Name+"-friend")
		cr, err := b.command(ctx, "plug-"+res.Name+"-"+r.Name, nil, b.plug, args...)
		stopOwner()
		stopFriend()
		after, busy := c.stats(), machineBusy()-busy
		r.PlugS, r.ClientCPUS = cr.wall.Seconds(), cr.cpu.Seconds()
		ours := cr.cpu
		for _, d := range c.daemons {
			cpu := after[d.name].cpu - before[d.name].cpu
			ours += cpu
			switch d.name {
			case "a":
				r.PlugRSSMiB, r.OwnerCPUS = mib(after[d.name].hwm), cpu.Seconds()
			case "b", "c", "d":
				r.FriendsRSSMiB, r.FriendsCPUS = max(r.FriendsRSSMiB, mib(after[d.name].hwm)), r.FriendsCPUS+cpu.Seconds()
			}
		}
		r.PlugOtherPct = otherLoad(busy, ours, cr.wall)
		res.OwnerPeakMiB = max(res.OwnerPeakMiB, r.PlugRSSMiB)
		res.FriendPeakMiB = max(res.FriendPeakMiB, r.FriendsRSSMiB)
		fmt.Printf("   plug   %-9s %8.2fs\n", r.Name, r.PlugS)
		return cr, err
	}
	for _, r := range res.Rows[:2] {
		cr, err := measure(r, "backup", "--data", a.dir, "--json", res.Path)
		if err != nil {
			return fail(r, err)
		}
		var out struct {
			Bytes    int64   `json:"bytes"`
			NewBytes int64   `json:"new_bytes"`
			Duration float64 `json:"duration_s"`
		}
		if err := json.Unmarshal(cr.stdout, &out); err != nil {
			return fail(r, fmt.Errorf("backup --json printed %q: %v", cr.stdout, err))
		}
		r.PlugNote = fmt.Sprintf("daemon says %.2fs, %s new", out.Duration, humanize.IBytes(uint64(out.NewBytes)))
	}
	r := res.Rows[2]
	to := filepath.Join(b.work, "restore", "plug-"+res.Name)
	if _, err := measure(r, "restore", "--data", a.dir, "latest", "--to", to); err != nil {
		return fail(r, err)
	}
	if err := verify(res.Path, to); err != nil {
		return fail(r, err)
	}
	r.PlugNote = "verified"
	return nil
}

// profileRow takes CPU profiles of a daemon (at dir: the owner, or friend B
// with name ending in "-friend") in one-second slices from its /debug/pprof
// until the returned func is called (the slice in flight then is dropped),
// with -profile.
func (b *bench) profileRow(ctx context.Context, dir, name string) (stop func()) {
	if b.cfg.profile == "" {
		return func() {}
	}
	addr, err1 := os.ReadFile(filepath.Join(dir, "api.addr"))
	token, err2 := os.ReadFile(filepath.Join(dir, "api.token"))
	if err := errors.Join(err1, err2, os.MkdirAll(b.cfg.profile, 0o755)); err != nil {
		fmt.Fprintf(os.Stderr, "benchrestic: no profile of %s: %v\n", name, err)
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		get := func(path, file string) bool {
			req, err := http.NewRequestWithContext(ctx, "GET", "http://"+strings.TrimSpace(string(addr))+path, nil)
			if err != nil {
				return false
			}
			req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close() // read whole
			if err != nil || resp.StatusCode != http.StatusOK {
				return false
			}
			if err := os.WriteFile(filepath.Join(b.cfg.profile, file), body, 0o644); err != nil {
				fmt.Fprintf(os.Stderr, "benchrestic: profile of %s: %v\n", name, err)
				return false
			}
			return true
		}
		for i := 1; ctx.Err() == nil; i++ {
			// The CPU slice, then the heap as the last collection left it.
			if !get("/debug/pprof/profile?seconds=1", fmt.Sprintf("%s-%03d.pprof", name, i)) ||
				!get("/debug/pprof/heap", fmt.Sprintf("%s-%03d.heap", name, i)) {
				return
			}
		}
	}()
	return func() { cancel(); <-done }
}

// resticRows measures restic on a local repository.
func (b *bench) resticRows(ctx context.Context, res *setResult) error {
	repo := filepath.Join(b.work, "restic-"+res.Name)
	env := []string{"RESTIC_REPOSITORY=" + repo, "RESTIC_CACHE_DIR=" + filepath.Join(b.work, "restic-cache")}
	var global []string
	if b.password {
		env = append(env, "RESTIC_PASSWORD=benchrestic")
	} else {
		global = []string{"--insecure-no-password"}
	}
	fail := func(r *row, err error) error {
		for _, later := range res.Rows[slices.Index(res.Rows, r):] {
			later.ResticErr = "not run: " + r.Name + " failed"
		}
		r.ResticErr = err.Error()
		return fmt.Errorf("%s failed: %w", r.Name, err)
	}
	if _, err := b.command(ctx, "restic-"+res.Name+"-init", env, b.restic, append(global, "init")...); err != nil {
		return fail(res.Rows[0], err)
	}
	measure := func(r *row, args ...string) (cmdResult, error) {
		syscall.Sync()
		busy := machineBusy()
		cr, err := b.command(ctx, "restic-"+res.Name+"-"+r.Name, env, b.restic, append(global, args...)...)
		s, rss, cpu, other := cr.wall.Seconds(), mib(cr.maxRSS), cr.cpu.Seconds(), otherLoad(machineBusy()-busy, cr.cpu, cr.wall)
		r.ResticS, r.ResticRSSMiB, r.ResticCPUS, r.ResticOtherPct = &s, &rss, &cpu, &other
		fmt.Printf("   restic %-9s %8.2fs\n", r.Name, s)
		return cr, err
	}
	for _, r := range res.Rows[:2] {
		cr, err := measure(r, "backup", "--json", res.Path)
		if err != nil {
			return fail(r, err)
		}
		for _, line := range bytes.Split(cr.stdout, []byte("\n")) {
			var sum struct {
				Type      string  `json:"message_type"`
				DataAdded int64   `json:"data_added"`
				Duration  float64 `json:"total_duration"`
			}
			if json.Unmarshal(line, &sum) == nil && sum.Type == "summary" {
				r.ResticNote = fmt.Sprintf("restic says %.2fs, %s added", sum.Duration, humanize.IBytes(uint64(sum.DataAdded)))
			}
		}
	}
	r := res.Rows[2]
	to := filepath.Join(b.work, "restore", "restic-"+res.Name)
	if _, err := measure(r, "restore", "latest", "--target", to); err != nil {
		return fail(r, err)
	}
	if err := verify(res.Path, to); err != nil {
		return fail(r, err)
	}
	r.ResticNote = "verified"
	return nil
}

// writeSmall writes n files of 0 to 4 KiB of random bytes, a thousand to a
// folder: the many-small-files set (issue 12's scale table).
func writeSmall(dir string, n int) (int64, error) {
	rng := rand.New(rand.NewPCG(12, 2026))
	buf := make([]byte, 4096)
	var total int64
	for i := range n {
		sub := filepath.Join(dir, fmt.Sprintf("d%04d", i/1000))
		if i%1000 == 0 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return total, err
			}
		}
		size := rng.IntN(4097)
		for j := 0; j < size; j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8 && j+k < size; k++ {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%07d", i)), buf[:size], 0o644); err != nil {
			return total, err
		}
		total += int64(size)
	}
	return total, nil
}

// writeMixed writes the mixed set of size bytes, all random: 100,000 files
// of 0-4 KiB per 10 GiB (small/, in folders of 1,000), 18% of the size in
// files of 64 KiB to 4 MiB (medium/, in folders of 100), and four large
// files with the rest (large/).
func writeMixed(dir string, size int64) (files int, total int64, err error) {
	nSmall := int(size * 100_000 / (10 << 30))
	if total, err = writeSmall(filepath.Join(dir, "small"), nSmall); err != nil {
		return 0, total, err
	}
	files = nSmall
	rng := rand.New(rand.NewPCG(13, 2026))
	buf := make([]byte, 4<<20)
	for i := 0; total < size*20/100; i++ {
		sub := filepath.Join(dir, "medium", fmt.Sprintf("d%03d", i/100))
		if i%100 == 0 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return files, total, err
			}
		}
		n := 64<<10 + rng.IntN(4<<20-64<<10+1)
		for j := 0; j < n; j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8 && j+k < n; k++ {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("m%05d", i)), buf[:n], 0o644); err != nil {
			return files, total, err
		}
		files++
		total += int64(n)
	}
	large := (size - total) / 4
	for i := range 4 {
		n := large
		if i == 3 {
			n = size - total
		}
		if err := writeRandom(filepath.Join(dir, "large", fmt.Sprintf("large%d.bin", i)), n, byte(1+i)); err != nil {
			return files, total, err
		}
		files++
		total += n
	}
	return files, total, nil
}

// verify checks the tree restored at to+src against src. The tree stays until exit:
// deleting thousands of files makes ext4 slow to create the next ones (its inode
// allocator skips recently deleted inodes), which would slow down the next tool.
func verify(src, to string) error {
	start := time.Now()
	n, err := compareTrees(src, filepath.Join(to, src))
	if err != nil {
		return fmt.Errorf("restored tree differs from the source: %w", err)
	}
	fmt.Printf("   verified %d entries byte-identical (%.1fs, not timed)\n", n, time.Since(start).Seconds())
	return nil
}

type cmdResult struct {
	wall   time.Duration
	cpu    time.Duration // user + system of the process (not its own children)
	maxRSS int64         // bytes
	stdout []byte
}

// command runs one command to completion, stderr appended to WORK/logs/NAME.log.
func (b *bench) command(ctx context.Context, name string, env []string, bin string, args ...string) (cmdResult, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	logPath := filepath.Join(b.work, "logs", name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return cmdResult{}, err
	}
	// The command wrote the log through its own copy of the descriptor:
	// this one was never written, and closing it loses nothing.
	defer func() { _ = logf.Close() }()
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(append(os.Environ(), "PLUG_DATA=", "XDG_DATA_HOME="), env...)
	cmd.Stdout, cmd.Stderr = &stdout, logf
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	err = cmd.Run()
	res := cmdResult{wall: time.Since(start), stdout: stdout.Bytes()}
	if ps := cmd.ProcessState; ps != nil {
		res.cpu = ps.UserTime() + ps.SystemTime()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			res.maxRSS = ru.Maxrss * 1024 // KiB on Linux
		}
	}
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("%v: stopped after the -timeout of %v", err, b.cfg.timeout)
	}
	if err != nil {
		return res, fmt.Errorf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, tail(logPath, 15))
	}
	return res, nil
}

// daemon is one running `plug up`.
type daemon struct {
	name, dir, log string
	cmd            *exec.Cmd
	done           chan struct{}
}

type cluster struct {
	daemons []*daemon // z (bootstrap), a (owner), b, c, d
}

// startCluster starts the bootstrap plug Z and plugs A, B, C, D, and pairs A with the others.
func (b *bench) startCluster(ctx context.Context, root string) (*cluster, error) {
	c := &cluster{}
	fmt.Println("   starting plugs Z (bootstrap), A (owner), B, C, D")
	var boot string
	for _, name := range []string{"z", "a", "b", "c", "d"} {
		args := []string{"up", "--data", filepath.Join(root, name), "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--name", name}
		if name == "z" {
			args = append(args, "--bootstrap", "none")
		} else {
			args = append(args, "--bootstrap", boot)
		}
		if b.cfg.verbose {
			args = append(args, "-v")
		}
		d, err := b.startDaemon(ctx, name, filepath.Join(root, name), filepath.Base(root)+"-"+name, args)
		if d != nil {
			c.daemons = append(c.daemons, d)
		}
		if err != nil {
			return c, err
		}
		if name == "z" {
			var st struct {
				Addrs []string `json:"listen_addrs"`
			}
			out, err := b.command(ctx, "setup", nil, b.plug, "status", "--data", d.dir, "--json")
			if err == nil {
				err = json.Unmarshal(out.stdout, &st)
			}
			for _, a := range st.Addrs {
				if strings.Contains(a, "/ip4/127.0.0.1/tcp/") && strings.Contains(a, "/p2p/") {
					boot = a
				}
			}
			if boot == "" {
				return c, fmt.Errorf("no /ip4/127.0.0.1/tcp/…/p2p/… address in Z's status (%v)", err)
			}
		}
	}
	for _, f := range c.daemons[2:] {
		out, err := b.command(ctx, "setup", nil, b.plug, "invite", "--data", c.daemons[1].dir, "--json")
		var inv struct {
			Code string `json:"code"`
		}
		if err == nil {
			err = json.Unmarshal(out.stdout, &inv)
		}
		if err != nil {
			return c, fmt.Errorf("invite by A: %w", err)
		}
		if _, err := b.command(ctx, "setup", nil, b.plug, "accept", "--data", f.dir, inv.Code); err != nil {
			return c, fmt.Errorf("accept by %s: %w", strings.ToUpper(f.name), err)
		}
	}
	fmt.Println("   A is paired with B, C and D")
	return c, nil
}

func (b *bench) startDaemon(ctx context.Context, name, dir, logName string, args []string) (*daemon, error) {
	d := &daemon{name: name, dir: dir, log: filepath.Join(b.work, "logs", logName+".log"), done: make(chan struct{})}
	logf, err := os.Create(d.log)
	if err != nil {
		return nil, err
	}
	// The plug writes the log through its own copy of the descriptor:
	// this one is never written, and closing it loses nothing.
	defer func() { _ = logf.Close() }()
	d.cmd = exec.Command(b.plug, args...)
	d.cmd.Env = append(os.Environ(), "PLUG_DATA=", "XDG_DATA_HOME=")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// Own process group (Ctrl-C reaches only benchrestic, which stops the plugs in order);
	// killed if benchrestic dies.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start plug %s: %w", name, err)
	}
	go func() {
		_ = d.cmd.Wait() // how it ended is read from d.cmd.ProcessState
		close(d.done)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "api.addr")); err == nil {
			if _, err := b.command(ctx, "setup", nil, b.plug, "status", "--data", dir, "--json"); err == nil {
				return d, nil
			}
		}
		select {
		case <-d.done:
			return d, fmt.Errorf("plug %s exited: %v\n%s", name, d.cmd.ProcessState, tail(d.log, 15))
		case <-ctx.Done():
			return d, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return d, fmt.Errorf("plug %s did not answer status --json within 60s\n%s", name, tail(d.log, 15))
		}
	}
}

// stop sends SIGTERM to every plug, then SIGKILL to those still running after 10 s.
func (c *cluster) stop() {
	for _, d := range c.daemons {
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			fmt.Printf("   could not stop plug %s: %v\n", strings.ToUpper(d.name), err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, d := range c.daemons {
		select {
		case <-d.done:
		case <-time.After(time.Until(deadline)):
			fmt.Printf("   plug %s did not stop within 10s of SIGTERM: killing it\n", strings.ToUpper(d.name))
			_ = d.cmd.Process.Kill() // fails only when it ended meanwhile
			<-d.done
		}
	}
}

func (c *cluster) printLogTails() {
	for _, d := range c.daemons {
		fmt.Printf("   --- plug %s log (%s), last lines:\n%s\n", strings.ToUpper(d.name), d.log, tail(d.log, 12))
	}
}

type procStat struct {
	hwm int64 // VmHWM in bytes
	cpu time.Duration
}

// resetPeaks resets every daemon's VmHWM to its current RSS (Linux ≥ 4.0, clear_refs 5).
func (c *cluster) resetPeaks() bool {
	ok := true
	for _, d := range c.daemons {
		if os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", d.cmd.Process.Pid), []byte("5"), 0) != nil {
			ok = false
		}
	}
	return ok
}

func (c *cluster) stats() map[string]procStat {
	m := map[string]procStat{}
	for _, d := range c.daemons {
		m[d.name] = readProc(d.cmd.Process.Pid)
	}
	return m
}

// readProc reads VmHWM from /proc/PID/status and utime+stime from /proc/PID/stat.
func readProc(pid int) procStat {
	var st procStat
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				if kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
					st.hwm = kib * 1024
				}
			}
		}
	}
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if i := bytes.LastIndexByte(data, ')'); i > 0 {
			f := strings.Fields(string(data[i+1:]))
			if len(f) > 12 {
				ut, err1 := strconv.ParseInt(f[11], 10, 64)
				stt, err2 := strconv.ParseInt(f[12], 10, 64)
				if err1 == nil && err2 == nil {
					st.cpu = time.Duration(ut+stt) * time.Second / 100 // USER_HZ is 100 on Linux
				}
			}
		}
	}
	return st
}

// machineBusy returns the CPU time used by all processes since boot (/proc/stat).
func machineBusy() time.Duration {
	data, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(data), "\n")
	var busy int64
	for i, v := range strings.Fields(line) { // cpu user nice system idle iowait irq softirq steal …
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && i >= 1 && i <= 8 && i != 4 && i != 5 {
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / 100
}

// otherLoad is the share of the machine (in %) that processes other than ours used.
func otherLoad(busy, ours, wall time.Duration) float64 {
	return max(0, 100*(busy-ours).Seconds()/(wall.Seconds()*float64(runtime.NumCPU())))
}

// writeRandom writes size bytes from a ChaCha8 stream with a fixed seed
// (one per seed number).
func writeRandom(path string, size int64, seed byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	rng := rand.NewChaCha8([32]byte{'b', 'e', 'n', 'c', 'h', seed})
	w := bufio.NewWriterSize(f, 4<<20)
	_, err = io.CopyN(w, rng, size)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// copyTree copies regular files, folders and symlinks from src to dst, keeping modes.
func copyTree(ctx context.Context, src, dst string) (files int, size int64, err error) {
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(to, info.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		case d.Type().IsRegular():
			files++
			size += info.Size()
			return copyFile(p, to, info.Mode().Perm())
		}
		return nil
	})
	return files, size, err
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }() // opened to read only: closing it loses nothing
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm|0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// compareTrees checks that dst has exactly the entries of src: same types, symlink
// targets, sizes and SHA-256 of every regular file (hashed by NumCPU workers).
func compareTrees(src, dst string) (int, error) {
	type job struct{ a, b string }
	jobs := make(chan job, 256)
	errs := make(chan error, 1)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	done := make(chan struct{})
	workers := runtime.NumCPU()
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for j := range jobs {
				ha, errA := hashFile(j.a)
				hb, errB := hashFile(j.b)
				if err := errors.Join(errA, errB); err != nil {
					report(err)
				} else if ha != hb {
					report(fmt.Errorf("%s: content differs (SHA-256)", j.b))
				}
			}
		}()
	}
	n := 0
	walkErr := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		n++
		rel, _ := filepath.Rel(src, p)
		q := filepath.Join(dst, rel)
		a, err := os.Lstat(p)
		if err != nil {
			return err
		}
		b, err := os.Lstat(q)
		if err != nil {
			return fmt.Errorf("missing: %w", err)
		}
		if a.Mode().Type() != b.Mode().Type() {
			return fmt.Errorf("%s: type %v, want %v", q, b.Mode().Type(), a.Mode().Type())
		}
		switch {
		case a.Mode()&fs.ModeSymlink != 0:
			ta, _ := os.Readlink(p)
			if tb, _ := os.Readlink(q); ta != tb {
				return fmt.Errorf("%s: symlink to %q, want %q", q, tb, ta)
			}
		case a.Mode().IsRegular():
			if a.Size() != b.Size() {
				return fmt.Errorf("%s: %d bytes, want %d", q, b.Size(), a.Size())
			}
			jobs <- job{p, q}
		}
		return nil
	})
	close(jobs)
	for range workers {
		<-done
	}
	if walkErr != nil {
		return n, walkErr
	}
	select {
	case err := <-errs:
		return n, err
	default:
	}
	m := 0
	if err := filepath.WalkDir(dst, func(string, fs.DirEntry, error) error { m++; return nil }); err != nil {
		return n, err
	}
	if m != n {
		return n, fmt.Errorf("%s has %d entries, the source %d", dst, m, n)
	}
	return n, nil
}

func hashFile(p string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := os.Open(p)
	if err != nil {
		return sum, err
	}
	defer func() { _ = f.Close() }() // opened to read only: closing it loses nothing
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// tail returns the last n lines of a file, indented.
func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "      | " + strings.Join(lines, "\n      | ")
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func opt(v *float64, format string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v)
}

func printSet(s *setResult, withRestic bool) error {
	fmt.Printf("\n%s: %d files, %s\n", s.Name, s.Files, humanize.IBytes(uint64(s.Bytes)))
	rows := []string{"row\tplug s\trestic s\tratio (plug/restic)\tplug peak RSS MiB\trestic peak RSS MiB\tfriends peak RSS MiB\t"}
	for _, r := range s.Rows {
		ratio := "-"
		if r.ResticS != nil && *r.ResticS > 0 && r.PlugErr == "" {
			ratio = fmt.Sprintf("%.2f", r.PlugS / *r.ResticS)
		}
		plugS := fmt.Sprintf("%.2f", r.PlugS)
		if r.PlugErr != "" {
			plugS = "FAILED"
			if strings.HasPrefix(r.PlugErr, "not run") {
				plugS = "not run"
			}
		}
		rows = append(rows, fmt.Sprintf("%s\t%s\t%s\t%s\t%.0f\t%s\t%.0f\t", r.Name, plugS, opt(r.ResticS, "%.2f"), ratio, r.PlugRSSMiB, opt(r.ResticRSSMiB, "%.0f"), r.FriendsRSSMiB))
	}
	if err := printTable(rows); err != nil {
		return err
	}
	fmt.Println("CPU seconds (user+sys):")
	rows = []string{"row\tplug owner\tplug friends (3)\tplug client\trestic\tother procs % (plug)\tother procs % (restic)\tnotes\t"}
	for _, r := range s.Rows {
		notes := strings.Trim(r.PlugNote+"; "+r.ResticNote, "; ")
		if !withRestic {
			notes = r.PlugNote
		}
		rows = append(rows, fmt.Sprintf("%s\t%.2f\t%.2f\t%.2f\t%s\t%.0f\t%s\t%s\t", r.Name, r.OwnerCPUS, r.FriendsCPUS, r.ClientCPUS, opt(r.ResticCPUS, "%.2f"),
			r.PlugOtherPct, opt(r.ResticOtherPct, "%.0f"), notes))
	}
	if err := printTable(rows); err != nil {
		return err
	}
	if !s.RSSPerRow {
		fmt.Println("note: /proc/PID/clear_refs was not writable: plug RSS columns are cumulative peaks since the plugs started")
	}
	fmt.Printf("peak RSS over the data set: owner A %.0f MiB, friends B/C/D %.0f MiB (max)\n", s.OwnerPeakMiB, s.FriendPeakMiB)
	return nil
}

// printTable prints tab-separated rows to stdout in aligned columns.
func printTable(rows []string) error {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	for _, r := range rows {
		if _, err := io.WriteString(tw, r+"\n"); err != nil {
			return err
		}
	}
	return tw.Flush()
}

func printSummary(rep *report, withRestic bool) {
	fmt.Printf("\nmethod: %s\n", rep.Method)
	var slower []string
	ownerPeak, other, failed := 0.0, 0.0, false
	for _, s := range rep.Sets {
		ownerPeak = max(ownerPeak, s.OwnerPeakMiB)
		for _, r := range s.Rows {
			failed = failed || r.PlugErr != ""
			if r.PlugS >= 1 { // shorter rows are below the resolution of /proc/stat
				other = max(other, r.PlugOtherPct)
			}
			if r.ResticOtherPct != nil && *r.ResticS >= 1 {
				other = max(other, *r.ResticOtherPct)
			}
			if r.ResticS != nil && r.PlugErr == "" && r.PlugS > *r.ResticS {
				slower = append(slower, fmt.Sprintf("%s/%s (%.2fx)", s.Name, r.Name, r.PlugS / *r.ResticS))
			}
		}
	}
	fast := "yes"
	switch {
	case !withRestic:
		fast = "unknown (restic not installed)"
	case failed:
		fast = "unknown (some plug steps failed)"
	case len(slower) > 0:
		fast = "no; slower on " + strings.Join(slower, ", ")
	}
	under := "yes"
	if ownerPeak >= 128 {
		under = "no"
	}
	if other > 10 {
		fmt.Printf("note: other processes used up to %.0f%% of the machine during a row: those timings are noisy\n", other)
	}
	fmt.Printf("summary: plug at least as fast as restic on every row: %s; owner's daemon under 128 MiB peak RSS: %s (%.0f MiB)\n", fast, under, ownerPeak)
}
