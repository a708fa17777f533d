package headrec

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/plug-net/plug/crypto/cryptotest"
)

func TestSealOpen(t *testing.T) {
	k := cryptotest.NewKeys(t)
	when := time.Unix(1700000000, 123)
	env, err := Seal(k.Identity(), k.PeerID(), 7, when, []byte("catalog"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := Open(env)
	if err != nil {
		t.Fatal(err)
	}
	if h.Owner != k.PeerID() || h.Version != 7 || !h.Time.Equal(when) || string(h.Ciphertext) != "catalog" {
		t.Fatalf("opened %+v", h)
	}
	for i := range env {
		bad := bytes.Clone(env)
		bad[i] ^= 1
		if _, err := Open(bad); !errors.Is(err, ErrBad) {
			t.Fatalf("byte %d flipped: %v, want ErrBad", i, err)
		}
	}
	if _, err := Open(env[:len(env)-1]); !errors.Is(err, ErrBad) {
		t.Fatalf("truncated: %v, want ErrBad", err)
	}
	if _, err := Seal(k.Identity(), k.PeerID(), 1, when, make([]byte, MaxCiphertext+1)); err == nil {
		t.Fatal("sealed a catalog larger than MaxCiphertext")
	}
}

// FuzzOpen checks that no envelope panics Open and that what it accepts is
// signed by the owner it names.
func FuzzOpen(f *testing.F) {
	k := cryptotest.NewKeys(f)
	env, err := Seal(k.Identity(), k.PeerID(), 3, time.Unix(1, 0), []byte("x"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(env)
	f.Add([]byte("PLHD"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Open(b)
		if err != nil {
			if !errors.Is(err, ErrBad) {
				t.Fatalf("Open: %v, want ErrBad", err)
			}
			return
		}
		if h.Owner == k.PeerID() && !bytes.Equal(b, env) {
			t.Fatalf("Open accepted a changed envelope as signed by the owner")
		}
	})
}
