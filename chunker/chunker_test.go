package chunker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/iotest"
)

// randomBytes returns n pseudo-random bytes from a ChaCha8 stream seeded by
// seed.
func randomBytes(seed uint64, n int) []byte {
	var s [32]byte
	s[0], s[1], s[2], s[3] = byte(seed), byte(seed>>8), byte(seed>>16), byte(seed>>24)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// big64 is 64 MiB of random bytes shared by the tests that need that much.
var big64 = sync.OnceValue(func() []byte { return randomBytes(64, 64<<20) })

// testKey returns a 32-byte key made from b.
func testKey(b byte) [32]byte {
	var k [32]byte
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

// chunks returns copies of all chunks that a Chunker with cfg cuts from r.
func chunks(t testing.TB, r io.Reader, cfg Config) []Chunk {
	t.Helper()
	c, err := New(r, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return drain(t, c)
}

// drain returns copies of the remaining chunks of c.
func drain(t testing.TB, c *Chunker) []Chunk {
	t.Helper()
	var out []Chunk
	for {
		ch, err := c.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Next after %d chunks: %v", len(out), err)
		}
		out = append(out, Chunk{Offset: ch.Offset, Data: bytes.Clone(ch.Data)})
	}
}

// lengths returns the lengths of cs.
func lengths(cs []Chunk) []int {
	ls := make([]int, len(cs))
	for i, c := range cs {
		ls[i] = len(c.Data)
	}
	return ls
}

// checkChunks fails t unless cs reassemble to data with contiguous offsets,
// and every chunk but the last has a length in [Min, Max] of cfg (the last
// one in [1, Max]).
func checkChunks(t testing.TB, data []byte, cs []Chunk, cfg Config) {
	t.Helper()
	cfg = cfg.withDefaults()
	var off int64
	for i, c := range cs {
		if c.Offset != off {
			t.Fatalf("chunk %d: offset %d, want %d", i, c.Offset, off)
		}
		lo := cfg.Min
		if i == len(cs)-1 {
			lo = 1
		}
		if l := len(c.Data); l < lo || l > cfg.Max {
			t.Fatalf("chunk %d of %d: length %d, want in [%d, %d]", i, len(cs), l, lo, cfg.Max)
		}
		if end := off + int64(len(c.Data)); end > int64(len(data)) || !bytes.Equal(c.Data, data[off:end]) {
			t.Fatalf("chunk %d at offset %d: bytes differ from the input", i, off)
		}
		off += int64(len(c.Data))
	}
	if off != int64(len(data)) {
		t.Fatalf("chunks cover %d bytes, want %d", off, len(data))
	}
}

// splitBoundary cuts data in memory with Boundary.
func splitBoundary(data []byte, cfg Config) []int {
	var ls []int
	for len(data) > 0 {
		n := Boundary(data, cfg)
		ls = append(ls, n)
		data = data[n:]
	}
	return ls
}

// shortReader returns reads of pseudo-random sizes in [1, maxRead].
type shortReader struct {
	r       io.Reader
	rng     *rand.Rand
	maxRead int
}

func (s *shortReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1+s.rng.IntN(min(len(p), s.maxRead))]
	}
	return s.r.Read(p)
}

// readers are the read patterns every input is chunked through.
var readers = []struct {
	name string
	wrap func(io.Reader) io.Reader
	max  int // largest input to use it on; 0 for any
}{
	{"whole", func(r io.Reader) io.Reader { return r }, 0},
	{"one-byte", iotest.OneByteReader, 3*DefaultMax + 17},
	{"half", iotest.HalfReader, 0},
	{"data-with-eof", iotest.DataErrReader, 0},
	{"short-random", func(r io.Reader) io.Reader {
		return &shortReader{r: r, rng: rand.New(rand.NewPCG(1, 2)), maxRead: 100 << 10}
	}, 0},
}

