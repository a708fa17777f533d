package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"

	"github.com/plug-net/plug/httpui"
	"github.com/plug-net/plug/store"
	"github.com/plug-net/plug/store/archiver"
	"github.com/plug-net/plug/store/check"
	"github.com/plug-net/plug/store/repair"
	"github.com/plug-net/plug/store/restorer"
)

// streamLine is one line of a streamed answer.
type streamLine struct {
	Progress json.RawMessage `json:"progress"`
	Warning  *struct {
		Path  string `json:"path"`
		Error string `json:"error"`
	} `json:"warning"`
	Result json.RawMessage `json:"result"`
	Error  *string         `json:"error"`
}

// stream posts body and reads the streamed answer: onProgress for each
// progress line (raw JSON), warnings to stderr, the result into out.
func (c *client) stream(ctx context.Context, path string, body any, std stdio, onProgress func(json.RawMessage), out any) error {
	resp, err := c.send(ctx, "POST", path, url.Values{"stream": {"1"}}, body)
	if err != nil {
		return err
	}
	defer closeBody(resp.Body)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var l streamLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("bad answer from the plug: %w", err)
		}
		switch {
		case l.Error != nil:
			return errors.New(*l.Error)
		case l.Result != nil:
			return json.Unmarshal(l.Result, out)
		case l.Warning != nil:
			std.err.printf("warning: skipped %s: %s\n", l.Warning.Path, l.Warning.Error)
		case l.Progress != nil && onProgress != nil:
			onProgress(l.Progress)
		}
	}
	if err := sc.Err(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("the plug stopped answering: %w", err)
	}
	return errors.New("the plug ended the answer without a result")
}

// bar draws progress on a terminal, or JSON lines with --json.
type bar struct {
	std   stdio
	json  bool
	bytes bool
	pb    *progressbar.ProgressBar
	desc  string
}

func newBar(std stdio, jsonOut bool, desc string) *bar {
	return &bar{std: std, json: jsonOut, desc: desc, bytes: true}
}

func (b *bar) update(raw json.RawMessage, done, total int64, detail string) {
	if b.json {
		b.std.err.printf("%s\n", raw)
		return
	}
	if !isTerminal(b.std.err) {
		return
	}
	if b.pb == nil || (total > 0 && b.pb.GetMax64() != total) {
		if b.pb == nil {
			opts := []progressbar.Option{progressbar.OptionShowBytes(b.bytes)}
			if !b.bytes {
				opts = append(opts, progressbar.OptionShowCount())
			}
			b.pb = progressbar.NewOptions64(max(total, 1), append(opts,
				progressbar.OptionSetWriter(b.std.err),
				progressbar.OptionUseIECUnits(true),
				progressbar.OptionSetWidth(30),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionShowElapsedTimeOnFinish(),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionFullWidth(),
				progressbar.OptionSetDescription(b.desc),
			)...)
		} else {
			b.pb.ChangeMax64(max(total, 1))
		}
	}
	b.pb.Describe(b.desc + " " + detail)
	_ = b.pb.Set64(done) // a bar that cannot draw is no failure: the result tells
}

func (b *bar) finish() {
	if b.pb != nil {
		_ = b.pb.Finish() // as in update
		b.std.err.println()
	}
}

func cmdBackup(ctx context.Context, std stdio, args []string) error {
	f := newFlags("backup", std)
	jsonOut := f.Bool("json", false, "print the result as JSON (progress as JSON lines on stderr)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef(f.cmd.usage, "backup: give the files or folders to back up")
	}
	paths, err := absPaths(pos)
	if err != nil {
		return err
	}
	c, err := f.client(std)
	if err != nil {
		return err
	}
	b := newBar(std, *jsonOut, "backing up")
	var res httpui.BackupResult
	err = c.stream(ctx, "/api/v1/backups", map[string]any{"paths": paths}, std, func(raw json.RawMessage) {
		var p archiver.Progress
		if json.Unmarshal(raw, &p) != nil {
			return // not progress this version knows: the bar waits for the next
		}
		b.update(raw, p.Bytes, p.BytesTotal, fmt.Sprintf("(%d/%d files)", p.Files, p.FilesTotal))
	}, &res)
	b.finish()
	if err != nil {
		return fmt.Errorf("backup failed: %w", err)
	}
	if *jsonOut {
		return printJSON(std.out, res)
	}
	std.err.printf("Backed up %d files, %s (%s new) in %.1fs", res.Files, humanSize(res.Bytes), humanSize(res.NewBytes), res.DurationS)
	if res.Errors > 0 {
		std.err.printf("; %d could not be read (see above)", res.Errors)
	}
	std.err.println(".")
	std.out.println(res.SnapshotID)
	return nil
}

