// Command plug runs a plug, the personal server that backs up its owner's
// files to friends' plugs, and talks to a running one. See DESIGN.md for the
// command-line contract and README.md for a tour.
package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], stdio{in: os.Stdin, out: newOutput(os.Stdout), err: newOutput(os.Stderr), getenv: os.Getenv})
	stop()
	os.Exit(exitCode(err, newOutput(os.Stderr)))
}

// exitCode maps an error to the contract's exit codes (0 success, 1 the
// operation failed, 2 bad usage) and prints it for a person.
func exitCode(err error, stderr *output) int {
	if err == nil {
		return 0
	}
	var ue *usageError
	if errors.As(err, &ue) {
		stderr.printf("plug: %v\n", ue.msg)
		if ue.usage != "" {
			stderr.printf("usage: %s\n", ue.usage)
		}
		return 2
	}
	if errors.Is(err, errSilent) {
		return 1
	}
	stderr.printf("plug: %v\n", err)
	return 1
}

// errSilent fails a command whose message has already been printed.
var errSilent = errors.New("failed")
