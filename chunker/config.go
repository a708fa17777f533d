package chunker

import (
	"errors"
	"fmt"
	"math/bits"
)

// Default chunk sizes, in bytes: the sizes DESIGN.md fixes for backups.
const (
	DefaultMin = 256 << 10 // 256 KiB
	DefaultAvg = 1 << 20   // 1 MiB
	DefaultMax = 4 << 20   // 4 MiB
)

// Limits on Config sizes.
const (
	// MinMin is the smallest allowed Min: the width of the gear hash window, so
	// that every cut point depends on a full window of the chunk's own bytes.
	MinMin = windowSize
	// MaxMax is the largest allowed Max. A Chunker buffers up to 2×Max bytes.
	MaxMax = 256 << 20 // 256 MiB
)

// windowSize is the number of bytes that a gear hash value depends on: each
// byte is shifted one bit further left per step, so after 64 steps it has left
// the 64-bit fingerprint.
const windowSize = 64

// normLevel is the FastCDC normalization level: the mask used before Avg has
// normLevel more 1-bits than log2(Avg), the one used after it normLevel fewer.
const normLevel = 2

// ErrInvalidConfig is wrapped by every error that Config.Validate returns.
var ErrInvalidConfig = errors.New("chunker: invalid config")

// Config sets the chunk sizes and the gear table.
//
// A zero field takes its default, independently of the others: Min
// DefaultMin, Avg DefaultAvg, Max DefaultMax, and Gear the table of the
// all-zero key. Production code must set Gear to GearTable(chunk-ID key), so
// that chunk sizes reveal nothing about the content to friends.
type Config struct {
	// Min is the smallest chunk, except for the last chunk of a stream.
	Min int
	// Avg is the size at which the cut condition switches from the stricter
	// mask to the looser one (FastCDC's normal size); it must be a power of
	// two. The mean chunk size on random data is about 1.14×Avg with the
	// default sizes (see the package documentation).
	Avg int
	// Max is the largest chunk: a chunk is cut at Max bytes when no cut point
	// occurred before.
	Max int
	// Gear is the gear table of the rolling hash; see GearTable.
	Gear *[256]uint64
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Min == 0 {
		c.Min = DefaultMin
	}
	if c.Avg == 0 {
		c.Avg = DefaultAvg
	}
	if c.Max == 0 {
		c.Max = DefaultMax
	}
	if c.Gear == nil {
		c.Gear = defaultGear()
	}
	return c
}

// Validate reports whether c, with its zero fields set to their defaults,
// describes a usable chunker: MinMin ≤ Min < Avg < Max ≤ MaxMax and Avg a power
// of two. Its errors wrap ErrInvalidConfig.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Min < MinMin:
		return fmt.Errorf("%w: min %d is below %d", ErrInvalidConfig, c.Min, MinMin)
	case c.Avg <= c.Min:
		return fmt.Errorf("%w: avg %d must be greater than min %d", ErrInvalidConfig, c.Avg, c.Min)
	case c.Max <= c.Avg:
		return fmt.Errorf("%w: max %d must be greater than avg %d", ErrInvalidConfig, c.Max, c.Avg)
	case c.Max > MaxMax:
		return fmt.Errorf("%w: max %d is above %d", ErrInvalidConfig, c.Max, MaxMax)
	case c.Avg&(c.Avg-1) != 0:
		return fmt.Errorf("%w: avg %d is not a power of two", ErrInvalidConfig, c.Avg)
	}
	return nil
}

// masks returns FastCDC's two masks for an average size of avg (a power of
// two): maskS with log2(avg)+normLevel 1-bits for chunk lengths below avg,
// maskL with log2(avg)-normLevel 1-bits from avg on. The 1-bits are the high
// bits of the fingerprint, which depend on the most bytes of the window, below
// bit 63, which the two-bytes-per-step loop needs free (see cut).
func masks(avg int) (maskS, maskL uint64) {
	k := bits.TrailingZeros64(uint64(avg))
	mask := func(ones int) uint64 { return (1<<ones - 1) << (63 - ones) }
	return mask(k + normLevel), mask(k - normLevel)
}
