package store

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/plug-net/plug/store/kv"
)

func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	rand.NewChaCha8(s).Read(b)
	return b
}

func openKV(t testing.TB) *kv.DB {
	t.Helper()
	db, err := kv.Open(t.TempDir(), kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mustOK(t, db.Close()) })
	return db
}

// mustOK fails the test at once on err: for the steps that set a test up
// or tear it down, which must work for the test to mean anything.
func mustOK(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
