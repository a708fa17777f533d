package chunker

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// fuzzConfig maps fuzz parameters to a small valid config: Avg in 128..1024,
// Min in [64, Avg), Max in (Avg, 5×Avg].
func fuzzConfig(minSel uint16, avgSel uint8, maxSel uint16, key byte) Config {
	avg := 128 << (avgSel % 4)
	return Config{
		Min:  MinMin + int(minSel)%(avg-MinMin),
		Avg:  avg,
		Max:  avg + 1 + int(maxSel)%(4*avg),
		Gear: GearTable([32]byte{key}),
	}
}

func FuzzChunker(f *testing.F) {
	f.Add([]byte{}, uint16(0), uint8(0), uint16(0), byte(0), uint64(1))
	f.Add([]byte("hello, world"), uint16(0), uint8(0), uint16(0), byte(0), uint64(1))
	f.Add(bytes.Repeat([]byte{0}, 5000), uint16(100), uint8(1), uint16(900), byte(1), uint64(2))
	f.Add(randomBytes(1, 4096), uint16(10), uint8(2), uint16(3000), byte(2), uint64(3))
	f.Add(randomBytes(2, 20000), uint16(900), uint8(3), uint16(4095), byte(3), uint64(4))
	f.Add(randomBytes(3, 1500), uint16(0), uint8(0), uint16(0), byte(4), uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, minSel uint16, avgSel uint8, maxSel uint16, key byte, readSeed uint64) {
		cfg := fuzzConfig(minSel, avgSel, maxSel, key)
		if err := cfg.Validate(); err != nil {
			t.Fatalf("fuzzConfig made an invalid config %+v: %v", cfg, err)
		}
		want := splitBoundary(data, cfg)
		r := &shortReader{r: bytes.NewReader(data), rng: rand.New(rand.NewPCG(readSeed, 0)), maxRead: 1 + int(readSeed%4096)}
		cs := chunks(t, r, cfg)
		checkChunks(t, data, cs, cfg)
		if got := lengths(cs); !slices.Equal(got, want) {
			t.Fatalf("Next cut %v, Boundary %v", got, want)
		}
	})
}