func TestReassembly(t *testing.T) {
	sizes := []int{0, 1, DefaultMin - 1, DefaultMin, DefaultMin + 1, DefaultAvg, DefaultMax, DefaultMax + 1, 3*DefaultMax + 17, 64 << 20}
	for _, size := range sizes {
		var data []byte
		if size == 64<<20 {
			data = big64()
		} else {
			data = randomBytes(uint64(size), size)
		}
		want := splitBoundary(data, Config{})
		for _, rd := range readers {
			if rd.max != 0 && size > rd.max {
				continue
			}
			t.Run(fmt.Sprintf("%d/%s", size, rd.name), func(t *testing.T) {
				t.Parallel()
				cs := chunks(t, rd.wrap(bytes.NewReader(data)), Config{})
				checkChunks(t, data, cs, Config{})
				if got := lengths(cs); !slices.Equal(got, want) {
					t.Fatalf("chunk lengths %v, want %v (from Boundary)", got, want)
				}
			})
		}
	}
}

func TestEmptyStream(t *testing.T) {
	c, err := New(bytes.NewReader(nil), Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if ch, err := c.Next(); err != io.EOF {
			t.Fatalf("Next #%d = %v, %v; want io.EOF", i, ch, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero is defaults", Config{}, true},
		{"explicit defaults", Config{Min: DefaultMin, Avg: DefaultAvg, Max: DefaultMax}, true},
		{"small", Config{Min: 64, Avg: 128, Max: 129}, true},
		{"largest", Config{Min: 1 << 20, Avg: 64 << 20, Max: MaxMax}, true},
		{"min below window", Config{Min: 63, Avg: 128, Max: 1024}, false},
		{"negative min", Config{Min: -1}, false},
		{"min equals avg", Config{Min: 1 << 20, Avg: 1 << 20}, false},
		{"min above avg by default", Config{Avg: 128 << 10}, false},
		{"avg not power of two", Config{Avg: 1<<20 + 1}, false},
		{"max equals avg", Config{Max: DefaultAvg}, false},
		{"max too large", Config{Max: MaxMax + 1}, false},
		{"negative max", Config{Max: -4}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, does not wrap ErrInvalidConfig", err)
			}
			if _, nerr := New(bytes.NewReader(nil), tt.cfg); (nerr == nil) != tt.ok {
				t.Fatalf("New() error = %v, want ok=%v", nerr, tt.ok)
			}
		})
	}
}

func TestBoundaryPanicsOnInvalidConfig(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Boundary with an invalid config did not panic")
		}
	}()
	Boundary(make([]byte, 10), Config{Avg: 3})
}

// TestSkipMin checks that the first Min-64 bytes of a chunk, which come
// before the first window the cut condition tests, move no boundary.
func TestSkipMin(t *testing.T) {
	cfg := Config{Min: 1 << 10, Avg: 4 << 10, Max: 16 << 10}
	data := randomBytes(5, 1<<20)
	want := splitBoundary(data, cfg)
	mod := bytes.Clone(data)
	off := 0
	for _, l := range want {
		for j := off; j < min(off+cfg.Min-windowSize, len(mod)); j++ {
			mod[j] ^= 0xa5
		}
		off += l
	}
	if got := splitBoundary(mod, cfg); !slices.Equal(got, want) {
		t.Fatal("changing the first Min-64 bytes of every chunk moved boundaries")
	}
}

// TestLocality changes one byte of a 64 MiB stream and checks that the chunk
// IDs before and after share all but a few chunks.
func TestLocality(t *testing.T) {
	data := big64()
	keyer := NewIDKeyer(testKey(1))
	cfg := Config{Gear: GearTable(testKey(1))}
	ids := func(t *testing.T, b []byte) map[ID]bool {
		t.Helper()
		set := make(map[ID]bool)
		for _, c := range chunks(t, bytes.NewReader(b), cfg) {
			set[keyer.ID(c.Data)] = true
		}
		return set
	}
	orig := ids(t, data)
	mid := len(data) / 2
	tests := []struct {
		name string
		mod  []byte
	}{
		{"insert at start", append([]byte{0x42}, data...)},
		{"delete at start", data[1:]},
		{"change in middle", slices.Concat(data[:mid], []byte{^data[mid]}, data[mid+1:])},
		{"insert in middle", slices.Concat(data[:mid], []byte{0x42}, data[mid:])},
	}
	const maxChanged = 3
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ids(t, tt.mod)
			added, removed := 0, 0
			for id := range got {
				if !orig[id] {
					added++
				}
			}
			for id := range orig {
				if !got[id] {
					removed++
				}
			}
			if added > maxChanged || removed > maxChanged {
				t.Fatalf("%d new and %d lost chunk IDs out of %d, want at most %d each", added, removed, len(orig), maxChanged)
			}
			t.Logf("%d chunks; %d new, %d lost", len(orig), added, removed)
		})
	}
}