func cmdSnapshots(ctx context.Context, std stdio, args []string) error {
	f := newFlags("snapshots", std)
	jsonOut := f.Bool("json", false, "print the snapshots as JSON")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.noArgs(pos); err != nil {
		return err
	}
	c, err := f.client(std)
	if err != nil {
		return err
	}
	var snaps []httpui.SnapshotInfo
	if err := c.do(ctx, "GET", "/api/v1/snapshots", nil, nil, &snaps); err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(std.out, snaps)
	}
	if len(snaps) == 0 {
		std.out.println("No snapshots yet. Back up with: plug backup PATH")
		return nil
	}
	tw := std.out.table()
	tw.println("ID\tTIME\tFILES\tSIZE\tPATHS")
	for _, s := range snaps {
		tw.printf("%s\t%s\t%d\t%s\t%s\n", shortID(s.ID), s.Time.Local().Format("2006-01-02 15:04:05"), s.Files, humanSize(s.Bytes), joinPaths(s.Paths))
	}
	tw.flush()
	return nil
}

func cmdRestore(ctx context.Context, std stdio, args []string) error {
	f := newFlags("restore", std)
	to := f.String("to", "", "`DIR` to restore into: each path goes to DIR/<its absolute original path>")
	sub := f.String("path", "", "restore only this original `SUBPATH` (a file or folder in the snapshot)")
	overwrite := f.Bool("overwrite", false, "replace files that exist in DIR (without it, nothing is replaced)")
	jsonOut := f.Bool("json", false, "print the result as JSON")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *to == "" {
		return usagef(f.cmd.usage, "restore: give one snapshot (an ID or latest) and --to DIR")
	}
	dest, err := absPaths([]string{*to})
	if err != nil {
		return err
	}
	subpath := *sub
	if subpath != "" {
		p, err := absPaths([]string{subpath})
		if err != nil {
			return err
		}
		subpath = p[0]
	}
	c, err := f.client(std)
	if err != nil {
		return err
	}
	b := newBar(std, *jsonOut, "restoring")
	var st restorer.Stats
	req := httpui.RestoreRequest{Snapshot: pos[0], To: dest[0], Path: subpath, Overwrite: *overwrite}
	err = c.stream(ctx, "/api/v1/restore", req, std, func(raw json.RawMessage) {
		var p restorer.Progress
		if json.Unmarshal(raw, &p) != nil {
			return // not progress this version knows: the bar waits for the next
		}
		b.update(raw, p.Bytes, p.BytesTotal, fmt.Sprintf("(%d/%d files)", p.Files, p.FilesTotal))
	}, &st)
	b.finish()
	if err != nil {
		return fmt.Errorf("restore failed: %w", err)
	}
	for _, bs := range st.BadShards {
		std.err.printf("note: friend %s returned a %s shard of pack %s; other friends' shards were used\n", bs.Holder, bs.Problem, bs.Pack.Short())
	}
	if *jsonOut {
		return printJSON(std.out, st)
	}
	std.out.printf("Restored %d files, %d folders, %d symlinks (%s) into %s\n", st.Files, st.Dirs, st.Symlinks, humanSize(st.Bytes), dest[0])
	return nil
}

