package invite

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/zeebo/blake3"
)

// Limits of the code format.
const (
	// Prefix starts every invite code of this format.
	Prefix = "PLUG1"
	// Version is the payload's version byte.
	Version = 1
	// MaxCodeLen is the longest text that Parse reads, in bytes,
	// separators included.
	MaxCodeLen = 1024
	// MaxPayload is the largest payload, in bytes, checksum not included.
	MaxPayload = 600
	// MaxAddrs is the most addresses an invite carries.
	MaxAddrs = 8
	// MaxAddrLen is the longest address, in bytes of its binary form.
	MaxAddrLen = 255
	// SecretSize is the size of the secret in bytes (128 bits).
	SecretSize = 16
)

const (
	checksumSize = 4
	maxPeerIDLen = 255
	// fixedSize is the payload without the peer ID and the addresses:
	// version, peer ID length, secret, expiry, address count.
	fixedSize = 1 + 1 + SecretSize + 4 + 1
)

// Errors that Parse returns, each wrapped in a message for a person.
var (
	// ErrNotInvite means the text is not an invite code at all: some other
	// text or QR code.
	ErrNotInvite = errors.New("this is not a plug invite code")
	// ErrMistyped means the text looks like an invite code but was copied
	// wrong: a character is wrong, missing or extra.
	ErrMistyped = errors.New("the invite code is mistyped")
	// ErrVersion means the code was made by a newer version of plug.
	ErrVersion = errors.New("the invite code was made by a newer version of plug")
	// ErrMalformed means the code was copied right (its checksum matches)
	// but its content breaks the format: the program that made it is faulty.
	ErrMalformed = errors.New("the invite code is malformed")
)

// Errors of accepting an invite that a person must be told apart; the
// inviting plug answers them.
var (
	ErrUsed    = errors.New("this invite was already used: ask your friend for a new one")
	ErrExpired = errors.New("this invite has expired: ask your friend for a new one")
	ErrUnknown = errors.New("the inviting plug does not know this invite (it may be from an older installation): ask your friend for a new one")
	ErrOwn     = errors.New("this invite was made by this plug: give it to a friend, who accepts it on their plug")
)

// encoding is RFC 4648 base32, upper case, no padding.
var encoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Invite is a one-time invitation to pair with a plug.
type Invite struct {
	// Inviter is the peer ID of the plug that made the invite.
	Inviter peer.ID
	// Addrs are addresses at which the inviter may be reached, best first.
	// There may be none: the inviter can be found in the DHT by its ID.
	Addrs []ma.Multiaddr
	// Secret proves to the inviter that the bearer holds the invite.
	Secret [SecretSize]byte
	// Expires is when the invite stops being valid, to the second.
	Expires time.Time
}

// New makes an invite from inviter that expires ttl after now (truncated to
// the second), with a random secret.
//
// Of addrs it keeps at most MaxAddrs, and only as many as fit in the
// payload, in this order of preference: public addresses, then addresses
// through a relay at a public address (how a plug behind a home router is
// reached), then private (LAN and link-local) ones, then loopback, then any
// other kind, then the other relayed ones ranked the same way by their
// relay's address. It keeps the given order within a rank, and
// drops empty, duplicate, unspecified (0.0.0.0, ::) and over-long
// (MaxAddrLen) addresses.
func New(inviter peer.ID, addrs []ma.Multiaddr, ttl time.Duration, now time.Time) (Invite, error) {
	if err := checkPeerID(inviter); err != nil {
		return Invite{}, fmt.Errorf("make invite: %w", err)
	}
	if ttl < time.Second {
		return Invite{}, fmt.Errorf("make invite: lifetime %v is shorter than a second", ttl)
	}
	exp := now.Add(ttl).Unix()
	if exp < 0 || exp > math.MaxUint32 {
		return Invite{}, fmt.Errorf("make invite: expiry %s is outside the years 1970 to 2106", now.Add(ttl).UTC().Format(time.RFC3339))
	}
	inv := Invite{
		Inviter: inviter,
		Addrs:   pickAddrs(addrs, MaxPayload-fixedSize-len(inviter)),
		Expires: time.Unix(exp, 0).UTC(),
	}
	rand.Read(inv.Secret[:]) // never fails: it crashes the program instead
	return inv, nil
}