// sizeStats returns the mean and variance of the chunk length under cfg in
// the model where every candidate cut point is an independent event with
// probability 2^-k, k the number of 1-bits of the mask in force there, and no
// stream ends.
func sizeStats(cfg Config) (mean, variance float64) {
	cfg = cfg.withDefaults()
	maskS, maskL := masks(cfg.Avg)
	pS := math.Ldexp(1, -bits.OnesCount64(maskS))
	pL := math.Ldexp(1, -bits.OnesCount64(maskL))
	survive := 1.0 // P(length ≥ l)
	var m1, m2 float64
	for l := cfg.Min; l < cfg.Max; l++ {
		p := pS
		if l >= cfg.Avg {
			p = pL
		}
		q := survive * p // P(length == l)
		m1 += q * float64(l)
		m2 += q * float64(l) * float64(l)
		survive -= q
	}
	m1 += survive * float64(cfg.Max)
	m2 += survive * float64(cfg.Max) * float64(cfg.Max)
	return m1, m2 - m1*m1
}

// TestMeanSize checks that the mean chunk length on random data agrees with
// the theoretical mean within 5 standard errors of the sample mean.
func TestMeanSize(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		size int
	}{
		{"default", Config{}, 64 << 20},
		{"default key 7", Config{Gear: GearTable(testKey(7))}, 64 << 20},
		{"8K", Config{Min: 2 << 10, Avg: 8 << 10, Max: 32 << 10}, 32 << 20},
		{"64K", Config{Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10, Gear: GearTable(testKey(3))}, 64 << 20},
		{"min near avg", Config{Min: 60 << 10, Avg: 64 << 10, Max: 1 << 20}, 64 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := big64()[:tt.size]
			ls := splitBoundary(data, tt.cfg)
			ls = ls[:len(ls)-1] // the last chunk is cut by the end of the data
			var sum float64
			for _, l := range ls {
				sum += float64(l)
			}
			n := float64(len(ls))
			got := sum / n
			want, variance := sizeStats(tt.cfg)
			tol := 5 * math.Sqrt(variance/n)
			t.Logf("%d chunks, mean %.0f, theory %.0f ± %.0f (5 SE), Avg %d", len(ls), got, want, tol, tt.cfg.withDefaults().Avg)
			if math.Abs(got-want) > tol {
				t.Fatalf("mean chunk length %.0f, want %.0f ± %.0f", got, want, tol)
			}
		})
	}
}

func TestDefaultExpectedSize(t *testing.T) {
	// doc.go says the mean with the defaults is about 1.14 MiB.
	mean, _ := sizeStats(Config{})
	if got := mean / (1 << 20); math.Abs(got-1.14) > 0.005 {
		t.Fatalf("expected mean chunk with the defaults = %.3f MiB, doc.go says 1.14", got)
	}
}

func TestGearKeys(t *testing.T) {
	data := randomBytes(9, 32<<20)
	split := func(key [32]byte) []int { return splitBoundary(data, Config{Gear: GearTable(key)}) }
	a1, a2, b := split(testKey(1)), split(testKey(1)), split(testKey(2))
	if !slices.Equal(a1, a2) {
		t.Fatal("the same key gave different boundaries")
	}
	if slices.Equal(a1, b) {
		t.Fatal("different keys gave the same boundaries")
	}
	if z, d := splitBoundary(data, Config{Gear: GearTable([32]byte{})}), splitBoundary(data, Config{}); !slices.Equal(z, d) {
		t.Fatal("nil Gear does not mean the table of the zero key")
	}
}

