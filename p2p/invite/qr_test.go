package invite

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"
	"github.com/skip2/go-qrcode"
)

// scan decodes the QR code in img as a phone would, and fails unless it
// holds want, byte for byte, in QR alphanumeric mode only. It reports
// whether gozxing's detector found the symbol: like ZXing's (zxing/zxing
// issue 1763), it misses a few percent of valid symbols, ZXing's own among
// them, which zbarimg reads. Those are read again as a pure barcode, which
// still checks every module, and counted in misses.
func scan(t *testing.T, img image.Image, want string, misses *atomic.Int64) {
	t.Helper()
	res, err := decodeQR(img, nil)
	if err != nil {
		res, err = decodeQR(img, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
		if err != nil {
			t.Fatalf("decode QR code: %v", err)
		}
		misses.Add(1)
		t.Logf("gozxing's detector missed the symbol; read as a pure barcode")
	}
	if got := res.GetText(); got != want {
		t.Fatalf("QR code holds\n%q, want\n%q", got, want)
	}
	if _, ok := res.GetResultMetadata()[gozxing.ResultMetadataType_BYTE_SEGMENTS]; ok && isAlphanumeric(want) {
		t.Fatal("QR code has a byte-mode segment: want alphanumeric mode only")
	}
}

func decodeQR(img image.Image, hints map[gozxing.DecodeHintType]any) (*gozxing.Result, error) {
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return nil, err
	}
	return zxqr.NewQRCodeReader().Decode(bmp, hints)
}

// checkMisses fails when the detector missed more than a quarter of the
// symbols (with the fixed qrCodes it misses one code of ten, at every size):
// then the drawing, not the detector, is at fault.
func checkMisses(t *testing.T, misses *atomic.Int64, total int) {
	t.Helper()
	if m := misses.Load(); m*4 > int64(total) {
		t.Fatalf("gozxing's detector missed %d of %d symbols", m, total)
	}
}

func isAlphanumeric(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", c) {
			return false
		}
	}
	return true
}

// qrCodes are invite codes of every size an invite has. They are fixed, so
// that the detector's misses (see scan) are the same on every run.
func qrCodes(t *testing.T) map[string]string {
	out := map[string]string{}
	for n := 0; n <= MaxAddrs; n += 2 {
		inv := mustNew(t, seedPeer(t, byte(10+n)), addrs(t, manyAddrs[:n]...))
		for i := range inv.Secret {
			inv.Secret[i] = byte(n*SecretSize + i)
		}
		out[fmt.Sprintf("%d addresses", n)] = inv.Code()
	}
	// The largest code the format allows.
	big := payload{version: 1, id: []byte(seedPeer(t, 20)), idLen: -1, count: -1}
	for len(big.bytes())+1+MaxAddrLen <= MaxPayload {
		big.addrs = append(big.addrs, addrs(t, "/dns/"+strings.Repeat("a", 250))[0].Bytes())
	}
	out["largest"] = codeOf(big.bytes())
	for name, code := range readGolden(t) {
		out["golden "+name] = code
	}
	return out
}

func TestQRPNG(t *testing.T) {
	var misses atomic.Int64
	codes, sizes := qrCodes(t), []int{64, 256, 333, 512}
	defer checkMisses(t, &misses, len(codes)*len(sizes))
	for name, code := range codes {
		for _, size := range sizes {
			t.Run(fmt.Sprintf("%s/%dpx", name, size), func(t *testing.T) {
				b, err := QRPNG(code, size)
				if err != nil {
					t.Fatal(err)
				}
				img, err := png.Decode(bytes.NewReader(b))
				if err != nil {
					t.Fatalf("decode PNG: %v", err)
				}
				side := img.Bounds().Dx()
				if img.Bounds().Dy() != side || side < size {
					t.Fatalf("image is %v, want a square of at least %d", img.Bounds(), size)
				}
				modules := qrModules(t, code) + 2*pngQuiet
				if modules <= size && side != size {
					t.Fatalf("image is %d px, want %d", side, size)
				}
				if modules > size && side != modules {
					t.Fatalf("image is %d px, want one per module: %d", side, modules)
				}
				scan(t, img, code, &misses)
			})
		}
	}
}

// TestQRTerminal reads the terminal drawing back into modules, draws them
// into an image at 4 pixels a module, and scans that.
func TestQRTerminal(t *testing.T) {
	var misses atomic.Int64
	codes := qrCodes(t)
	defer checkMisses(t, &misses, 2*len(codes))
	for name, code := range codes {
		for _, invert := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/invert=%v", name, invert), func(t *testing.T) {
				s, err := QRTerminal(code, invert)
				if err != nil {
					t.Fatal(err)
				}
				bm := readTerminal(t, s, invert)
				n := qrModules(t, code) + 2*terminalQuiet
				if got, want := len(bm[0]), n; got != want {
					t.Fatalf("drawing is %d modules wide, want %d", got, want)
				}
				if got, want := len(bm), n+n%2; got != want {
					t.Fatalf("drawing is %d modules high, want %d", got, want)
				}
				for y, row := range bm {
					for x, dark := range row {
						edge := x < terminalQuiet || y < terminalQuiet || x >= n-terminalQuiet || y >= n-terminalQuiet
						if edge && dark {
							t.Fatalf("module (%d, %d) in the quiet zone is dark", x, y)
						}
					}
				}
				scan(t, drawModules(bm, 4), code, &misses)
			})
		}
	}
}

