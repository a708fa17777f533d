package chunker

import (
	"fmt"
	"io"
)

// initialBuf is the size of a Chunker's first buffer; it doubles as needed,
// up to 2×Max, so that small files cost little memory.
const initialBuf = 64 << 10

// maxEmptyReads is how many reads in a row may return no data and no error
// before Next gives up with io.ErrNoProgress (as bufio does).
const maxEmptyReads = 100

// Chunk is a piece of the stream.
type Chunk struct {
	// Offset is the position of the chunk's first byte in the stream.
	Offset int64
	// Data holds the chunk's bytes. It is valid until the next call to Next
	// or Reset; copy it to keep it longer.
	Data []byte
}

// Chunker cuts the stream of an io.Reader into content-defined chunks.
//
// It buffers at most 2×Max bytes, allocated as the stream grows and kept
// across Reset, so one Chunker can chunk many files in turn. A Chunker is not
// safe for concurrent use; use one per goroutine.
type Chunker struct {
	cut cutter
	r   io.Reader
	// buf[start:end] holds the bytes read and not yet returned.
	buf        []byte
	start, end int
	off        int64 // stream offset of buf[start]
	eof        bool  // r returned io.EOF
	err        error // sticky: returned by every Next after it
}

// New returns a Chunker that reads from r. It returns an error wrapping
// ErrInvalidConfig if cfg is invalid.
func New(r io.Reader, cfg Config) (*Chunker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Chunker{r: r}
	c.cut.init(cfg)
	return c, nil
}

// Reset makes c chunk the stream of r from its start, as if it were new,
// keeping its buffer. The Data of earlier chunks becomes invalid.
func (c *Chunker) Reset(r io.Reader) {
	c.r = r
	c.start, c.end, c.off = 0, 0, 0
	c.eof = false
	c.err = nil
}

// Next returns the next chunk of the stream. After the last chunk it returns
// io.EOF; an empty stream has no chunks. Every chunk but the last has a length
// in [Min, Max]; the last one has 1 to Max bytes. A read error is returned
// wrapped, and again by every later call until Reset.
func (c *Chunker) Next() (Chunk, error) {
	if c.err != nil {
		return Chunk{}, c.err
	}
	if err := c.fill(); err != nil {
		c.err = err
		return Chunk{}, err
	}
	if c.start == c.end {
		c.err = io.EOF
		return Chunk{}, io.EOF
	}
	n := c.cut.cut(c.buf[c.start:c.end])
	ch := Chunk{Offset: c.off, Data: c.buf[c.start : c.start+n : c.start+n]}
	c.start += n
	c.off += int64(n)
	return ch, nil
}

// fill reads until the buffer holds at least Max bytes or the stream has
// ended, making room by moving the unread bytes to the front of the buffer or
// by growing it up to 2×Max.
func (c *Chunker) fill() error {
	empty := 0
	for c.end-c.start < c.cut.max && !c.eof {
		limit := 2 * c.cut.max
		if c.end == len(c.buf) || (len(c.buf) >= limit && len(c.buf)-c.start < c.cut.max) {
			// No room to read into, or, in a full-size buffer, no room for
			// the next Max bytes after start: move the unread bytes to the
			// front, or grow the buffer if they fill most of it.
			if c.start > 0 && (c.start >= len(c.buf)/2 || len(c.buf) >= limit) {
				c.end = copy(c.buf, c.buf[c.start:c.end])
				c.start = 0
			} else if len(c.buf) < limit {
				buf := make([]byte, min(max(2*len(c.buf), initialBuf), limit))
				c.end = copy(buf, c.buf[c.start:c.end])
				c.buf, c.start = buf, 0
			}
		}
		n, err := c.r.Read(c.buf[c.end:])
		c.end += n
		switch {
		case err == io.EOF:
			c.eof = true
		case err != nil:
			return fmt.Errorf("chunker: read at offset %d: %w", c.off+int64(c.end-c.start), err)
		case n > 0:
			empty = 0
		default:
			if empty++; empty >= maxEmptyReads {
				return fmt.Errorf("chunker: read at offset %d: %w", c.off+int64(c.end-c.start), io.ErrNoProgress)
			}
		}
	}
	return nil
}