func TestGearTable(t *testing.T) {
	g1, g2 := GearTable(testKey(1)), GearTable(testKey(1))
	if *g1 != *g2 {
		t.Fatal("GearTable is not deterministic")
	}
	if g1 == g2 {
		t.Fatal("GearTable returned a shared table")
	}
	if *GearTable(testKey(2)) == *g1 {
		t.Fatal("different keys gave the same table")
	}
	// An independent BLAKE3 implementation gives the same table.
	if want := lukeGear(testKey(1)); *g1 != want {
		t.Fatal("GearTable differs from BLAKE3 derive_key(\"plug/gear\", key) by lukechampine.com/blake3")
	}
	// Each bit position is set in about half of the entries.
	for bit := range 64 {
		n := 0
		for _, v := range g1 {
			n += int(v >> bit & 1)
		}
		if n < 128-48 || n > 128+48 { // 6 standard deviations of Binomial(256, 1/2)
			t.Fatalf("bit %d set in %d of 256 entries", bit, n)
		}
	}
}

// errReader returns data, then err.
type errReader struct {
	data []byte
	err  error
}

func (e *errReader) Read(p []byte) (int, error) {
	if len(e.data) == 0 {
		return 0, e.err
	}
	n := copy(p, e.data)
	e.data = e.data[n:]
	return n, nil
}

func TestReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	c, err := New(&errReader{data: randomBytes(1, 100), err: boom}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := c.Next(); !errors.Is(err, boom) {
			t.Fatalf("Next #%d error = %v, want it to wrap %v", i, err, boom)
		}
	}
	data := randomBytes(2, 1000)
	c.Reset(bytes.NewReader(data))
	checkChunks(t, data, drain(t, c), Config{})
}

// zeroReader returns no data and no error.
type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestNoProgress(t *testing.T) {
	c, err := New(zeroReader{}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("Next error = %v, want io.ErrNoProgress", err)
	}
}

// TestReset chunks many streams of different sizes through one Chunker and
// checks each against a fresh one.
func TestReset(t *testing.T) {
	cfg := Config{Min: 1 << 10, Avg: 4 << 10, Max: 16 << 10}
	reused, err := New(nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 50 {
		data := randomBytes(uint64(i), rng.IntN(100<<10))
		reused.Reset(bytes.NewReader(data))
		got := drain(t, reused)
		checkChunks(t, data, got, cfg)
		if want := chunks(t, bytes.NewReader(data), cfg); !slices.EqualFunc(got, want, func(a, b Chunk) bool {
			return a.Offset == b.Offset && bytes.Equal(a.Data, b.Data)
		}) {
			t.Fatalf("stream %d (%d bytes): reused Chunker cut %v, new one %v", i, len(data), lengths(got), lengths(want))
		}
	}
}

// TestSmallStreamMemory checks that a small stream gets a small buffer, that
// the buffer never exceeds 2×Max, and that Reset reuses it.
func TestSmallStreamMemory(t *testing.T) {
	small := randomBytes(1, 10)
	c, err := New(bytes.NewReader(small), Config{})
	if err != nil {
		t.Fatal(err)
	}
	checkChunks(t, small, drain(t, c), Config{})
	if got := cap(c.buf); got > initialBuf {
		t.Fatalf("buffer for a 10-byte stream: %d bytes, want at most %d", got, initialBuf)
	}

	c.Reset(bytes.NewReader(big64()[:20<<20]))
	drain(t, c)
	if got, limit := cap(c.buf), 2*DefaultMax; got > limit {
		t.Fatalf("buffer for a 20 MiB stream: %d bytes, want at most %d", got, limit)
	}

	var r bytes.Reader
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(small)
		c.Reset(&r)
		for {
			if _, err := c.Next(); err != nil {
				break
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("chunking a small stream after Reset: %v allocations, want 0", allocs)
	}
}