// readTerminal turns a QRTerminal drawing back into modules, true for dark.
func readTerminal(t *testing.T, s string, invert bool) [][]bool {
	t.Helper()
	var bm [][]bool
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for _, line := range lines {
		var top, bottom []bool
		for _, r := range line {
			var tb, bb bool // filled halves
			switch r {
			case '█':
				tb, bb = true, true
			case '▀':
				tb = true
			case '▄':
				bb = true
			case ' ':
			default:
				t.Fatalf("drawing has %q", r)
			}
			top, bottom = append(top, tb != invert), append(bottom, bb != invert)
		}
		if len(bm) > 0 && len(top) != len(bm[0]) {
			t.Fatalf("line of %d characters, want %d", len(top), len(bm[0]))
		}
		bm = append(bm, top, bottom)
	}
	return bm
}

// drawModules draws modules black on white at scale pixels a module.
func drawModules(bm [][]bool, scale int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, len(bm[0])*scale, len(bm)*scale))
	for y := range img.Bounds().Dy() {
		for x := range img.Bounds().Dx() {
			c := color.Gray{Y: 255}
			if bm[y/scale][x/scale] {
				c.Y = 0
			}
			img.SetGray(x, y, c)
		}
	}
	return img
}

// alnumCapacityM is how many alphanumeric characters a QR code of each
// version (index + 1) holds at error correction level M (ISO/IEC 18004
// table 7).
var alnumCapacityM = []int{20, 38, 61, 90, 122, 154, 178, 221, 262, 311, 366, 419, 483, 528, 600, 656, 734, 816, 909, 970, 1035}

// qrModules returns the side of the QR symbol of code, quiet zone excluded,
// and checks that it is the smallest version that holds code in
// alphanumeric mode: a larger one means the encoder chose byte mode.
func qrModules(t *testing.T, code string) int {
	t.Helper()
	q, err := qrcode.New(code, qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for v, c := range alnumCapacityM {
		if len(code) <= c {
			want = v + 1
			break
		}
	}
	if q.VersionNumber != want {
		t.Fatalf("a %d-character code makes a version %d QR code, want %d (alphanumeric mode)", len(code), q.VersionNumber, want)
	}
	return 17 + 4*q.VersionNumber
}

// TestQRAnyText checks that QR rendering takes any text up to MaxCodeLen,
// not only invite codes.
func TestQRAnyText(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 17, 100, 400, MaxCodeLen} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(' ' + r.IntN(95))
		}
		text := string(b)
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			p, err := QRPNG(text, 600)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(p))
			if err != nil {
				t.Fatal(err)
			}
			var misses atomic.Int64
			scan(t, img, text, &misses)
		})
	}
}

func TestQRErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		size int
	}{
		{"empty", "", 256},
		{"too long", strings.Repeat("A", MaxCodeLen+1), 256},
		{"zero size", "PLUG1AAAA", 0},
		{"negative size", "PLUG1AAAA", -5},
		{"huge size", "PLUG1AAAA", MaxPNGSize + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := QRPNG(tc.text, tc.size); err == nil || !strings.HasPrefix(err.Error(), "render QR code: ") {
				t.Fatalf("QRPNG: err %v, want a render error", err)
			}
			if tc.size == 256 {
				if _, err := QRTerminal(tc.text, false); err == nil {
					t.Fatal("QRTerminal succeeded")
				}
			}
		})
	}
}

func ExampleQRTerminal() {
	s, err := QRTerminal("PLUG1", true)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(s)
	// Output:
	// █████████████████████████
	// ██ ▄▄▄▄▄ ██ ▄▀▀█ ▄▄▄▄▄ ██
	// ██ █   █ █ ▄ ▀██ █   █ ██
	// ██ █▄▄▄█ █ █ ▄ █ █▄▄▄█ ██
	// ██▄▄▄▄▄▄▄█ █ ▀ █▄▄▄▄▄▄▄██
	// ██ ▀▄  ▄▄██▀▄█ █▄ ▄▄▄█▀██
	// ██ ▄ ▄▄█▄▄██ ▄█▄█▀ ██▀ ██
	// ████████▄▄ ▄█ ▀ ▀█▄▀█▄███
	// ██ ▄▄▄▄▄ █▀█▄▀ ▀ ▄██ ▄ ██
	// ██ █   █ █  ▄█ ██ ██▄████
	// ██ █▄▄▄█ █▄▀ ▄█▄█▀ █ █▀██
	// ██▄▄▄▄▄▄▄█▄▄█▄█▄██▄█▄████
	// █████████████████████████
}
