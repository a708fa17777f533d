package main

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/plug-net/plug/httpui"
)

func cmdStatus(ctx context.Context, std stdio, args []string) error {
	f := newFlags("status", std)
	jsonOut := f.Bool("json", false, "print the status as JSON")
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
	var st httpui.Status
	if err := c.do(ctx, "GET", "/api/v1/status", nil, nil, &st); err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(std.out, st)
	}
	w := std.out
	w.printf("plug %s (%s), up %s, pid %d\n", st.Name, st.Version, time.Duration(st.UptimeS)*time.Second, st.PID)
	w.printf("peer ID:      %s\n", st.PeerID)
	reach := st.ReachText
	if reach == "" {
		reach = st.Reachability
	}
	w.printf("reachability: %s\n", reach)
	if st.DHT != "" {
		w.printf("DHT:          %s\n", st.DHT)
	}
	w.printf("friends:      %d\n", st.Friends)
	switch {
	case st.LastBackupAgeS < 0:
		w.printf("last backup:  never (%d snapshots)\n", st.Snapshots)
	default:
		w.printf("last backup:  %s ago (%d snapshots)\n", time.Duration(st.LastBackupAgeS)*time.Second, st.Snapshots)
	}
	if len(st.Sources) > 0 {
		w.printf("sources:      %s (backed up hourly and after changes)\n", joinPaths(st.Sources))
	}
	if st.Job != "" {
		w.printf("running:      %s\n", st.Job)
	}
	w.printf("data:         %s\n", st.DataDir)
	if st.LANUI != "" {
		w.printf("web UI:       %s (certificate SHA-256 %s)\n", st.LANUI, st.UICertSHA256)
	}
	w.println("listening on:")
	for _, a := range st.ListenAddrs {
		w.printf("  %s\n", a)
	}
	return nil
}

func cmdLog(ctx context.Context, std stdio, args []string) error {
	f := newFlags("log", std)
	follow := f.Bool("follow", false, "keep printing new events as they happen (Ctrl-C stops)")
	n := f.Int("n", 50, "show the last `N` events")
	jsonOut := f.Bool("json", false, "print events as JSON lines")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.noArgs(pos); err != nil {
		return err
	}
	if *n < 0 || *n > 10000 {
		return usagef(f.cmd.usage, "log: -n must be from 0 to 10000")
	}
	c, err := f.client(std)
	if err != nil {
		return err
	}
	var events []httpui.EventJSON
	if *n > 0 {
		if err := c.do(ctx, "GET", "/api/v1/events", url.Values{"limit": {strconv.Itoa(*n)}}, nil, &events); err != nil {
			return err
		}
	}
	var last uint64
	print := func(es []httpui.EventJSON) {
		for _, e := range es {
			if *jsonOut {
				printJSONLine(std, e)
			} else {
				std.out.println(formatEvent(e))
			}
			last = e.Seq
		}
	}
	print(events)
	if !*follow {
		return nil
	}
	if len(events) == 0 {
		// Start after the newest event, whatever -n said.
		var newest []httpui.EventJSON
		if err := c.do(ctx, "GET", "/api/v1/events", url.Values{"limit": {"1"}}, nil, &newest); err != nil {
			return err
		}
		if len(newest) > 0 {
			last = newest[0].Seq
		}
	}
	for {
		var es []httpui.EventJSON
		q := url.Values{"after": {strconv.FormatUint(last, 10)}, "wait": {"30s"}, "limit": {"1000"}}
		if err := c.do(ctx, "GET", "/api/v1/events", q, nil, &es); err != nil {
			if ctx.Err() != nil {
				return nil // Ctrl-C ends --follow normally
			}
			return err
		}
		print(es)
	}
}

func printJSONLine(std stdio, v any) {
	b, err := jsonMarshal(v)
	if err != nil {
		std.err.printf("plug: cannot write an event as JSON: %v\n", err)
		return
	}
	std.out.print(string(append(b, '\n')))
}

// formatEvent renders an event on one line for a person.
func formatEvent(e httpui.EventJSON) string {
	s := e.Time.Local().Format("2006-01-02 15:04:05") + " " + fmt.Sprintf("%-5s", e.Level)
	if e.Component != "" {
		s += " " + e.Component + ":"
	}
	s += " " + e.Message
	for _, k := range sortedKeys(e.Attrs) {
		s += " " + k + "=" + quoteIfNeeded(e.Attrs[k])
	}
	return s
}

// cmdSetupCode prints the one-time setup code of a plug that has no
// password yet (a new one if the last was used).
func cmdSetupCode(ctx context.Context, std stdio, args []string) error {
	f := newFlags("setup-code", std)
	jsonOut := f.Bool("json", false, "print {\"code\": ...} as JSON")
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
	var out struct {
		Code string `json:"code"`
	}
	if err := c.do(ctx, "POST", "/api/v1/setup/code", nil, nil, &out); err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(std.out, out)
	}
	std.out.println(out.Code)
	var st httpui.Status
	if err := c.do(ctx, "GET", "/api/v1/status", nil, nil, &st); err == nil && st.LANUI != "" {
		std.err.printf("Open %s in a browser on this network and give this code; it works once.\n", st.LANUI)
		std.err.printf("The browser does not know the plug's certificate: check that it shows SHA-256 %s.\n", st.UICertSHA256)
	}
	return nil
}