// pickAddrs returns at most MaxAddrs of addrs in order of preference, whose
// encoded entries (length byte included) take at most budget bytes.
func pickAddrs(addrs []ma.Multiaddr, budget int) []ma.Multiaddr {
	type ranked struct {
		a    ma.Multiaddr
		rank int
	}
	var cands []ranked
	seen := make(map[string]bool)
	for _, a := range addrs {
		b := a.Bytes()
		if len(b) == 0 || len(b) > MaxAddrLen || seen[string(b)] || manet.IsIPUnspecified(a) {
			continue
		}
		seen[string(b)] = true
		cands = append(cands, ranked{a, addrRank(a)})
	}
	slices.SortStableFunc(cands, func(x, y ranked) int { return x.rank - y.rank })
	var out []ma.Multiaddr
	for _, c := range cands {
		n := 1 + len(c.a.Bytes())
		if n > budget {
			continue // a shorter one further down may still fit
		}
		budget -= n
		out = append(out, c.a)
		if len(out) == MaxAddrs {
			break
		}
	}
	return out
}

// addrRank orders addresses for New: lower is better. A public address
// comes first; then an address through a relay at a public address (what
// reaches a plug behind a home router); then private (LAN), loopback and
// other direct addresses; then other relayed ones.
func addrRank(a ma.Multiaddr) int {
	r := 3
	switch {
	case manet.IsIPLoopback(a):
		r = 2
	case manet.IsPrivateAddr(a):
		r = 1
	case manet.IsPublicAddr(a):
		r = 0
	}
	for _, c := range a {
		if c.Code() == ma.P_CIRCUIT {
			if r == 0 {
				return 1
			}
			return 5 + r
		}
	}
	if r == 0 {
		return 0
	}
	return r + 1
}

// Expired reports whether the invite has expired at now.
func (inv Invite) Expired(now time.Time) bool {
	return !now.Before(inv.Expires)
}

// SecretHash is the BLAKE3-256 hash of the secret: what the inviter keeps to
// recognise the invite when it is redeemed, never the secret itself.
func (inv Invite) SecretHash() [32]byte {
	return blake3.Sum256(inv.Secret[:])
}

// Code returns the invite code. Invites made by New or Parse always encode;
// for an invite that breaks the format's limits Code returns the empty
// string, and MarshalText says why.
func (inv Invite) Code() string {
	b, err := inv.MarshalText()
	if err != nil {
		return ""
	}
	return string(b)
}

// MarshalText encodes the invite as its code. It fails when the invite
// breaks the format: an invalid inviter, more than MaxAddrs addresses, an
// empty or over-long address, an expiry outside what 32 bits of unix
// seconds hold, or a payload over MaxPayload bytes.
func (inv Invite) MarshalText() ([]byte, error) {
	p, err := inv.payload()
	if err != nil {
		return nil, fmt.Errorf("encode invite: %w", err)
	}
	sum := blake3.Sum256(p)
	p = append(p, sum[:checksumSize]...)
	out := make([]byte, len(Prefix)+encoding.EncodedLen(len(p)))
	copy(out, Prefix)
	encoding.Encode(out[len(Prefix):], p)
	return out, nil
}

// UnmarshalText parses an invite code into inv, as Parse does.
func (inv *Invite) UnmarshalText(text []byte) error {
	v, err := Parse(string(text))
	if err != nil {
		return err
	}
	*inv = v
	return nil
}

// payload returns the binary payload of the invite, checked against the
// format.
func (inv Invite) payload() ([]byte, error) {
	if err := checkPeerID(inv.Inviter); err != nil {
		return nil, err
	}
	if len(inv.Addrs) > MaxAddrs {
		return nil, fmt.Errorf("%d addresses, more than %d", len(inv.Addrs), MaxAddrs)
	}
	exp := inv.Expires.Unix()
	if exp < 0 || exp > math.MaxUint32 {
		return nil, fmt.Errorf("expiry %s is outside the years 1970 to 2106", inv.Expires.UTC().Format(time.RFC3339))
	}
	p := make([]byte, 0, 64)
	p = append(p, Version, byte(len(inv.Inviter)))
	p = append(p, inv.Inviter...)
	p = append(p, inv.Secret[:]...)
	p = binary.BigEndian.AppendUint32(p, uint32(exp))
	p = append(p, byte(len(inv.Addrs)))
	for i, a := range inv.Addrs {
		b := a.Bytes()
		if len(b) == 0 || len(b) > MaxAddrLen {
			return nil, fmt.Errorf("address %d is %d bytes long, not 1 to %d", i+1, len(b), MaxAddrLen)
		}
		p = append(p, byte(len(b)))
		p = append(p, b...)
	}
	if len(p) > MaxPayload {
		return nil, fmt.Errorf("payload of %d bytes is over the limit of %d", len(p), MaxPayload)
	}
	return p, nil
}