func cmdVerify(ctx context.Context, std stdio, args []string) error {
	f := newFlags("verify", std)
	readData := f.Bool("read-data", false, "download every shard and check it (slow), instead of spot-checking proofs of storage")
	jsonOut := f.Bool("json", false, "print the report as JSON")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.noArgs(pos); err != nil {
		return err
	}
	c, err := f.client(std)
	if err != nil {
		return err
	}
	b := newBar(std, *jsonOut, "checking shards")
	b.bytes = false
	var rep check.Report
	err = c.stream(ctx, "/api/v1/verify", map[string]bool{"read_data": *readData}, std, func(raw json.RawMessage) {
		var p struct{ Done, Total int64 }
		if json.Unmarshal(raw, &p) != nil {
			return // not progress this version knows: the bar waits for the next
		}
		b.update(raw, p.Done, p.Total, "")
	}, &rep)
	b.finish()
	if err != nil {
		return fmt.Errorf("verify failed: %w", err)
	}
	if *jsonOut {
		if err := printJSON(std.out, rep); err != nil {
			return err
		}
	} else {
		tw := std.out.table()
		tw.println("FRIEND\tSHARDS\tCHECKED\tPROVED\tMISSING\tCORRUPT\tSTATE")
		for _, fr := range rep.Friends {
			state := "ok"
			if fr.Offline {
				state = "unreachable"
				if fr.Error != "" {
					state += ": " + fr.Error
				}
			} else if fr.Missing+fr.Corrupt > 0 {
				state = "LOSING DATA"
			}
			name := fr.Name
			if name == "" {
				name = fr.PeerID
			}
			tw.printf("%s\t%d\t%d\t%d\t%d\t%d\t%s\n", name, fr.Shards, fr.Checked, fr.Proved, fr.Missing, fr.Corrupt, state)
		}
		tw.flush()
		switch {
		case len(rep.LostPacks) > 0:
			std.out.printf("DATA LOST: %d of %d packs have fewer intact shards than they need.\n", len(rep.LostPacks), rep.Packs)
		case rep.CanLose >= rep.Target:
			std.out.printf("All good: you can lose %d friend(s) and keep everything.\n", rep.CanLose)
		default:
			std.out.printf("Below target: you can lose %d friend(s), you aim for %d. Run plug repair (or pair with more friends).\n", rep.CanLose, rep.Target)
		}
	}
	if !rep.OK {
		return errSilent
	}
	return nil
}

func cmdRepair(ctx context.Context, std stdio, args []string) error {
	f := newFlags("repair", std)
	jsonOut := f.Bool("json", false, "print the report as JSON")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.noArgs(pos); err != nil {
		return err
	}
	c, err := f.client(std)
	if err != nil {
		return err
	}
	var res struct {
		Report repair.Report `json:"report"`
		Error  string        `json:"error"`
	}
	if err := c.do(ctx, "POST", "/api/v1/repair", nil, map[string]any{}, &res); err != nil {
		return err
	}
	if *jsonOut {
		if err := printJSON(std.out, res.Report); err != nil {
			return err
		}
	} else if len(res.Report.Replaced) == 0 {
		std.out.println("Nothing to repair: every friend holding data is online and passed its last check.")
	} else {
		std.out.printf("Replaced %d friend(s): %d shards rebuilt on other friends, %d packs cut again over the friends left.\n", len(res.Report.Replaced), res.Report.Moved, res.Report.Repacked)
	}
	if res.Error != "" {
		return errors.New(res.Error)
	}
	return nil
}

func cmdForget(ctx context.Context, std stdio, args []string) error {
	f := newFlags("forget", std)
	keep := f.Int("keep-last", 0, "keep the last `N` snapshots")
	prune := f.Bool("prune", false, "also delete, on every friend, the packs no snapshot uses")
	jsonOut := f.Bool("json", false, "print the result as JSON")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.noArgs(pos); err != nil {
		return err
	}
	if *keep < 1 {
		return usagef(f.cmd.usage, "forget: --keep-last N with N at least 1")
	}
	c, err := f.client(std)
	if err != nil {
		return err
	}
	var rep store.ForgetReport
	if err := c.do(ctx, "POST", "/api/v1/forget", nil, map[string]any{"keep_last": *keep, "prune": *prune}, &rep); err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(std.out, rep)
	}
	std.out.printf("Kept %d snapshots, forgot %d.", rep.Kept, rep.Removed)
	if *prune {
		std.out.printf(" Deleted %d packs (%s at friends).", rep.PacksDeleted, humanSize(rep.BytesFreed))
	}
	std.out.println()
	return nil
}

