package catalog

import (
	"bytes"
	"reflect"
	"slices"
	"testing"

	"github.com/plug-net/plug/store/data"
	"github.com/plug-net/plug/store/index"
	"github.com/plug-net/plug/store/kv"
	"github.com/plug-net/plug/store/pack"
)

func openCatalog(t *testing.T) (*Catalog, *kv.DB) {
	t.Helper()
	db, err := kv.Open(t.TempDir(), kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return NewCatalog(db), db
}

// addPacks records n packs of sizes[i%len(sizes)] data blobs each, plus one
// pack of index blobs only, and returns the data packs as the index would
// describe them, in pack-ID order.
func addPacks(t *testing.T, c *Catalog, n int, sizes ...int) []index.Packed {
	t.Helper()
	var want []index.Packed
	for i := range n {
		pe := index.Packed{Pack: data.ID{byte(i >> 8), byte(i), 0xaa}}
		for j := range sizes[i%len(sizes)] {
			pe.Entries = append(pe.Entries, pack.Entry{Type: data.DataBlob, ID: data.ID{byte(i >> 8), byte(i), byte(j >> 8), byte(j)}, Offset: uint32(j * 10), Length: 10, RawLength: 10})
		}
		if err := c.AddPack(PackRecord{ID: pe.Pack}, pe.Entries); err != nil {
			t.Fatal(err)
		}
		want = append(want, pe)
	}
	idx := []pack.Entry{{Type: data.IndexBlob, ID: data.ID{0xff, 1}, Length: 5, RawLength: 5}}
	if err := c.AddPack(PackRecord{ID: data.ID{0xff, 0xff}}, idx); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(want, func(a, b index.Packed) int { return bytes.Compare(a.Pack[:], b.Pack[:]) })
	return want
}

func decodeAll(t *testing.T, recs [][]byte) []index.Packed {
	t.Helper()
	var got []index.Packed
	for _, b := range recs {
		pes, err := index.DecodePacked(b)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, pes...)
	}
	return got
}

// TestEachPending: the pending packs come back whole and in order over
// several pages, and nothing else (the index blobs' pack is never pending).
func TestEachPending(t *testing.T) {
	c, _ := openCatalog(t)
	// 60 packs of up to 1,000 entries: about 2.2 MB, three pages.
	want := addPacks(t, c, 60, 1000, 7, 300)
	var recs [][]byte
	err := c.EachPending(func(id data.ID, packed []byte) error {
		if !bytes.Equal(id[:], packed[:32]) {
			t.Errorf("pack %s given with the record of %x", id.Short(), packed[:32])
		}
		recs = append(recs, bytes.Clone(packed))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeAll(t, recs); !reflect.DeepEqual(got, want) {
		t.Fatalf("EachPending gave %d packs, want the %d pending", len(got), len(want))
	}
	ids, err := c.PendingPacks()
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(want) {
		t.Fatalf("PendingPacks: %d, want %d", len(ids), len(want))
	}
	if err := c.ClearPending(ids[:10]); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := c.EachPending(func(data.ID, []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != len(want)-10 {
		t.Fatalf("after clearing 10, %d packs pending, want %d", n, len(want)-10)
	}
}

// TestEachPacked: a budget far smaller than the index still gives every
// pack whole, once, in pack-ID order, index blobs left out; a pack larger
// than the budget comes whole too.
func TestEachPacked(t *testing.T) {
	c, _ := openCatalog(t)
	want := addPacks(t, c, 40, 50, 1, 400, 3)
	for _, budget := range []int{1, 5000, 1 << 30} {
		var recs [][]byte
		if err := c.EachPacked(budget, func(packed []byte) error {
			recs = append(recs, bytes.Clone(packed))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if got := decodeAll(t, recs); !reflect.DeepEqual(got, want) {
			t.Fatalf("budget %d: EachPacked gave %d packs, want %d", budget, len(got), len(want))
		}
	}
}