// checkPeerID checks that id is a multihash that fits its length byte.
func checkPeerID(id peer.ID) error {
	if len(id) == 0 {
		return errors.New("the inviter's peer ID is empty")
	}
	if len(id) > maxPeerIDLen {
		return fmt.Errorf("the inviter's peer ID is %d bytes long, over the limit of %d", len(id), maxPeerIDLen)
	}
	if _, err := peer.IDFromBytes([]byte(id)); err != nil {
		return fmt.Errorf("the inviter's peer ID is invalid: %w", err)
	}
	return nil
}

// Parse reads an invite code, as a person may have typed, pasted or scanned
// it. It checks the code's form, never whether the invite has expired (see
// Expired) or was already used. Its errors wrap ErrNotInvite, ErrMistyped,
// ErrVersion or ErrMalformed.
func Parse(code string) (Invite, error) {
	if len(code) > MaxCodeLen {
		return Invite{}, fmt.Errorf("%w: the text is %d characters long, and invite codes are at most %d characters; copy only the code", ErrNotInvite, len(code), MaxCodeLen)
	}
	text, pos := normalize(code)
	if len(text) == 0 {
		return Invite{}, fmt.Errorf("%w: the text is empty; paste the code your friend sent you", ErrNotInvite)
	}
	if bytes.HasPrefix(text, []byte("PLUGI")) || bytes.HasPrefix(text, []byte("PLUGL")) {
		return Invite{}, fmt.Errorf("%w: it starts with %q, and invite codes start with %q, with the digit one; copy it again", ErrMistyped, text[:5], Prefix)
	}
	if !bytes.HasPrefix(text, []byte("PLUG")) || len(text) > 4 && !isDigit(text[4]) {
		return Invite{}, fmt.Errorf("%w: invite codes start with %q; check that you scanned or pasted the code your friend sent you", ErrNotInvite, Prefix)
	}
	if len(text) == 4 {
		return Invite{}, fmt.Errorf("%w: it has only its first 4 characters; copy all of it again", ErrMistyped)
	}
	switch d := text[4]; {
	case d >= '2':
		return Invite{}, fmt.Errorf("%w (%s); update plug, then accept the invite again", ErrVersion, text[:5])
	case d != '1':
		return Invite{}, fmt.Errorf("%w: invite codes start with %q, never %q", ErrNotInvite, Prefix, text[:5])
	}
	body := text[len(Prefix):]
	for i, c := range body {
		if !('A' <= c && c <= 'Z' || '2' <= c && c <= '7') {
			return Invite{}, fmt.Errorf("%w: character %d, %s, is not used in invite codes, which have only the letters A to Z and the digits 2 to 7; copy it again",
				ErrMistyped, pos[len(Prefix)+i], describeChar(code, pos[len(Prefix)+i]))
		}
	}
	raw := make([]byte, encoding.DecodedLen(len(body)))
	n, err := encoding.Decode(raw, body)
	// A length that base32 never makes, or unused low bits that are not
	// zero: either way the code is not as it was made.
	if err != nil || encoding.EncodeToString(raw[:n]) != string(body) {
		return Invite{}, fmt.Errorf("%w: a character is missing, extra or wrong; copy it again", ErrMistyped)
	}
	raw = raw[:n]
	if len(raw) <= checksumSize {
		return Invite{}, fmt.Errorf("%w: it is far too short, so part of it is missing; copy all of it again", ErrMistyped)
	}
	p, sum := raw[:len(raw)-checksumSize], raw[len(raw)-checksumSize:]
	if want := blake3.Sum256(p); !bytes.Equal(sum, want[:checksumSize]) {
		return Invite{}, fmt.Errorf("%w: its checksum does not match; copy it again", ErrMistyped)
	}
	switch {
	case p[0] > Version:
		return Invite{}, fmt.Errorf("%w (format %d; this plug reads format %d); update plug, then accept the invite again", ErrVersion, p[0], Version)
	case p[0] < Version:
		return Invite{}, malformed("format %d does not exist", p[0])
	}
	if len(p) > MaxPayload {
		return Invite{}, malformed("its content is %d bytes, over the limit of %d", len(p), MaxPayload)
	}
	return decodePayload(p[1:])
}

