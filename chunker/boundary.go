package chunker

// cutter holds a validated Config in the form the inner loop wants.
type cutter struct {
	min, avg, max int
	maskS, maskL  uint64
	gear          *[256]uint64
	// gearLS is gear shifted left by one bit, for the loop that rolls two
	// bytes per step (FastCDC 2020).
	gearLS [256]uint64
}

// init sets c up for cfg, which must be valid.
func (c *cutter) init(cfg Config) {
	cfg = cfg.withDefaults()
	*c = cutter{min: cfg.Min, avg: cfg.Avg, max: cfg.Max, gear: cfg.Gear}
	c.maskS, c.maskL = masks(cfg.Avg)
	for i, g := range cfg.Gear {
		c.gearLS[i] = g << 1
	}
}

// Boundary returns the length of the first chunk of data, which holds the
// rest of a stream or at least its next cfg.Max bytes: the same length Next
// returns for that chunk. It reads at most data[:cfg.Max] and returns a length
// in [min(len(data), cfg.Min), min(len(data), cfg.Max)], 0 only for empty
// data. Boundary panics if cfg is invalid (see Config.Validate).
//
// The cut condition: with fp(i) = fp(i-1)<<1 + Gear[data[i]] (mod 2^64), a
// function of data[i-63:i+1] only, the chunk ends after byte i for the first
// i ≥ Min-1 at which fp(i)&mask == 0, where mask is the stricter MaskS while
// the chunk would be shorter than Avg and the looser MaskL from Avg on.
func Boundary(data []byte, cfg Config) int {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	var c cutter
	c.init(cfg)
	return c.cut(data)
}

// cut returns the length of the first chunk of data; see Boundary.
func (c *cutter) cut(data []byte) int {
	n := len(data)
	if n <= c.min {
		return n
	}
	n = min(n, c.max)
	// Bytes i in [min-1, norm-1), chunk lengths i+1 below Avg, test maskS;
	// bytes in [norm-1, n) test maskL (at i = n-1 the length is n whether or
	// not it cuts). The hash starts windowSize bytes before the first tested
	// byte, so fp covers a full window there.
	norm := min(c.avg, n)
	i := c.min - windowSize
	var fp uint64
	for _, b := range data[i : c.min-1] {
		fp = fp<<1 + c.gear[b]
	}
	i = c.min - 1
	if l := cutLoop(data[i:norm-1], &fp, c.maskS, c.gear, &c.gearLS); l >= 0 {
		return i + l + 1
	}
	i = norm - 1
	if l := cutLoop(data[i:n], &fp, c.maskL, c.gear, &c.gearLS); l >= 0 {
		return i + l + 1
	}
	return n
}

// cutLoop rolls fp over data and returns the index of the first byte after
// which fp&mask == 0, or -1 if there is none, leaving fp rolled over all of
// data. It rolls two bytes per step, as in FastCDC 2020: fp<<2 + gear[a]<<1
// is fp(a)<<1, whose bits under mask<<1 are those of fp(a) under mask because
// mask leaves bit 63 clear; adding gear[b] then gives fp(b). That takes one
// shift-and-add off the dependency chain of every second byte. The loop is
// unrolled to four bytes and has no bounds checks (check with
// go build -gcflags=-d=ssa/check_bce).
func cutLoop(data []byte, fpp *uint64, mask uint64, gear, gearLS *[256]uint64) int {
	fp := *fpp
	maskLS := mask << 1
	_, _ = gear[0], gearLS[0] // one nil check each, outside the loop
	i := 0
	for ; i < len(data)-3; i += 4 {
		fp = fp<<2 + gearLS[data[i]]
		if fp&maskLS == 0 {
			return i
		}
		fp += gear[data[i+1]]
		if fp&mask == 0 {
			return i + 1
		}
		fp = fp<<2 + gearLS[data[i+2]]
		if fp&maskLS == 0 {
			return i + 2
		}
		fp += gear[data[i+3]]
		if fp&mask == 0 {
			return i + 3
		}
	}
	for j, b := range data[i:] {
		fp = fp<<1 + gear[b]
		if fp&mask == 0 {
			return i + j
		}
	}
	*fpp = fp
	return -1
}
