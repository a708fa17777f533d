package search

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// FuzzDecode feeds arbitrary bytes to the decoders of the index's records
// (a damaged disk can hold anything): they must fail with ErrDamaged or
// an error, never panic or read out of bounds.
func FuzzDecode(f *testing.F) {
	a := analyseDoc(Doc{ID: "p1", Text: "the first frost, then frost again", Summary: "weather", Author: "ann", Source: "plug", Tags: []string{"frost"}, Time: time.Unix(1e9, 0)})
	f.Add(a.record(7))
	for _, p := range a.postings {
		f.Add(appendEntry(binary.AppendUvarint(nil, 1), 0, 42, p.val))
	}
	f.Add(state{docs: 3, textLen: 10, summaryLen: 2, seq: 9, batch: 2}.encode())
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := decodeRecord(b, false); err == nil {
			_, _ = decodeRecord(b, true)
		}
		_, _ = decodeState(b)
		for _, text := range []bool{true, false} {
			n, rest, err := blockEntries(b)
			if err != nil {
				if !errors.Is(err, ErrDamaged) {
					t.Fatalf("blockEntries: %v, want ErrDamaged", err)
				}
				continue
			}
			var prev uint64
			for i := uint64(0); i < n && len(rest) > 0; i++ {
				e, next, err := nextEntry(rest, text, prev)
				if err != nil {
					if !errors.Is(err, ErrDamaged) {
						t.Fatalf("nextEntry: %v, want ErrDamaged", err)
					}
					break
				}
				if len(next) >= len(rest) {
					t.Fatalf("nextEntry read nothing of %d bytes", len(rest))
				}
				if pos := e.decodePositions(nil); uint64(len(pos)) != e.tf {
					t.Fatalf("entry with frequency %d has %d positions", e.tf, len(pos))
				}
				prev, rest = e.seq, next
			}
		}
	})
}

// TestPostingsRoundTrip checks the block and record encodings against
// what analyseDoc made.
func TestPostingsRoundTrip(t *testing.T) {
	a := analyseDoc(Doc{ID: "p1", Text: "frost and more frost, frost", Summary: "Frost-hardy", Author: "@Ann", Source: "Plug", Tags: []string{"#Frost", "frost", ""}})
	rec, err := decodeRecord(a.record(5), false)
	if err != nil {
		t.Fatal(err)
	}
	if rec.id != "p1" || rec.batch != 5 || rec.textLen != 3 || rec.summaryLen != 2 || len(rec.terms) != len(a.postings) {
		t.Fatalf("record: %+v, from %+v", rec, a)
	}
	var got []string
	for _, p := range a.postings {
		got = append(got, string(rune('0'+p.field))+":"+p.term)
	}
	want := []string{"1:frost", "2:frost", "2:hardi", "3:ann", "4:plug", "5:frost"}
	if len(got) != len(want) {
		t.Fatalf("postings %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("postings %v, want %v", got, want)
		}
	}
	// frost in Text: three times, at 1, 4 and 5 ("and" and "more", stop
	// words, hold 2 and 3 but do not count in the length).
	blk := appendEntry(appendEntry(binary.AppendUvarint(nil, 2), 0, 40, a.postings[0].val), 40, 47, nil)
	n, rest, err := blockEntries(blk)
	if err != nil || n != 2 {
		t.Fatalf("blockEntries: %d, %v", n, err)
	}
	e, rest, err := nextEntry(rest, true, 0)
	if err != nil || e.seq != 40 || e.tf != 3 || e.flen != 3 {
		t.Fatalf("first entry %+v, %v", e, err)
	}
	if pos := e.decodePositions(nil); len(pos) != 3 || pos[0] != 1 || pos[1] != 4 || pos[2] != 5 {
		t.Fatalf("positions %v, want [1 4 5]", pos)
	}
	if e, rest, err = nextEntry(rest, false, e.seq); err != nil || e.seq != 47 || len(rest) != 0 {
		t.Fatalf("second entry %+v, rest %d, %v", e, len(rest), err)
	}
}
