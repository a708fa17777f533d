package invite

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"

	"github.com/skip2/go-qrcode"
)

// MaxPNGSize is the largest image QRPNG draws, in pixels per side.
const MaxPNGSize = 4096

const (
	// terminalQuiet is the quiet zone of QRTerminal in modules: as qrencode
	// draws for terminals; the standard's 4 cost lines a terminal may lack.
	terminalQuiet = 2
	// pngQuiet is the quiet zone of QRPNG in modules, as the standard asks.
	pngQuiet = 4
)

// qrBitmap returns the QR code of text at error correction level M (15%),
// with a quiet zone of quiet light modules on every side: bitmap[y][x] is
// true for a dark module. The encoder picks the mode: an invite code is all
// in the alphanumeric set, so it is encoded in alphanumeric mode.
func qrBitmap(text string, quiet int) ([][]bool, error) {
	if text == "" {
		return nil, errors.New("render QR code: the text is empty")
	}
	if len(text) > MaxCodeLen {
		return nil, fmt.Errorf("render QR code: the text is %d bytes long, over the limit of %d", len(text), MaxCodeLen)
	}
	// A qrcode.QRCode draws itself once: a second Bitmap, Image or PNG call
	// on the same value appends to its data again and breaks. Each call here
	// makes a new one.
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("render QR code: %w", err)
	}
	q.DisableBorder = true
	sym := q.Bitmap()
	n := len(sym) + 2*quiet
	bm := make([][]bool, n)
	for y := range bm {
		bm[y] = make([]bool, n)
		if sy := y - quiet; sy >= 0 && sy < len(sym) {
			copy(bm[y][quiet:], sym[sy])
		}
	}
	return bm, nil
}

// QRTerminal draws text (an invite code) as a QR code for a terminal, in
// lines ending in "\n". Each character holds two modules, one above the
// other, drawn with the half blocks '▀' and '▄', the full block '█' and the
// space; a quiet zone of 2 modules surrounds the symbol.
//
// With invert false, blocks are the dark modules: for a terminal with dark
// text on a light background. With invert true, blocks are the light
// modules, quiet zone included: for light text on a dark background, the
// default of many terminals. Drawn the wrong way for the terminal, the code
// shows as a negative, which many scanners cannot read.
func QRTerminal(text string, invert bool) (string, error) {
	bm, err := qrBitmap(text, terminalQuiet)
	if err != nil {
		return "", err
	}
	n := len(bm)
	// filled reports whether module (x, y) is drawn as a block; the row past
	// the bottom edge (when n is odd) is light, like the quiet zone.
	filled := func(x, y int) bool {
		dark := y < n && bm[y][x]
		return dark != invert
	}
	var sb strings.Builder
	sb.Grow((n + 1) / 2 * (n*3 + 1))
	for y := 0; y < n; y += 2 {
		for x := range n {
			switch top, bottom := filled(x, y), filled(x, y+1); {
			case top && bottom:
				sb.WriteRune('█')
			case top:
				sb.WriteRune('▀')
			case bottom:
				sb.WriteRune('▄')
			default:
				sb.WriteByte(' ')
			}
		}
		sb.WriteByte('\n')
	}
	return sb.String(), nil
}

// QRPNG draws text (an invite code) as a QR code in a square PNG image of
// size pixels a side, black on white, with a quiet zone of at least 4
// modules. Every module is the same whole number of pixels; what is left
// over widens the quiet zone. When size is too small for one pixel a module,
// the image is as large as that takes. size may be at most MaxPNGSize.
func QRPNG(text string, size int) ([]byte, error) {
	if size < 1 || size > MaxPNGSize {
		return nil, fmt.Errorf("render QR code: size %d pixels is not within 1 to %d", size, MaxPNGSize)
	}
	bm, err := qrBitmap(text, pngQuiet)
	if err != nil {
		return nil, err
	}
	n := len(bm)
	scale := max(size/n, 1)
	side := max(size, n*scale)
	off := (side - n*scale) / 2
	img := image.NewPaletted(image.Rect(0, 0, side, side), color.Palette{color.White, color.Black})
	for y, row := range bm {
		for x, dark := range row {
			if !dark {
				continue
			}
			for py := off + y*scale; py < off+(y+1)*scale; py++ {
				i := img.PixOffset(off+x*scale, py)
				for k := range scale {
					img.Pix[i+k] = 1
				}
			}
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("render QR code: encode PNG: %w", err)
	}
	return buf.Bytes(), nil
}
