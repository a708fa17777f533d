package p2p

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/plug-net/plug/p2p/proof"
)

// Protocol IDs (DESIGN.md "Network").
const (
	ProtoPair  = "/plug/pair/1.0.0"
	ProtoShard = "/plug/shard/1.0.0"
	ProtoHead  = "/plug/head/1.0.0"
	ProtoFeed  = "/plug/feed/1.0.0"
)

// Wire limits. Every message is a frame: a 4-byte big-endian length, then
// that many bytes. Control messages are JSON; shard bodies and proofs are raw
// bytes whose length a control message announced.
const (
	// MaxControl bounds a JSON control message.
	MaxControl = 16 << 10
)

// ErrFrameTooLarge is wrapped when a frame announces more than its limit.
var ErrFrameTooLarge = errors.New("message too large")

// ErrBadMessage is wrapped by every error about a malformed message.
var ErrBadMessage = errors.New("malformed message")

// writeFrame writes one frame.
func writeFrame(w io.Writer, payload []byte) error {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// readFrame reads one frame of at most max bytes. The length is checked
// before anything is allocated.
func readFrame(r io.Reader, max int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if int64(n) > int64(max) {
		return nil, fmt.Errorf("%w: %d bytes announced, limit %d", ErrFrameTooLarge, n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// writeMsg writes v as a JSON control frame.
func writeMsg(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > MaxControl {
		return fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, len(b))
	}
	return writeFrame(w, b)
}

// Error codes carried in responses.
const (
	codeNotFriend  = "not_friend"
	codeQuota      = "quota"
	codeNotFound   = "not_found"
	codeBadRequest = "bad_request"
	codeMismatch   = "mismatch"
	codeInternal   = "internal"
	codeUsed       = "used"
	codeExpired    = "expired"
	codeUnknown    = "unknown_invite"
	codeTooLarge   = "too_large"
	codeFull       = "full"
)

// response answers every request. Only the fields of its operation are set.
type response struct {
	OK     bool   `json:"ok"`
	Code   string `json:"code,omitempty"`
	Msg    string `json:"msg,omitempty"`
	Size   int64  `json:"size,omitempty"`
	Has    bool   `json:"has,omitempty"`
	Quota  int64  `json:"quota,omitempty"`
	Used   int64  `json:"used,omitempty"`
	Shards int    `json:"shards,omitempty"`
}

func decodeResponse(b []byte) (response, error) {
	var r response
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if r.Size < 0 || r.Quota < 0 || r.Used < 0 || r.Shards < 0 {
		return r, fmt.Errorf("%w: negative count", ErrBadMessage)
	}
	if len(r.Msg) > 1024 || len(r.Code) > 64 {
		return r, fmt.Errorf("%w: oversized text", ErrBadMessage)
	}
	return r, nil
}

// readResponse reads and checks a response frame.
func readResponse(r io.Reader) (response, error) {
	b, err := readFrame(r, MaxControl)
	if err != nil {
		return response{}, err
	}
	return decodeResponse(b)
}

// Shard operations.
const (
	opPut    = "put"
	opGet    = "get"
	opHas    = "has"
	opDelete = "delete"
	opProve  = "prove"
	opUsage  = "usage"
)

// shardRequest is the first message of a /plug/shard stream.
type shardRequest struct {
	Op     string `json:"op"`
	ID     string `json:"id,omitempty"` // hex shard ID
	Size   int64  `json:"size,omitempty"`
	Offset uint64 `json:"offset,omitempty"`
	Length uint64 `json:"length,omitempty"`
}

// decodeShardRequest parses and validates a shard request.
func decodeShardRequest(b []byte) (shardRequest, [32]byte, error) {
	var (
		q  shardRequest
		id [32]byte
	)
	if err := json.Unmarshal(b, &q); err != nil {
		return q, id, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	switch q.Op {
	case opUsage:
		return q, id, nil
	case opPut, opGet, opHas, opDelete, opProve:
	default:
		return q, id, fmt.Errorf("%w: unknown operation %.32q", ErrBadMessage, q.Op)
	}
	if len(q.ID) != 64 {
		return q, id, fmt.Errorf("%w: shard ID of %d characters, want 64 hex digits", ErrBadMessage, len(q.ID))
	}
	if _, err := hex.Decode(id[:], []byte(q.ID)); err != nil {
		return q, id, fmt.Errorf("%w: shard ID is not hex", ErrBadMessage)
	}
	switch q.Op {
	case opPut:
		if q.Size < 1 || q.Size > proof.MaxShardSize {
			return q, id, fmt.Errorf("%w: shard of %d bytes, want 1 to %d", ErrBadMessage, q.Size, proof.MaxShardSize)
		}
	case opProve:
		if q.Length < 1 || q.Length > proof.MaxLength || q.Offset > proof.MaxShardSize {
			return q, id, fmt.Errorf("%w: proof of %d bytes at %d, want 1 to %d bytes within a shard", ErrBadMessage, q.Length, q.Offset, proof.MaxLength)
		}
	}
	return q, id, nil
}

// pairRequest redeems an invite: the acceptor sends it to the inviter.
type pairRequest struct {
	Secret     string `json:"secret"`     // hex, 16 bytes
	Name       string `json:"name"`       // the acceptor's name
	Rendezvous string `json:"rendezvous"` // hex, the acceptor's rendezvous key
	Quota      int64  `json:"quota"`      // what the acceptor gives the inviter
}

// pairResponse answers a pairRequest.
type pairResponse struct {
	response
	Name       string `json:"name,omitempty"`
	Rendezvous string `json:"rendezvous,omitempty"`
}

const maxName = 64

func decodeHex32(s string) ([32]byte, error) {
	var k [32]byte
	if len(s) != 64 {
		return k, fmt.Errorf("%w: key of %d characters, want 64 hex digits", ErrBadMessage, len(s))
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return k, fmt.Errorf("%w: key is not hex", ErrBadMessage)
	}
	return k, nil
}

// decodePairRequest parses and validates a pair request.
func decodePairRequest(b []byte) (q pairRequest, secret [16]byte, rendezvous [32]byte, err error) {
	if err = json.Unmarshal(b, &q); err != nil {
		return q, secret, rendezvous, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if len(q.Secret) != 32 {
		return q, secret, rendezvous, fmt.Errorf("%w: secret of %d characters, want 32 hex digits", ErrBadMessage, len(q.Secret))
	}
	if _, err = hex.Decode(secret[:], []byte(q.Secret)); err != nil {
		return q, secret, rendezvous, fmt.Errorf("%w: secret is not hex", ErrBadMessage)
	}
	if rendezvous, err = decodeHex32(q.Rendezvous); err != nil {
		return q, secret, rendezvous, err
	}
	if q.Quota < 0 {
		return q, secret, rendezvous, fmt.Errorf("%w: negative quota", ErrBadMessage)
	}
	q.Name = cleanName(q.Name)
	return q, secret, rendezvous, nil
}

// decodePairResponse parses and validates a pair response.
func decodePairResponse(b []byte) (pairResponse, [32]byte, error) {
	var r pairResponse
	var rdv [32]byte
	if err := json.Unmarshal(b, &r); err != nil {
		return r, rdv, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if _, err := decodeResponse(b); err != nil {
		return r, rdv, err
	}
	if !r.OK {
		return r, rdv, nil
	}
	rdv, err := decodeHex32(r.Rendezvous)
	if err != nil {
		return r, rdv, err
	}
	r.Name = cleanName(r.Name)
	return r, rdv, nil
}

// cleanName makes a friend-supplied name safe to store and show: valid
// UTF-8, no control characters, at most maxName runes. Escaping for HTML is
// the UI's job.
func cleanName(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if len(out) == maxName {
			break
		}
		if r == '\uFFFD' || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') {
			continue
		}
		out = append(out, r)
	}
	return string(out)
}

// WriteFrame writes one frame (a 4-byte big-endian length, then the bytes),
// for protocols defined above this package.
func WriteFrame(w io.Writer, payload []byte) error { return writeFrame(w, payload) }

// ReadFrame reads one frame of at most max bytes; the length is checked
// before anything is allocated.
func ReadFrame(r io.Reader, max int) ([]byte, error) { return readFrame(r, max) }
