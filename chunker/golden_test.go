package chunker

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.json")

// goldenCase is one fixed input whose chunks are pinned in
// testdata/golden.json: a change to the boundaries or the IDs breaks every
// existing backup's deduplication, so it must be deliberate.
type goldenCase struct {
	Name   string        `json:"name"`
	Seed   uint64        `json:"seed"`
	Size   int           `json:"size"`
	Key    string        `json:"key"` // hex; used for the gear table and the IDs
	Min    int           `json:"min"`
	Avg    int           `json:"avg"`
	Max    int           `json:"max"`
	Gear   []string      `json:"gear_first"` // hex of the first gear entries
	Chunks []goldenChunk `json:"chunks"`
}

type goldenChunk struct {
	Offset int64 `json:"offset"`
	Length int   `json:"length"`
	ID     ID    `json:"id"`
}

// goldenInputs are the cases, without their results.
var goldenInputs = []goldenCase{
	{Name: "default", Seed: 1, Size: 24 << 20, Key: hex.EncodeToString(bytes.Repeat([]byte{0x5a}, 32))},
	{Name: "small", Seed: 2, Size: 1 << 20, Key: hex.EncodeToString(bytes.Repeat([]byte{0x01}, 32)), Min: 2 << 10, Avg: 8 << 10, Max: 32 << 10},
	{Name: "zero key", Seed: 3, Size: 8 << 20},
}

func (gc goldenCase) compute(t *testing.T) goldenCase {
	t.Helper()
	var key [32]byte
	if gc.Key != "" {
		if _, err := hex.Decode(key[:], []byte(gc.Key)); err != nil {
			t.Fatalf("case %s: key: %v", gc.Name, err)
		}
	}
	gear := GearTable(key)
	gc.Gear = nil
	for _, v := range gear[:4] {
		gc.Gear = append(gc.Gear, fmt.Sprintf("%016x", v))
	}
	cfg := Config{Min: gc.Min, Avg: gc.Avg, Max: gc.Max, Gear: gear}
	if gc.Key == "" {
		cfg.Gear = nil // the default table
	}
	keyer := NewIDKeyer(key)
	data := randomBytes(gc.Seed, gc.Size)
	gc.Chunks = nil
	for _, c := range chunks(t, bytes.NewReader(data), cfg) {
		gc.Chunks = append(gc.Chunks, goldenChunk{Offset: c.Offset, Length: len(c.Data), ID: keyer.ID(c.Data)})
	}
	return gc
}

func TestGolden(t *testing.T) {
	path := filepath.Join("testdata", "golden.json")
	var got []goldenCase
	for _, in := range goldenInputs {
		got = append(got, in.compute(t))
	}
	if *update {
		b, err := json.MarshalIndent(got, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
	}
	var want []goldenCase
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	if len(want) != len(got) {
		t.Fatalf("%s has %d cases, want %d", path, len(want), len(got))
	}
	for i := range got {
		g, w := got[i], want[i]
		t.Run(g.Name, func(t *testing.T) {
			if g.Name != w.Name || g.Seed != w.Seed || g.Size != w.Size || g.Key != w.Key || g.Min != w.Min || g.Avg != w.Avg || g.Max != w.Max {
				t.Fatalf("inputs differ from %s; rerun with -update if that is intended", path)
			}
			for j := range w.Gear {
				if j >= len(g.Gear) || g.Gear[j] != w.Gear[j] {
					t.Fatalf("gear table entry %d = %v, want %s", j, g.Gear, w.Gear[j])
				}
			}
			for j := range max(len(g.Chunks), len(w.Chunks)) {
				if j >= len(g.Chunks) || j >= len(w.Chunks) || g.Chunks[j] != w.Chunks[j] {
					t.Fatalf("chunk %d differs: got %d chunks, want %d; first difference got %v, want %v",
						j, len(g.Chunks), len(w.Chunks), at(g.Chunks, j), at(w.Chunks, j))
				}
			}
		})
	}
}

// at returns cs[i], or the zero chunk if i is out of range.
func at(cs []goldenChunk, i int) goldenChunk {
	if i < len(cs) {
		return cs[i]
	}
	return goldenChunk{}
}
