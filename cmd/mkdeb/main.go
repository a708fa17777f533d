// Command mkdeb builds the Debian packages of plug: it cross-compiles
// ./cmd/plug for amd64, arm64 and armhf (static, stripped, -trimpath, with
// the package's version linked in as the one "plug version" prints),
// checks each binary (its version, and its size: at most 30 MB for a board,
// or -max-size) and
// packs it with the systemd service, the maintainer scripts that
// make the system user plug and its data directory /var/lib/plug, the man
// page and the documentation, with nfpm used as a library. It is a build
// tool: the plug itself never imports it, and it imports nothing of the
// plug's.
//
//	go run ./cmd/mkdeb [-out DIR] [-arch amd64,arm64,armhf] [-version VERSION] [-max-size SIZE]
//
// writes DIR/plug_VERSION_ARCH.deb for each architecture (DIR defaults to
// ./dist). The version comes from git (see debianVersion) unless -version
// gives one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/dustin/go-humanize"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err == nil {
		return
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		fmt.Fprintln(os.Stderr, "usage: go run ./cmd/mkdeb [-out DIR] [-arch amd64,arm64,armhf] [-version VERSION] [-max-size SIZE]")
		os.Exit(2)
	}
	if !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
}

// usageError is a mistake on the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// options are mkdeb's command line.
type options struct {
	out     string
	arches  []arch
	version string // "" reads it from git
	maxSize int64  // bytes a stripped plug may have; 0: each architecture's own
}

func parseArgs(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("mkdeb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "dist", "`DIR` to write the packages to (made if missing)")
	archList := fs.String("arch", allArches(), "comma-separated Debian `ARCHITECTURES` to build")
	version := fs.String("version", "", "Debian `VERSION` of the packages (default: from git describe)")
	maxSize := fs.String("max-size", "", "largest stripped plug binary to pack, in bytes or with a unit (`SIZE`: 30MB; default 30 MB for arm64 and armhf, 34 MB for amd64)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return options{}, err
		}
		return options{}, &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return options{}, &usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if *out == "" {
		return options{}, &usageError{"-out is empty: give the folder to write the packages to"}
	}
	arches, err := parseArches(*archList)
	if err != nil {
		return options{}, &usageError{err.Error()}
	}
	if *version != "" {
		if err := checkVersion(*version); err != nil {
			return options{}, &usageError{fmt.Sprintf("-version %q: %v", *version, err)}
		}
	}
	var limit uint64
	if *maxSize != "" {
		limit, err = humanize.ParseBytes(*maxSize)
		if err != nil || limit == 0 || limit > 1<<40 {
			return options{}, &usageError{fmt.Sprintf("-max-size %q: not a size (such as 30MB or 30000000)", *maxSize)}
		}
	}
	return options{out: *out, arches: arches, version: *version, maxSize: int64(limit)}, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opt, err := parseArgs(args, stderr)
	if err != nil {
		return err
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	warn := &reporter{w: stderr}
	src, err := readSource(ctx, root)
	if err != nil {
		warn.printf("mkdeb: %v\n", err)
	}
	if opt.version == "" {
		opt.version = src.version
		if err != nil {
			warn.printf("mkdeb: using the version %s; pass -version to choose one\n", opt.version)
		}
	}
	if warn.err != nil {
		return fmt.Errorf("write to stderr: %w", warn.err)
	}
	b := &builder{root: root, out: opt.out, version: opt.version, maxSize: opt.maxSize, src: src, log: &reporter{w: stdout}}
	return b.build(ctx, opt.arches)
}