func cmdSources(ctx context.Context, std stdio, args []string) error {
	f := newFlags("sources", std)
	jsonOut := f.Bool("json", false, "print the sources as JSON")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		pos = []string{"ls"}
	}
	c, err := f.client(std)
	if err != nil {
		return err
	}
	var src []string
	switch pos[0] {
	case "ls":
		if len(pos) != 1 {
			return usagef(f.cmd.usage, "sources ls takes no path")
		}
		err = c.do(ctx, "GET", "/api/v1/sources", nil, nil, &src)
	case "add", "rm":
		if len(pos) != 2 {
			return usagef(f.cmd.usage, "sources %s: give one folder", pos[0])
		}
		p, perr := absPaths(pos[1:])
		if perr != nil {
			return perr
		}
		method := "POST"
		if pos[0] == "rm" {
			method = "DELETE"
		}
		err = c.do(ctx, method, "/api/v1/sources", nil, map[string]string{"path": p[0]}, &src)
	default:
		return usagef(f.cmd.usage, "sources: unknown subcommand %q (add, rm or ls)", pos[0])
	}
	if err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(std.out, src)
	}
	if len(src) == 0 {
		std.out.println("No backup sources. Add a folder with: plug sources add PATH")
	}
	for _, s := range src {
		std.out.println(s)
	}
	return nil
}

// absPaths makes command-line paths absolute.
func absPaths(paths []string) ([]string, error) {
	out := make([]string, len(paths))
	for i, p := range paths {
		a, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		out[i] = a
	}
	return out, nil
}

// humanSize renders a byte count for people (binary units).
func humanSize(n int64) string { return humanize.IBytes(uint64(max(n, 0))) }

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func joinPaths(ps []string) string { return strings.Join(ps, " ") }

func cmdRedundancy(ctx context.Context, std stdio, args []string) error {
	f := newFlags("redundancy", std)
	jsonOut := f.Bool("json", false, `print {"target", "auto", "k", "m", "friends", "overhead"} as JSON`)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	c, err := f.client(std)
	if err != nil {
		return err
	}
	var red store.Redundancy
	switch {
	case len(pos) == 0:
		err = c.do(ctx, "GET", "/api/v1/redundancy", nil, nil, &red)
	case pos[0] == "set" && len(pos) == 2:
		var target any = "auto"
		if pos[1] != "auto" {
			n, perr := strconv.Atoi(pos[1])
			if perr != nil || n < 1 {
				return usagef(f.cmd.usage, "redundancy set: give how many friends you can lose (1, 2, …) or auto, not %q", pos[1])
			}
			target = n
		}
		err = c.do(ctx, "PUT", "/api/v1/redundancy", nil, map[string]any{"target": target}, &red)
	default:
		return usagef(f.cmd.usage, "redundancy: show it, or set N|auto")
	}
	if err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(std.out, red)
	}
	std.out.printf("You can lose %d %s and keep everything (friends in one house count as one).\n", red.Target, plural(red.Target, "friend", "friends"))
	if red.K > 0 {
		std.out.printf("Each pack: %d data + %d spare shards over %d friends; your data takes %.2f× its size on friends' disks.\n", red.K, red.M, red.Friends, red.Overhead)
	} else {
		std.out.printf("Your %d %s cannot meet it yet: pair with %d more (plug invite).\n", red.Friends, plural(red.Friends, "friend", "friends"), red.M+1-red.Friends)
	}
	if red.Pending > 0 {
		std.out.printf("Re-coding the stored data to this shape: %d %s left (in the background).\n", red.Pending, plural(red.Pending, "pack", "packs"))
	}
	if red.Auto {
		std.out.println("The target follows your friends (at most 1.5× the size); choose one with: plug redundancy set N")
	} else {
		std.out.println("You chose this target; let the plug choose with: plug redundancy set auto")
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
