package lanname

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/plug-net/plug/integration/netlab"
)

func TestLabel(t *testing.T) {
	for _, tt := range []struct{ name, want string }{
		{"alice", "alice"},
		{"Alice's Plug", "alices-plug"},
		{"  bob_the.plug  ", "bob-the-plug"},
		{"--x--", "x"},
		{"Zoë", "zo"},
		{"", "plug"},
		{"!!!", "plug"},
		{"a very long name that goes on and on well past what one dns label can hold", "a-very-long-name-that-goes-on-and-on-well-past-what-one-dns-lab"},
	} {
		if got := Label(tt.name); got != tt.want || len(got) > 63 {
			t.Errorf("Label(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestAnswersOnTheLAN: a plug on one machine of a home network answers for
// NAME.local; a laptop on the same network resolves it to the plug's
// address over multicast DNS, as a browser's resolver does. Renamed, the
// plug answers to the new name and still to the old one.
func TestAnswersOnTheLAN(t *testing.T) {
	lab := netlab.New(t)
	home := lab.AddHome("home", netlab.HomeOptions{})
	board, laptop := home.AddHost("board"), home.AddHost("laptop")

	var r *Responder
	if err := board.Do(func() (err error) { r, err = Start("Alice's plug"); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	resolve := func(name string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		var err error
		if derr := laptop.Do(func() error {
			got, rerr := Resolve(ctx, name)
			if rerr == nil && got != board.Addr() {
				t.Errorf("%s resolved to %s, want the board's %s", name, got, board.Addr())
			}
			err = rerr
			return nil
		}); derr != nil {
			t.Fatal(derr)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	resolve("alices-plug.local")

	if err := board.Do(func() error { return r.Add("kitchen") }); err != nil {
		t.Fatal(err)
	}
	if got := r.Names(); len(got) != 2 || got[0] != "kitchen.local" || got[1] != "alices-plug.local" {
		t.Fatalf("names after the rename: %v", got)
	}
	resolve("kitchen.local")
	resolve("alices-plug.local")

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if err := laptop.Do(func() error {
		if a, err := Resolve(ctx, "nobody.local"); err == nil {
			t.Errorf("nobody.local resolved to %s", a)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestAnswersAfterMovingHouse: the board is carried to another home (its
// interface is replaced, with a new address); within the responder's watch
// interval a laptop there resolves the plug's name to its new address. The
// responder runs as its own process on the board (this test binary again),
// as the plug does: its watch looks at the interfaces of its namespace.
func TestAnswersAfterMovingHouse(t *testing.T) {
	lab := netlab.New(t)
	first, second := lab.AddHome("first", netlab.HomeOptions{}), lab.AddHome("second", netlab.HomeOptions{})
	board, laptop := first.AddHost("board"), second.AddHost("laptop")
	cmd := board.Command(os.Args[0], "-test.run=^TestResponderProcess$")
	cmd.Env = append(os.Environ(), "LANNAME_RESPOND=board")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = in.Close() // the responder ends when its stdin does
		if err := cmd.Wait(); err != nil {
			t.Errorf("the responder process: %v", err)
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "answering" {
		t.Fatalf("the responder process said %q, %v", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }() // the rest of its output

	board.Move(second)
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	if err := laptop.Do(func() error {
		got, err := Resolve(ctx, "board.local")
		if err == nil && got != board.Addr() {
			t.Errorf("board.local resolved to %s, want the board's new %s", got, board.Addr())
		}
		return err
	}); err != nil {
		t.Fatalf("after the move: %v", err)
	}
}

// TestResponderProcess is the responder of TestAnswersAfterMovingHouse,
// run in the board's namespace; it does nothing in a normal test run.
func TestResponderProcess(t *testing.T) {
	name := os.Getenv("LANNAME_RESPOND")
	if name == "" {
		t.Skip("only run by TestAnswersAfterMovingHouse, as its own process")
	}
	watchEvery = 200 * time.Millisecond
	r, err := Start(name)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("answering")
	_, _ = io.Copy(io.Discard, os.Stdin) // until the test closes it
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}
