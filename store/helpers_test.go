package store

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/plug-net/plug/crypto"
	"github.com/plug-net/plug/store/kv"
)

func testKeys(t testing.TB) *crypto.Keys {
	t.Helper()
	p, err := crypto.ParsePhrase("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art")
	if err != nil {
		t.Fatal(err)
	}
	k, err := crypto.DeriveKeys(p)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

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
	t.Cleanup(func() { db.Close() })
	return db
}
