package p2p

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/plug-net/plug/p2p/proof"
)

func frame(n uint32, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, n)
	return append(b, body...)
}

func TestReadFrameLimits(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"ok", frame(3, []byte("abc")), 10, nil},
		{"empty frame", frame(0, nil), 10, nil},
		{"over the limit", frame(11, bytes.Repeat([]byte{1}, 11)), 10, ErrFrameTooLarge},
		{"negative as int32", frame(0x80000000, nil), MaxControl, ErrFrameTooLarge},
		{"all ones", frame(0xFFFFFFFF, nil), proof.MaxShardSize, ErrFrameTooLarge},
		{"truncated body", frame(5, []byte("ab")), 10, io.ErrUnexpectedEOF},
		{"truncated header", []byte{0, 0}, 10, io.ErrUnexpectedEOF},
		{"nothing", nil, 10, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readFrame(bytes.NewReader(tt.in), tt.max)
			if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
				t.Fatalf("readFrame = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeShardRequest(t *testing.T) {
	id := strings.Repeat("ab", 32)
	tests := []struct {
		name string
		req  string
		ok   bool
	}{
		{"put", `{"op":"put","id":"` + id + `","size":100}`, true},
		{"get", `{"op":"get","id":"` + id + `"}`, true},
		{"prove", `{"op":"prove","id":"` + id + `","offset":5,"length":65536}`, true},
		{"usage", `{"op":"usage"}`, true},
		{"unknown op", `{"op":"format-disk","id":"` + id + `"}`, false},
		{"short id", `{"op":"get","id":"abcd"}`, false},
		{"non-hex id", `{"op":"get","id":"` + strings.Repeat("zz", 32) + `"}`, false},
		{"put of nothing", `{"op":"put","id":"` + id + `","size":0}`, false},
		{"negative size", `{"op":"put","id":"` + id + `","size":-1}`, false},
		{"huge size", `{"op":"put","id":"` + id + `","size":9223372036854775807}`, false},
		{"proof too long", `{"op":"prove","id":"` + id + `","offset":0,"length":65537}`, false},
		{"proof of nothing", `{"op":"prove","id":"` + id + `","offset":0,"length":0}`, false},
		{"not json", `put abc`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := decodeShardRequest([]byte(tt.req))
			if (err == nil) != tt.ok {
				t.Fatalf("decodeShardRequest(%s) = %v, want ok=%v", tt.req, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap ErrBadMessage", err)
			}
		})
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"Ann":                       "Ann",
		"a\x00b\nc\u202ed":          "abcd",
		"\xff\xfeok":                "ok",
		strings.Repeat("é", 100):    strings.Repeat("é", maxName),
		"<script>alert(1)</script>": "<script>alert(1)</script>", // escaping is the UI's job
	} {
		if got := cleanName(in); got != want {
			t.Errorf("cleanName(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzReadFrame: no length field, however negative or huge, makes readFrame
// allocate past its limit or panic.
func FuzzReadFrame(f *testing.F) {
	f.Add(frame(3, []byte("abc")), 16)
	f.Add(frame(0xFFFFFFFF, nil), proof.MaxShardSize)
	f.Add(frame(0x80000000, []byte("x")), MaxControl)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max < 0 || max > 1<<20 {
			max = 1 << 20
		}
		b, err := readFrame(bytes.NewReader(in), max)
		if err == nil && len(b) > max {
			t.Fatalf("read %d bytes past the limit %d", len(b), max)
		}
	})
}

func FuzzDecodeShardRequest(f *testing.F) {
	id := strings.Repeat("0f", 32)
	f.Add([]byte(`{"op":"put","id":"` + id + `","size":100}`))
	f.Add([]byte(`{"op":"prove","id":"` + id + `","offset":18446744073709551615,"length":1}`))
	f.Add([]byte(`{"op":"put","id":"` + id + `","size":-9223372036854775808}`))
	f.Add([]byte(`{"op":"usage"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, _, err := decodeShardRequest(b)
		if err != nil {
			return
		}
		if q.Op == opPut && (q.Size < 1 || q.Size > proof.MaxShardSize) {
			t.Fatalf("accepted a put of %d bytes", q.Size)
		}
		if q.Op == opProve && (q.Length < 1 || q.Length > proof.MaxLength) {
			t.Fatalf("accepted a proof of %d bytes", q.Length)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte(`{"ok":true,"size":10}`))
	f.Add([]byte(`{"ok":false,"code":"quota","msg":"no"}`))
	f.Add([]byte(`{"ok":true,"size":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeResponse(b)
		if err == nil && (r.Size < 0 || r.Used < 0 || len(r.Msg) > 1024) {
			t.Fatalf("accepted %+v", r)
		}
	})
}

func FuzzDecodePair(f *testing.F) {
	rdv := strings.Repeat("11", 32)
	f.Add([]byte(`{"secret":"` + strings.Repeat("22", 16) + `","name":"ann","rendezvous":"` + rdv + `","quota":10}`))
	f.Add([]byte(`{"ok":true,"name":"bob","rendezvous":"` + rdv + `","quota":5}`))
	f.Add([]byte(`{"secret":"","quota":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, _, _, err := decodePairRequest(b); err == nil {
			if q.Quota < 0 || !utf8.ValidString(q.Name) || utf8.RuneCountInString(q.Name) > maxName {
				t.Fatalf("accepted request %+v", q)
			}
		}
		if r, _, err := decodePairResponse(b); err == nil && r.OK {
			if !utf8.ValidString(r.Name) || utf8.RuneCountInString(r.Name) > maxName {
				t.Fatalf("accepted response %+v", r)
			}
		}
		var v any
		_ = json.Unmarshal(b, &v)
	})
}
