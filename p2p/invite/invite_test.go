package invite

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/zeebo/blake3"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.txt")

// now is the fixed "now" of the tests.
var now = time.Date(2026, 3, 1, 12, 30, 15, 123456789, time.UTC)

// newPeer returns the peer ID of a fresh Ed25519 key.
func newPeer(t testing.TB) peer.ID {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// seedPeer returns the peer ID of the Ed25519 key made from a seed of 32
// bytes b.
func seedPeer(t testing.TB, b byte) peer.ID {
	t.Helper()
	priv, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func addrs(t testing.TB, ss ...string) []ma.Multiaddr {
	t.Helper()
	out := make([]ma.Multiaddr, 0, len(ss))
	for _, s := range ss {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			t.Fatalf("multiaddr %q: %v", s, err)
		}
		out = append(out, a)
	}
	return out
}

func addrStrings(as []ma.Multiaddr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// diffInvites returns "" when a and b are the same invite, else what differs.
func diffInvites(a, b Invite) string {
	var d []string
	if a.Inviter != b.Inviter {
		d = append(d, fmt.Sprintf("inviter %s != %s", a.Inviter, b.Inviter))
	}
	if a.Secret != b.Secret {
		d = append(d, fmt.Sprintf("secret %x != %x", a.Secret, b.Secret))
	}
	if !a.Expires.Equal(b.Expires) {
		d = append(d, fmt.Sprintf("expires %s != %s", a.Expires, b.Expires))
	}
	as, bs := strings.Join(addrStrings(a.Addrs), " "), strings.Join(addrStrings(b.Addrs), " ")
	if as != bs {
		d = append(d, fmt.Sprintf("addrs [%s] != [%s]", as, bs))
	}
	return strings.Join(d, "; ")
}

// codeOf wraps a hand-made payload into a code with a valid checksum.
func codeOf(p []byte) string {
	sum := blake3.Sum256(p)
	return Prefix + encoding.EncodeToString(append(bytes.Clone(p), sum[:checksumSize]...))
}

// payloadOf returns the payload of a code made by this package.
func payloadOf(t testing.TB, code string) []byte {
	t.Helper()
	raw, err := encoding.DecodeString(strings.TrimPrefix(code, Prefix))
	if err != nil {
		t.Fatal(err)
	}
	return raw[:len(raw)-checksumSize]
}

func mustNew(t testing.TB, id peer.ID, as []ma.Multiaddr) Invite {
	t.Helper()
	inv, err := New(id, as, time.Hour, now)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return inv
}

var manyAddrs = []string{
	"/ip4/127.0.0.1/tcp/4001",
	"/ip4/192.168.1.20/tcp/4001",
	"/ip4/203.0.113.9/tcp/4001/p2p/12D3KooWG9a6a6L5qmJMCVShCkVLsYz2TgtMW3szL6BzBVW3xbfJ/p2p-circuit",
	"/ip4/1.2.3.4/tcp/4001",
	"/ip6/::1/udp/4001/quic-v1",
	"/ip6/fd00::5/tcp/4001",
	"/ip6/2001:4860::8888/udp/4001/quic-v1",
	"/ip4/10.0.0.7/udp/4001/quic-v1",
	"/ip4/8.8.4.4/udp/4001/quic-v1",
	"/ip4/5.6.7.8/tcp/4001/p2p/12D3KooWG9a6a6L5qmJMCVShCkVLsYz2TgtMW3szL6BzBVW3xbfJ/p2p-circuit",
}

func TestRoundTrip(t *testing.T) {
	id := newPeer(t)
	for _, tc := range []struct {
		name  string
		addrs []string
		want  []string // nil: the same as addrs
	}{
		{name: "no addresses"},
		{name: "loopback tcp", addrs: []string{"/ip4/127.0.0.1/tcp/4001"}},
		{name: "ip4 and ip6, tcp and quic", addrs: []string{
			"/ip4/1.2.3.4/tcp/4001", "/ip4/1.2.3.4/udp/4001/quic-v1",
			"/ip6/2001:4860::8888/tcp/4001", "/ip6/2001:4860::8888/udp/4001/quic-v1",
		}},
		{name: "dns and webtransport", addrs: []string{
			"/dns4/plug.example.org/tcp/443/tls/ws",
			"/ip4/1.2.3.4/udp/4001/quic-v1/webtransport/certhash/uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g",
		}},
		{name: "ten kept as eight by preference", addrs: manyAddrs, want: []string{
			"/ip4/1.2.3.4/tcp/4001",
			"/ip6/2001:4860::8888/udp/4001/quic-v1",
			"/ip4/8.8.4.4/udp/4001/quic-v1",
			"/ip4/5.6.7.8/tcp/4001/p2p/12D3KooWG9a6a6L5qmJMCVShCkVLsYz2TgtMW3szL6BzBVW3xbfJ/p2p-circuit",
			"/ip4/192.168.1.20/tcp/4001",
			"/ip6/fd00::5/tcp/4001",
			"/ip4/10.0.0.7/udp/4001/quic-v1",
			"/ip4/127.0.0.1/tcp/4001",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := mustNew(t, id, addrs(t, tc.addrs...))
			want := tc.want
			if want == nil {
				want = tc.addrs
			}
			if got, want := strings.Join(addrStrings(inv.Addrs), " "), strings.Join(want, " "); got != want {
				t.Fatalf("New kept addrs\n[%s], want\n[%s]", got, want)
			}
			code := inv.Code()
			if code == "" {
				t.Fatal("Code() is empty")
			}
			got, err := Parse(code)
			if err != nil {
				t.Fatalf("Parse(%q): %v", code, err)
			}
			if d := diffInvites(got, inv); d != "" {
				t.Fatalf("Parse(Code()) differs: %s", d)
			}
			if got.Inviter != id {
				t.Fatalf("inviter %s, want %s", got.Inviter, id)
			}
			if want := now.Add(time.Hour).Truncate(time.Second); !got.Expires.Equal(want) {
				t.Fatalf("expires %s, want %s", got.Expires, want)
			}
			if got.Expires.Location() != time.UTC {
				t.Fatalf("expires in %s, want UTC", got.Expires.Location())
			}
			t.Logf("%d characters: %s", len(code), code)
		})
	}
}

func TestNewPicksAddrs(t *testing.T) {
	id := newPeer(t)
	relay := "/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWG9a6a6L5qmJMCVShCkVLsYz2TgtMW3szL6BzBVW3xbfJ/p2p-circuit"
	privRelay := "/ip4/10.0.0.9/tcp/4001/p2p/12D3KooWG9a6a6L5qmJMCVShCkVLsYz2TgtMW3szL6BzBVW3xbfJ/p2p-circuit"
	for _, tc := range []struct {
		name        string
		addrs, want []string
	}{
		{
			name:  "public, relayed through a public relay, private, loopback, then other relays",
			addrs: []string{privRelay, relay, "/ip4/127.0.0.1/tcp/1", "/ip4/10.1.2.3/tcp/1", "/ip4/9.9.9.9/tcp/1"},
			want:  []string{"/ip4/9.9.9.9/tcp/1", relay, "/ip4/10.1.2.3/tcp/1", "/ip4/127.0.0.1/tcp/1", privRelay},
		},
		{
			name:  "link-local and unroutable kept after loopback",
			addrs: []string{"/ip4/192.0.2.1/tcp/1", "/ip4/127.0.0.1/tcp/1", "/ip4/169.254.1.1/tcp/1"},
			want:  []string{"/ip4/169.254.1.1/tcp/1", "/ip4/127.0.0.1/tcp/1", "/ip4/192.0.2.1/tcp/1"},
		},
		{
			name:  "duplicates and unspecified dropped",
			addrs: []string{"/ip4/0.0.0.0/tcp/1", "/ip4/1.1.1.1/tcp/1", "/ip6/::/tcp/1", "/ip4/1.1.1.1/tcp/1"},
			want:  []string{"/ip4/1.1.1.1/tcp/1"},
		},
		{
			name:  "given order kept within a rank",
			addrs: []string{"/ip4/9.9.9.9/tcp/2", "/ip4/9.9.9.9/tcp/1", "/ip4/8.8.8.8/tcp/3"},
			want:  []string{"/ip4/9.9.9.9/tcp/2", "/ip4/9.9.9.9/tcp/1", "/ip4/8.8.8.8/tcp/3"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := mustNew(t, id, addrs(t, tc.addrs...))
			if got, want := strings.Join(addrStrings(inv.Addrs), " "), strings.Join(tc.want, " "); got != want {
				t.Fatalf("kept\n[%s], want\n[%s]", got, want)
			}
		})
	}

	t.Run("payload budget", func(t *testing.T) {
		// Ten addresses of 255 bytes cannot all fit in 600: New keeps what
		// fits, skipping to a short one that still does.
		var in []ma.Multiaddr
		for i := range 10 {
			a := addrs(t, fmt.Sprintf("/dns/%s%d", strings.Repeat("a", 251), i))[0]
			if n := len(a.Bytes()); n != MaxAddrLen {
				t.Fatalf("test address is %d bytes, want %d", n, MaxAddrLen)
			}
			in = append(in, a)
		}
		tooLong := addrs(t, "/dns/"+strings.Repeat("b", 260))
		in = append(in, tooLong[0])
		in = append(in, addrs(t, "/ip4/1.2.3.4/tcp/5")...)
		inv := mustNew(t, id, in)
		if got, want := len(inv.Addrs), 3; got != want {
			t.Fatalf("kept %d addresses, want %d: %v", got, want, addrStrings(inv.Addrs))
		}
		if got, want := inv.Addrs[2].String(), "/ip4/1.2.3.4/tcp/5"; got != want {
			t.Fatalf("last kept %s, want %s", got, want)
		}
		p, err := inv.payload()
		if err != nil {
			t.Fatal(err)
		}
		if len(p) > MaxPayload {
			t.Fatalf("payload %d bytes, over %d", len(p), MaxPayload)
		}
		if _, err := Parse(inv.Code()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestNewErrors(t *testing.T) {
	id := newPeer(t)
	for _, tc := range []struct {
		name    string
		inviter peer.ID
		ttl     time.Duration
		now     time.Time
	}{
		{"empty inviter", "", time.Hour, now},
		{"inviter not a multihash", peer.ID("not a peer"), time.Hour, now},
		{"zero lifetime", id, 0, now},
		{"negative lifetime", id, -time.Hour, now},
		{"expiry after 2106", id, 100 * 365 * 24 * time.Hour, now},
		{"expiry before 1970", id, time.Hour, time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.inviter, nil, tc.ttl, tc.now)
			if err == nil {
				t.Fatal("New succeeded")
			}
			if !strings.HasPrefix(err.Error(), "make invite: ") {
				t.Fatalf("error %q lacks context", err)
			}
		})
	}
}

func TestNewSecretsDiffer(t *testing.T) {
	id := newPeer(t)
	a, b := mustNew(t, id, nil), mustNew(t, id, nil)
	if a.Secret == b.Secret || a.Secret == [SecretSize]byte{} {
		t.Fatalf("secrets %x and %x: want random and different", a.Secret, b.Secret)
	}
}

func TestCodeAlphabet(t *testing.T) {
	for range 20 {
		inv := mustNew(t, newPeer(t), addrs(t, manyAddrs...))
		code := inv.Code()
		if !strings.HasPrefix(code, Prefix) {
			t.Fatalf("code %q does not start with %s", code, Prefix)
		}
		for i, c := range code[len(Prefix):] {
			if !('A' <= c && c <= 'Z' || '2' <= c && c <= '7') {
				t.Fatalf("code %q has %q at %d", code, c, len(Prefix)+i)
			}
		}
	}
}

func TestParseLenientForm(t *testing.T) {
	inv := mustNew(t, newPeer(t), addrs(t, "/ip4/127.0.0.1/tcp/4001"))
	code := inv.Code()
	grouped := func(sep string, n int) string {
		var parts []string
		for s := code; s != ""; {
			k := min(n, len(s))
			parts = append(parts, s[:k])
			s = s[k:]
		}
		return strings.Join(parts, sep)
	}
	for _, tc := range []struct{ name, text string }{
		{"as made", code},
		{"lower case", strings.ToLower(code)},
		{"mixed case", strings.ToLower(code[:20]) + code[20:]},
		{"groups of 4 with spaces", grouped(" ", 4)},
		{"groups of 5 with dashes", grouped("-", 5)},
		{"lines of 40", grouped("\n", 40)},
		{"CRLF lines", grouped("\r\n", 16)},
		{"surrounding white space", "\t  " + code + "\n\n"},
		{"non-breaking spaces and en dashes", grouped("\u00a0\u2013\u00a0", 8)},
		{"zero-width spaces", grouped("\u200b", 3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.text)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.text, err)
			}
			if d := diffInvites(got, inv); d != "" {
				t.Fatal(d)
			}
		})
	}
}

// TestParseTypoEveryPosition replaces each character of the body of a real
// code by each other character of the alphabet: every such code must be
// refused as mistyped.
func TestParseTypoEveryPosition(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	for _, as := range [][]string{nil, {"/ip4/127.0.0.1/tcp/4001"}, manyAddrs} {
		code := mustNew(t, newPeer(t), addrs(t, as...)).Code()
		tried := 0
		for i := len(Prefix); i < len(code); i++ {
			for _, c := range []byte(alphabet + "01890-!a") {
				if c == code[i] || c == code[i]+'a'-'A' || c == '-' {
					continue
				}
				typo := code[:i] + string(c) + code[i+1:]
				tried++
				_, err := Parse(typo)
				if !errors.Is(err, ErrMistyped) {
					t.Errorf("position %d, %q for %q: err %v, want ErrMistyped", i, c, code[i], err)
				}
			}
			// A dropped character is refused too.
			if _, err := Parse(code[:i] + code[i+1:]); !errors.Is(err, ErrMistyped) {
				t.Errorf("character %d dropped: err %v, want ErrMistyped", i, err)
			}
		}
		t.Logf("%d typos of a %d-character code, all refused", tried, len(code))
	}
}

func TestParseNotInvite(t *testing.T) {
	for _, text := range []string{
		"",
		"   \n\t",
		"https://example.com/invite?code=PLUG1AAAA",
		"PLUGX" + strings.Repeat("A", 60),
		"PLUG0" + strings.Repeat("A", 60),
		"plug.example.org",
		"WIFI:S:home;T:WPA;P:secret;;",
		"PLU",
		"ПЛАГ1ABC",
		strings.Repeat("A", 2000),
	} {
		t.Run(fmt.Sprintf("%.20q", text), func(t *testing.T) {
			_, err := Parse(text)
			if !errors.Is(err, ErrNotInvite) {
				t.Fatalf("err %v, want ErrNotInvite", err)
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	code := mustNew(t, newPeer(t), nil).Code()
	p := payloadOf(t, code)
	p[0] = 2
	for _, text := range []string{codeOf(p), "PLUG2" + code[len(Prefix):], "plug9AAAA"} {
		_, err := Parse(text)
		if !errors.Is(err, ErrVersion) {
			t.Fatalf("Parse(%.12q…): err %v, want ErrVersion", text, err)
		}
		if !strings.Contains(err.Error(), "update plug") {
			t.Fatalf("message %q does not say to update", err)
		}
	}
}

// payload builds a payload by hand.
type payload struct {
	version byte
	id      []byte
	idLen   int // -1: len(id)
	count   int // -1: len(addrs)
	addrs   [][]byte
	trailer []byte
}

func (p payload) bytes() []byte {
	b := []byte{p.version}
	idLen := p.idLen
	if idLen < 0 {
		idLen = len(p.id)
	}
	b = append(b, byte(idLen))
	b = append(b, p.id...)
	b = append(b, make([]byte, SecretSize)...)
	b = binary.BigEndian.AppendUint32(b, 2_000_000_000)
	count := p.count
	if count < 0 {
		count = len(p.addrs)
	}
	b = append(b, byte(count))
	for _, a := range p.addrs {
		b = append(b, byte(len(a)))
		b = append(b, a...)
	}
	return append(b, p.trailer...)
}

func TestParseMalformed(t *testing.T) {
	id := []byte(newPeer(t))
	tcp := addrs(t, "/ip4/127.0.0.1/tcp/4001")[0].Bytes()
	ok := payload{version: 1, id: id, idLen: -1, count: -1, addrs: [][]byte{tcp}}
	if _, err := Parse(codeOf(ok.bytes())); err != nil {
		t.Fatalf("the well-formed base case fails: %v", err)
	}
	with := func(f func(p *payload)) []byte {
		p := ok
		p.addrs = append([][]byte(nil), ok.addrs...)
		f(&p)
		return p.bytes()
	}
	nineTCP := make([][]byte, 9)
	for i := range nineTCP {
		nineTCP[i] = tcp
	}
	for _, tc := range []struct {
		name string
		p    []byte
	}{
		{"version 0", with(func(p *payload) { p.version = 0 })},
		{"only a version byte", []byte{1}},
		{"empty peer ID", with(func(p *payload) { p.id = nil })},
		{"peer ID not a multihash", with(func(p *payload) { p.id = []byte("hello, world") })},
		{"peer ID length past the end", with(func(p *payload) { p.idLen = 255; p.addrs = nil })},
		{"ends in the secret", payload{version: 1, id: id, idLen: -1}.bytes()[:2+len(id)+5]},
		{"ends before the count", payload{version: 1, id: id, idLen: -1}.bytes()[:2+len(id)+SecretSize+4]},
		{"count above 8", with(func(p *payload) { p.addrs = nineTCP })},
		{"count 255", with(func(p *payload) { p.count = 255 })},
		{"count larger than the list", with(func(p *payload) { p.count = 2 })},
		{"truncated address", with(func(p *payload) {
			p.addrs = nil
			p.count = 1
			p.trailer = append([]byte{byte(len(tcp))}, tcp[:len(tcp)-2]...)
		})},
		{"empty address", with(func(p *payload) { p.addrs = [][]byte{{}} })},
		{"address not a multiaddr", with(func(p *payload) { p.addrs = [][]byte{bytes.Repeat([]byte{0xff}, 255)} })},
		{"address with bytes left over", with(func(p *payload) { p.addrs = [][]byte{append(bytes.Clone(tcp), 0)} })},
		{"trailing bytes", with(func(p *payload) { p.trailer = []byte{0} })},
		{"payload over 600 bytes", with(func(p *payload) { p.trailer = make([]byte, MaxPayload+1-len(ok.bytes())) })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(codeOf(tc.p))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err %v, want ErrMalformed", err)
			}
			t.Log(err)
		})
	}
}

func TestParseLengthLimit(t *testing.T) {
	code := mustNew(t, newPeer(t), nil).Code()
	fill := func(n int) string { return code + strings.Repeat(" ", n-len(code)) }
	if _, err := Parse(fill(MaxCodeLen)); err != nil {
		t.Fatalf("a code padded to %d bytes: %v", MaxCodeLen, err)
	}
	// The same valid code, one byte longer: refused on its length alone,
	// before any decoding.
	_, err := Parse(fill(MaxCodeLen + 1))
	if !errors.Is(err, ErrNotInvite) || !strings.Contains(err.Error(), "1025") {
		t.Fatalf("err %v, want ErrNotInvite for 1025 characters", err)
	}

	// The largest payload makes a code that Parse reads.
	big := payload{version: 1, id: []byte(newPeer(t)), idLen: -1, count: -1}
	for len(big.bytes())+1+MaxAddrLen <= MaxPayload {
		big.addrs = append(big.addrs, addrs(t, "/dns/"+strings.Repeat("a", 250))[0].Bytes())
	}
	last := MaxPayload - len(big.bytes()) - 1
	big.addrs = append(big.addrs, addrs(t, "/dns/"+strings.Repeat("b", last-2))[0].Bytes())
	p := big.bytes()
	if len(p) != MaxPayload {
		t.Fatalf("test payload is %d bytes, want %d", len(p), MaxPayload)
	}
	c := codeOf(p)
	if _, err := Parse(c); err != nil {
		t.Fatalf("largest code (%d characters): %v", len(c), err)
	}
	if got, want := len(c), len(Prefix)+encoding.EncodedLen(MaxPayload+checksumSize); got != want || got > MaxCodeLen {
		t.Fatalf("largest code is %d characters, want %d and at most %d", got, want, MaxCodeLen)
	}
}

// TestErrorMessages checks that every refusal reads as one sentence for a
// person: lower case, no trailing period, and saying what to do.
func TestErrorMessages(t *testing.T) {
	code := mustNew(t, newPeer(t), nil).Code()
	p := payloadOf(t, code)
	bad := codeOf(append(p, 0))
	for _, text := range []string{
		"", "https://example.com", strings.Repeat("x", 1100), "PLUG", "PLUG2AAAA",
		code[:len(code)-1] + "0", code[:len(code)-3] + "1" + code[len(code)-2:],
		code[:len(code)-1], code[:10] + "A" + code[11:], bad, "PLUG1AAAA",
	} {
		_, err := Parse(text)
		if err == nil {
			t.Fatalf("Parse(%.20q) succeeded", text)
		}
		msg := err.Error()
		t.Log(msg)
		if msg[0] < 'a' || msg[0] > 'z' || strings.HasSuffix(msg, ".") {
			t.Errorf("message %q: want lower case and no trailing period", msg)
		}
		if !strings.Contains(msg, "; ") {
			t.Errorf("message %q does not say what to do", msg)
		}
	}
	for _, typo := range []string{"PLUGI", "plugl"} {
		if _, err := Parse(typo + code[len(Prefix):]); !errors.Is(err, ErrMistyped) || !strings.Contains(err.Error(), "digit one") {
			t.Errorf("%s for %s: err %v, want ErrMistyped about the digit one", typo, Prefix, err)
		}
	}
	_, err := Parse(code[:20] + "0" + code[21:])
	if !strings.Contains(err.Error(), "character 21") || !strings.Contains(err.Error(), "letter O") {
		t.Errorf("message %q does not point at the zero", err)
	}
}

func TestExpired(t *testing.T) {
	inv := mustNew(t, newPeer(t), nil)
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{
		{now, false},
		{inv.Expires.Add(-time.Nanosecond), false},
		{inv.Expires, true},
		{inv.Expires.Add(time.Hour), true},
	} {
		if got := inv.Expired(tc.at); got != tc.want {
			t.Errorf("Expired(%s) = %v, want %v (expires %s)", tc.at, got, tc.want, inv.Expires)
		}
	}
}

func TestSecretHash(t *testing.T) {
	inv := mustNew(t, newPeer(t), nil)
	h := inv.SecretHash()
	if want := blake3.Sum256(inv.Secret[:]); h != want {
		t.Fatalf("SecretHash = %x, want BLAKE3 %x", h, want)
	}
	if bytes.Contains(h[:], inv.Secret[:4]) {
		t.Fatal("the hash shows the secret")
	}
	if got := (Invite{Secret: inv.Secret}).SecretHash(); got != h {
		t.Fatal("SecretHash depends on more than the secret")
	}
}

func TestMarshalTextRefuses(t *testing.T) {
	id := newPeer(t)
	good := mustNew(t, id, nil)
	for _, tc := range []struct {
		name string
		f    func(inv *Invite)
	}{
		{"empty inviter", func(inv *Invite) { inv.Inviter = "" }},
		{"inviter not a multihash", func(inv *Invite) { inv.Inviter = "xyz" }},
		{"nine addresses", func(inv *Invite) { inv.Addrs = addrs(t, manyAddrs[:9]...) }},
		{"empty address", func(inv *Invite) { inv.Addrs = []ma.Multiaddr{nil} }},
		{"address over 255 bytes", func(inv *Invite) { inv.Addrs = addrs(t, "/dns/"+strings.Repeat("a", 300)) }},
		{"zero expiry", func(inv *Invite) { inv.Expires = time.Time{} }},
		{"payload over 600 bytes", func(inv *Invite) {
			inv.Addrs = addrs(t, "/dns/"+strings.Repeat("a", 250), "/dns/"+strings.Repeat("b", 250), "/dns/"+strings.Repeat("c", 250))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := good
			tc.f(&inv)
			if _, err := inv.MarshalText(); err == nil || !strings.HasPrefix(err.Error(), "encode invite: ") {
				t.Fatalf("MarshalText: err %v, want an encode error", err)
			}
			if c := inv.Code(); c != "" {
				t.Fatalf("Code() = %q, want empty", c)
			}
		})
	}
}

func TestUnmarshalText(t *testing.T) {
	inv := mustNew(t, newPeer(t), addrs(t, "/ip4/127.0.0.1/tcp/4001"))
	text, err := inv.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	var got Invite
	if err := got.UnmarshalText(text); err != nil {
		t.Fatal(err)
	}
	if d := diffInvites(got, inv); d != "" {
		t.Fatal(d)
	}
	if err := got.UnmarshalText([]byte("hello")); !errors.Is(err, ErrNotInvite) {
		t.Fatalf("err %v, want ErrNotInvite", err)
	}
}

// goldenInvites are fixed invites whose codes testdata/golden.txt pins: a
// change to the format shows as a diff there.
func goldenInvites(t testing.TB) map[string]Invite {
	var secret [SecretSize]byte
	for i := range secret {
		secret[i] = byte(i)
	}
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	id := seedPeer(t, 1)
	return map[string]Invite{
		"none":     {Inviter: id, Secret: secret, Expires: exp},
		"loopback": {Inviter: id, Secret: secret, Expires: exp, Addrs: addrs(t, "/ip4/127.0.0.1/tcp/4001")},
		"dual": {Inviter: id, Secret: secret, Expires: exp, Addrs: addrs(t,
			"/ip4/1.2.3.4/tcp/4001", "/ip4/1.2.3.4/udp/4001/quic-v1",
			"/ip6/2001:4860::8888/tcp/4001", "/ip6/2001:4860::8888/udp/4001/quic-v1")},
		"relay": {Inviter: seedPeer(t, 2), Secret: secret, Expires: exp, Addrs: addrs(t,
			"/ip4/192.168.1.20/tcp/4001",
			"/ip4/1.2.3.4/tcp/4001/p2p/"+id.String()+"/p2p-circuit")},
	}
}

const goldenFile = "testdata/golden.txt"

func readGolden(t testing.TB) map[string]string {
	t.Helper()
	f, err := os.Open(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }() // opened to read only: closing it loses nothing
	out := make(map[string]string)
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, code, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("%s: bad line %q", goldenFile, line)
		}
		out[name] = code
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGolden(t *testing.T) {
	invs := goldenInvites(t)
	if *update {
		var b strings.Builder
		b.WriteString("# name code: invite codes of goldenInvites in invite_test.go (go test -update rewrites)\n")
		for _, name := range []string{"none", "loopback", "dual", "relay"} {
			fmt.Fprintf(&b, "%s %s\n", name, invs[name].Code())
		}
		if err := os.WriteFile(filepath.FromSlash(goldenFile), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden := readGolden(t)
	if len(golden) != len(invs) {
		t.Fatalf("%s has %d codes, want %d", goldenFile, len(golden), len(invs))
	}
	// The example in the package documentation is the loopback one.
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{golden["loopback"], invs["loopback"].Inviter.String(), fmt.Sprintf("(%d characters)", len(golden["loopback"]))} {
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("the example in doc.go lacks %s", want)
		}
	}
	for name, inv := range invs {
		t.Run(name, func(t *testing.T) {
			if got, want := inv.Code(), golden[name]; got != want {
				t.Fatalf("Code() =\n%s, golden\n%s", got, want)
			}
			got, err := Parse(golden[name])
			if err != nil {
				t.Fatal(err)
			}
			if d := diffInvites(got, inv); d != "" {
				t.Fatal(d)
			}
		})
	}
}
