package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/plug-net/plug/chunker"
	"github.com/plug-net/plug/crypto"
	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/kv"
	"github.com/plug-net/plug/store/packer"
	"github.com/plug-net/plug/store/target"
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

func memTargets(n int) ([]target.ShardTarget, []*target.MemTarget) {
	var ts []target.ShardTarget
	var ms []*target.MemTarget
	for i := range n {
		m := target.NewMemTarget(fmt.Sprintf("friend-%d", i))
		ts = append(ts, m)
		ms = append(ms, m)
	}
	return ts, ms
}

// chunkInto chunks r and adds every chunk to w as a data blob, returning the
// chunk IDs in order.
func chunkInto(t testing.TB, w *packer.Writer, keyer *chunker.IDKeyer, r io.Reader) []data.ID {
	t.Helper()
	c, err := chunker.New(r, chunker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []data.ID
	for {
		ch, err := c.Next()
		if err == io.EOF {
			return ids
		}
		if err != nil {
			t.Fatal(err)
		}
		id := data.ID(keyer.ID(ch.Data))
		if _, err := w.Add(context.Background(), data.DataBlob, id, ch.Data); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
}
