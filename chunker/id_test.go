package chunker

import (
	"encoding/binary"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	lblake3 "lukechampine.com/blake3"
)

// The chunker uses github.com/zeebo/blake3; these helpers compute the same
// values with lukechampine.com/blake3, an independent implementation.

// lukeID returns keyed BLAKE3-256 of data.
func lukeID(key [32]byte, data []byte) ID {
	h := lblake3.New(32, key[:])
	_, _ = h.Write(data)
	var id ID
	h.Sum(id[:0])
	return id
}

// lukeGear returns the gear table of key as doc.go defines it.
func lukeGear(key [32]byte) [256]uint64 {
	var raw [2048]byte
	lblake3.DeriveKey(raw[:], GearContext, key[:])
	var g [256]uint64
	for i := range g {
		g[i] = binary.LittleEndian.Uint64(raw[8*i:])
	}
	return g
}

func TestIDKeyer(t *testing.T) {
	k1, k2 := NewIDKeyer(testKey(1)), NewIDKeyer(testKey(2))
	for _, size := range []int{0, 1, 63, 64, 65, 1023, 1024, 1025, 8192, 8193, 1 << 20, DefaultMax} {
		data := randomBytes(uint64(size), size)
		id1 := k1.ID(data)
		if want := lukeID(testKey(1), data); id1 != want {
			t.Fatalf("size %d: ID %s, want %s (lukechampine.com/blake3)", size, id1, want)
		}
		if again := k1.ID(data); again != id1 {
			t.Fatalf("size %d: second ID %s differs from first %s", size, again, id1)
		}
		if id2 := k2.ID(data); id2 == id1 {
			t.Fatalf("size %d: two keys gave the same ID %s", size, id1)
		}
	}
}

func TestIDKeyerConcurrent(t *testing.T) {
	k := NewIDKeyer(testKey(1))
	inputs := make([][]byte, 16)
	want := make([]ID, len(inputs))
	for i := range inputs {
		inputs[i] = randomBytes(uint64(i), 1000*i)
		want[i] = lukeID(testKey(1), inputs[i])
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for round := range 20 {
				i := (g + round) % len(inputs)
				if got := k.ID(inputs[i]); got != want[i] {
					t.Errorf("goroutine %d: ID of input %d = %s, want %s", g, i, got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestIDKeyerAllocs(t *testing.T) {
	k := NewIDKeyer(testKey(1))
	data := randomBytes(1, 100<<10)
	k.ID(data) // warm the pool
	if allocs := testing.AllocsPerRun(100, func() { k.ID(data) }); allocs != 0 {
		t.Fatalf("ID: %v allocations per call, want 0", allocs)
	}
}

func TestIDText(t *testing.T) {
	id := NewIDKeyer(testKey(1)).ID([]byte("hello"))
	s := id.String()
	if len(s) != 64 || strings.ToLower(s) != s {
		t.Fatalf("String() = %q, want 64 lowercase hex digits", s)
	}
	if got, want := id.Short(), s[:8]; got != want {
		t.Fatalf("Short() = %q, want %q", got, want)
	}
	for _, in := range []string{s, strings.ToUpper(s)} {
		got, err := ParseID(in)
		if err != nil || got != id {
			t.Fatalf("ParseID(%q) = %v, %v; want %v", in, got, err, id)
		}
	}
	b, err := json.Marshal(map[string]ID{"id": id})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"id":"`+s+`"}`; got != want {
		t.Fatalf("json = %s, want %s", got, want)
	}
	var back map[string]ID
	if err := json.Unmarshal(b, &back); err != nil || back["id"] != id {
		t.Fatalf("json round trip = %v, %v; want %v", back, err, id)
	}
	if id.IsZero() || !(ID{}).IsZero() {
		t.Fatal("IsZero is wrong")
	}
}

func TestParseIDErrors(t *testing.T) {
	valid := strings.Repeat("ab", 32)
	for _, in := range []string{"", "ab", valid[:63], valid + "a", valid[:62] + "zz", valid[:62] + " a"} {
		if _, err := ParseID(in); err == nil {
			t.Errorf("ParseID(%q) succeeded", in)
		}
	}
	var id ID
	if err := id.UnmarshalText([]byte("nope")); err == nil {
		t.Error("UnmarshalText(nope) succeeded")
	}
}