// decodePayload decodes the payload after its version byte.
func decodePayload(p []byte) (Invite, error) {
	var inv Invite
	r := reader{b: p}
	idLen := r.byte()
	id := r.next(int(idLen))
	if r.short {
		return Invite{}, malformed("it ends inside the inviter's peer ID")
	}
	if err := checkPeerID(peer.ID(id)); err != nil {
		return Invite{}, malformed("%v", err)
	}
	inv.Inviter = peer.ID(id)
	copy(inv.Secret[:], r.next(SecretSize))
	exp := r.next(4)
	count := r.byte()
	if r.short {
		return Invite{}, malformed("it ends before the list of addresses")
	}
	inv.Expires = time.Unix(int64(binary.BigEndian.Uint32(exp)), 0).UTC()
	if count > MaxAddrs {
		return Invite{}, malformed("it claims %d addresses, more than %d", count, MaxAddrs)
	}
	if count > 0 {
		inv.Addrs = make([]ma.Multiaddr, 0, count)
	}
	for i := range int(count) {
		l := r.byte()
		b := r.next(int(l))
		if r.short {
			return Invite{}, malformed("it ends inside address %d", i+1)
		}
		if l == 0 {
			return Invite{}, malformed("address %d is empty", i+1)
		}
		a, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			return Invite{}, malformed("address %d is not a valid multiaddr: %v", i+1, err)
		}
		if !bytes.Equal(a.Bytes(), b) {
			return Invite{}, malformed("address %d is not in canonical form", i+1)
		}
		inv.Addrs = append(inv.Addrs, a)
	}
	if len(r.b) > 0 {
		return Invite{}, malformed("it has data after the last address")
	}
	return inv, nil
}

// malformed wraps ErrMalformed with what is wrong and what to do.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s; the plug that made it may be faulty: ask your friend for a new invite", ErrMalformed, fmt.Sprintf(format, args...))
}

// reader takes bytes off the front of b; once it runs short it stays short
// and returns zeros.
type reader struct {
	b     []byte
	short bool
}

func (r *reader) next(n int) []byte {
	if r.short || n > len(r.b) {
		r.short = true
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte { return r.next(1)[0] }

// normalize upper-cases code and drops the separators a person may add
// (white space, dashes, zero-width spaces). It returns the text and, for each
// of its bytes, the 1-based position of its character in code. Characters
// outside ASCII are kept as one byte 0xFF, which no code has.
func normalize(code string) (text []byte, pos []int) {
	text = make([]byte, 0, len(code))
	pos = make([]int, 0, len(code))
	n := 0
	for _, r := range code {
		n++
		switch {
		case unicode.IsSpace(r) || unicode.Is(unicode.Pd, r) || r == '\u200b' || r == '\ufeff':
			continue
		case r >= utf8.RuneSelf:
			text = append(text, 0xff)
		case 'a' <= r && r <= 'z':
			text = append(text, byte(r-'a'+'A'))
		default:
			text = append(text, byte(r))
		}
		pos = append(pos, n)
	}
	return text, pos
}

// describeChar names the n-th character (1-based) of s for a person.
func describeChar(s string, n int) string {
	for _, r := range s {
		if n--; n == 0 {
			switch {
			case r == '0':
				return `"0" (zero; did you mean the letter O?)`
			case r == '1':
				return `"1" (one; did you mean the letter I?)`
			case r == '8':
				return `"8" (eight; did you mean the letter B?)`
			case unicode.IsPrint(r):
				return fmt.Sprintf("%q", r)
			default:
				return fmt.Sprintf("%U", r)
			}
		}
	}
	return "?"
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
