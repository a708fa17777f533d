package lanname

import (
	"context"
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
