package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// stdio is what a command may touch of the outside world besides the data
// directory and the network.
type stdio struct {
	in     io.Reader
	out    *output
	err    *output
	getenv func(string) string
}

// usageError is a mistake in the command line: exit code 2.
type usageError struct {
	msg   string
	usage string
}

func (e *usageError) Error() string { return e.msg }

func usagef(usage, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), usage: usage}
}

// command is one subcommand of plug.
type command struct {
	name  string
	usage string // after "plug "
	short string
	run   func(ctx context.Context, std stdio, args []string) error
}

var commands []*command

func init() {
	commands = []*command{
		{"init", "init [--data DIR] [--recover] [--json]", "create this plug's identity and print its 24 recovery words", cmdInit},
		{"up", "up [--data DIR] [--api HOST:PORT] [--listen MULTIADDR]... [--bootstrap MULTIADDR|none]... [--name NAME] [--lan-ui HOST:PORT] [--grace DURATION] [--public-ranges CIDR[,CIDR]] [--no-port-mapping]", "run the plug (initializes it on first run)", cmdUp},
		{"setup-code", "setup-code [--data DIR] [--json]", "show the one-time code that opens the first setup in a browser on another machine", cmdSetupCode},
		{"status", "status [--data DIR] [--json]", "show what the running plug is doing", cmdStatus},
		{"invite", "invite [--data DIR] [--png FILE] [--json] [--ttl DURATION]", "make a one-time invite code (and QR code) for a friend", cmdInvite},
		{"accept", "accept [--data DIR] [--json] CODE", "accept a friend's invite; returns once you are friends", cmdAccept},
		{"friends", "friends [--data DIR] [--json] [quota NAME|PEER SIZE | remove NAME|PEER]", "list friends, change what you give one, or remove one", cmdFriends},
		{"backup", "backup [--data DIR] [--json] PATH...", "back up files and folders to your friends; prints the snapshot ID", cmdBackup},
		{"sources", "sources [--data DIR] [--json] add|rm|ls [PATH]", "the folders the plug backs up on its own, hourly and after changes", cmdSources},
		{"redundancy", "redundancy [--data DIR] [--json] [set N|auto]", "how many friends you can lose and keep everything, and what it costs; set it", cmdRedundancy},
		{"snapshots", "snapshots [--data DIR] [--json]", "list the snapshots", cmdSnapshots},
		{"restore", "restore [--data DIR] [--json] SNAPSHOT|latest --to DIR [--path SUBPATH] [--overwrite]", "restore a snapshot under DIR", cmdRestore},
		{"verify", "verify [--data DIR] [--read-data] [--json]", "check that friends still hold your data; exit 1 when data is lost or below target", cmdVerify},
		{"repair", "repair [--data DIR] [--json]", "move the shards of friends gone too long to other friends", cmdRepair},
		{"forget", "forget [--data DIR] --keep-last N [--prune] [--json]", "drop old snapshots; --prune deletes what no snapshot uses", cmdForget},
		{"post", "post [--data DIR] [--json] [--image FILE]... [--edit ID | --delete ID] TEXT|-", "post to your friends (- reads the text from stdin); edit or delete your post", cmdPost},
		{"timeline", "timeline [--data DIR] [--json] [--friend NAME] [--source " + sourceChoices() + "] [-n N] [--before TIME]", "your posts, your friends' and what you imported, newest first", cmdTimeline},
		{"import", importUsage(), "bring your posts home from a Mastodon or Twitter/X archive, or a feed", cmdImport},
		{"search", "search [--data DIR] [--json] [--source SOURCE] [-n N] QUERY", "search posts and imported items", cmdSearch},
		{"log", "log [--data DIR] [--follow] [-n N]", "show the plug's event log", cmdLog},
	}
}

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func run(ctx context.Context, args []string, std stdio) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printHelp(std.out)
		if len(args) == 0 {
			return &usageError{msg: "no command given"}
		}
		return nil
	}
	if args[0] == "version" || args[0] == "--version" {
		std.out.println("plug", version())
		return nil
	}
	c := findCommand(args[0])
	if c == nil {
		return &usageError{msg: fmt.Sprintf("unknown command %q (run \"plug help\" for the list)", args[0])}
	}
	err := c.run(ctx, std, args[1:])
	if err == nil && std.out.err != nil {
		err = fmt.Errorf("could not write the output: %w (is the disk full, or the pipe closed?)", std.out.err)
	}
	return err
}

func printHelp(w *output) {
	w.println("plug: your personal server; backs up your files to friends' plugs.")
	w.println("\nCommands:")
	for _, c := range commands {
		w.printf("  plug %s\n      %s\n", c.usage, c.short)
	}
	w.println("\n--data defaults to $PLUG_DATA, then /var/lib/plug (the system service's plug; for root and group plug), then $XDG_DATA_HOME/plug, then ~/.local/share/plug.")
}

// flags is a flag set for one command that accepts flags anywhere among its
// arguments (plug backup DIR --json) and knows the command's usage line.
type flags struct {
	*flag.FlagSet
	cmd  *command
	data *string
}

func newFlags(name string, std stdio) *flags {
	c := findCommand(name)
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(std.err)
	f := &flags{FlagSet: fs, cmd: c}
	fs.Usage = func() {
		std.err.printf("usage: plug %s\n", c.usage)
		fs.PrintDefaults()
	}
	f.data = fs.String("data", "", "data `directory` of the plug (default $PLUG_DATA, then the service's /var/lib/plug for root and group plug, then $XDG_DATA_HOME/plug)")
	return f
}

// parse parses flags placed anywhere among the positional arguments, which it
// returns. "--" ends the flags.
func (f *flags) parse(args []string) ([]string, error) {
	var pos []string
	f.SetOutput(io.Discard)
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.SetOutput(os.Stderr)
				f.Usage()
				return nil, &usageError{msg: "help requested"}
			}
			return nil, usagef(f.cmd.usage, "%s: %v", f.cmd.name, err)
		}
		args = f.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// dataDir resolves --data: the flag, then $PLUG_DATA, then the system
// service's /var/lib/plug for root and group plug (servicedir.go), then
// $XDG_DATA_HOME/plug, then ~/.local/share/plug.
func (f *flags) dataDir(std stdio) (string, error) {
	d := *f.data
	if d == "" {
		d = std.getenv("PLUG_DATA")
	}
	if d == "" {
		var err error
		if d, err = serviceDir(f.cmd.name, thisMachine()); err != nil {
			return "", err
		}
	}
	if d == "" {
		if x := std.getenv("XDG_DATA_HOME"); x != "" {
			d = filepath.Join(x, "plug")
		}
	}
	if d == "" {
		home := std.getenv("HOME")
		if home == "" {
			return "", errors.New("no data directory: pass --data DIR or set PLUG_DATA")
		}
		d = filepath.Join(home, ".local", "share", "plug")
	}
	abs, err := filepath.Abs(d)
	if err != nil {
		return "", fmt.Errorf("data directory %s: %w", d, err)
	}
	return abs, nil
}

// noArgs fails with a usage error when positional arguments were given.
func (f *flags) noArgs(pos []string) error {
	if len(pos) > 0 {
		return usagef(f.cmd.usage, "%s: unexpected argument %q", f.cmd.name, strings.Join(pos, " "))
	}
	return nil
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// set reports whether the flag name was given on the command line.
func (f *flags) set(name string) bool {
	found := false
	f.Visit(func(fl *flag.Flag) {
		if fl.Name == name {
			found = true
		}
	})
	return found
}
