package invite

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// hostilePayloads are hand-made payloads at and past the format's limits.
func hostilePayloads(tb testing.TB) []payload {
	id := []byte(seedPeer(tb, 3))
	tcp := addrs(tb, "/ip4/127.0.0.1/tcp/4001")[0].Bytes()
	long := addrs(tb, "/dns/"+strings.Repeat("a", 252))[0].Bytes() // 255 bytes
	return []payload{
		{version: 1, id: id, idLen: -1, count: -1},
		{version: 1, id: id, idLen: -1, count: -1, addrs: [][]byte{tcp, tcp}},
		{version: 1, id: id, idLen: -1, count: 255, addrs: [][]byte{tcp}},
		{version: 1, id: id, idLen: -1, count: -1, addrs: [][]byte{long, long}},
		{version: 1, id: id, idLen: -1, count: 1, trailer: append([]byte{255}, long...)},
		{version: 1, id: id, idLen: 255, count: -1},
		{version: 1, idLen: -1, count: -1},
		{version: 2, id: id, idLen: -1, count: -1},
		{version: 1, id: id, idLen: -1, count: -1, trailer: make([]byte, 600)},
	}
}

// FuzzParse checks that Parse never panics on any text, that every refusal
// is one of the four kinds, and that whatever it accepts is canonical.
func FuzzParse(f *testing.F) {
	for _, code := range readGolden(f) {
		f.Add(code)
		f.Add(strings.ToLower(code))
		f.Add(code[:len(code)/2] + " - " + code[len(code)/2:])
	}
	for _, p := range hostilePayloads(f) {
		f.Add(codeOf(p.bytes()))
	}
	for _, s := range []string{
		"", "PLUG", "PLUG1", "PLUG1A", "PLUG1AA", "PLUG1AAAAAAAA", "PLUG2", "PLUGX", "plug1 ",
		"https://example.com/", strings.Repeat("A", MaxCodeLen+1), "PLUG1" + strings.Repeat("7", 1019),
		"PLUG1\u200bAAAA", "PLUG1\xff\xfe", codeOf(nil), codeOf([]byte{1}),
	} {
		f.Add(s)
	}
	f.Fuzz(checkParse)
}

// FuzzParsePayload fuzzes the payload behind a valid checksum, which random
// text seldom gets past.
func FuzzParsePayload(f *testing.F) {
	for _, code := range readGolden(f) {
		f.Add(payloadOf(f, code))
	}
	for _, p := range hostilePayloads(f) {
		f.Add(p.bytes())
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		if len(p) > MaxPayload+16 {
			return // too long for a code: refused on its length alone
		}
		checkParse(t, codeOf(p))
	})
}

// checkParse checks what Parse makes of s: either a refusal of one of the
// four kinds, or an invite that encodes back to the very code it was read
// from (less case and separators), which reads as the same invite.
func checkParse(t *testing.T, s string) {
	inv, err := Parse(s)
	if err != nil {
		if !errors.Is(err, ErrNotInvite) && !errors.Is(err, ErrMistyped) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("Parse(%q): error of no kind: %v", s, err)
		}
		return
	}
	code := inv.Code()
	if code == "" {
		_, err := inv.MarshalText()
		t.Fatalf("Parse(%q) accepted an invite that does not encode: %v", s, err)
	}
	if text, _ := normalize(s); !bytes.Equal(text, []byte(code)) {
		t.Fatalf("Parse(%q) then Code() = %q: not the same code", s, code)
	}
	again, err := Parse(code)
	if err != nil {
		t.Fatalf("Parse(Code()) of %q: %v", code, err)
	}
	if d := diffInvites(again, inv); d != "" {
		t.Fatalf("Parse(Code()) differs: %s", d)
	}
	_ = inv.Expired(time.Now())
}
