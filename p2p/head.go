package p2p

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/plug-net/plug/crypto"
	"github.com/plug-net/plug/store/kv"
)

// Head records. The owner's catalog root travels as a signed envelope that
// friends can check without reading it:
//
//	"PLHD" | version u64 | time (unix ns) i64 | peer ID length u8 | owner peer ID
//	| ciphertext length u32 | ciphertext (age, to the owner) | Ed25519 signature (64)
//
// integers big-endian; the signature (context "head") covers every byte
// before it and is made by the owner's identity key, whose public half is in
// the peer ID. A friend keeps the highest version it has seen for each
// owner; a restore takes the highest valid version among all friends.
const (
	headMagic = "PLHD"
	// MaxHeadCiphertext bounds the encrypted catalog in a head record.
	MaxHeadCiphertext = 32 << 20
	// MaxHead bounds a whole head envelope.
	MaxHead = MaxHeadCiphertext + 512
)

// ErrBadHead is wrapped by every error about a head envelope that is
// malformed or not signed by its owner.
var ErrBadHead = errors.New("bad head record")

// Head is an opened head envelope: signature checked, contents still
// encrypted.
type Head struct {
	Owner      peer.ID
	Version    uint64
	Time       time.Time
	Ciphertext []byte
}

// SealHead signs a head record.
func SealHead(key ed25519.PrivateKey, owner peer.ID, version uint64, t time.Time, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) > MaxHeadCiphertext {
		return nil, fmt.Errorf("seal head: %d bytes of catalog, more than %d", len(ciphertext), MaxHeadCiphertext)
	}
	b := make([]byte, 0, len(ciphertext)+200)
	b = append(b, headMagic...)
	b = binary.BigEndian.AppendUint64(b, version)
	b = binary.BigEndian.AppendUint64(b, uint64(t.UnixNano()))
	b = append(b, byte(len(owner)))
	b = append(b, owner...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ciphertext)))
	b = append(b, ciphertext...)
	return append(b, crypto.Sign(key, "head", b)...), nil
}

// OpenHead parses a head envelope and checks its signature against the
// owner named in it. Callers must also check that the owner is who they
// expect.
func OpenHead(b []byte) (Head, error) {
	var h Head
	if len(b) > MaxHead {
		return h, fmt.Errorf("%w: %d bytes", ErrBadHead, len(b))
	}
	if len(b) < 4+8+8+1+4+ed25519.SignatureSize || string(b[:4]) != headMagic {
		return h, fmt.Errorf("%w: not a head record", ErrBadHead)
	}
	body, sig := b[:len(b)-ed25519.SignatureSize], b[len(b)-ed25519.SignatureSize:]
	p := body[4:]
	h.Version = binary.BigEndian.Uint64(p)
	h.Time = time.Unix(0, int64(binary.BigEndian.Uint64(p[8:])))
	n := int(p[16])
	p = p[17:]
	if len(p) < n+4 {
		return h, fmt.Errorf("%w: truncated", ErrBadHead)
	}
	owner, err := peer.IDFromBytes(p[:n])
	if err != nil {
		return h, fmt.Errorf("%w: owner: %v", ErrBadHead, err)
	}
	p = p[n:]
	cl := binary.BigEndian.Uint32(p)
	p = p[4:]
	if uint64(cl) != uint64(len(p)) {
		return h, fmt.Errorf("%w: ciphertext of %d bytes announced, %d present", ErrBadHead, cl, len(p))
	}
	pub, err := crypto.PeerPublicKey(owner)
	if err != nil {
		return h, fmt.Errorf("%w: %v", ErrBadHead, err)
	}
	if err := crypto.Verify(pub, "head", body, sig); err != nil {
		return h, fmt.Errorf("%w: %v", ErrBadHead, err)
	}
	h.Owner, h.Ciphertext = owner, p
	return h, nil
}

// headRequest is the first message of a /plug/head stream.
type headRequest struct {
	Op   string `json:"op"` // "put" or "get"
	Size int64  `json:"size,omitempty"`
}

// handleHead keeps the newest head record of each friend and gives it back
// to that friend only.
func (n *Node) handleHead(s network.Stream) {
	defer s.Close()
	owner := s.Conn().RemotePeer()
	if !n.friends.isFriend(owner) {
		n.log.Warn("refused a stranger on the head protocol", "peer", owner.String())
		writeMsg(s, response{Code: codeNotFriend, Msg: "this plug does not list you as a friend"})
		return
	}
	s.SetDeadline(time.Now().Add(shardDeadline))
	var req headRequest
	b, err := readFrame(s, MaxControl)
	if err != nil {
		return
	}
	if err := json.Unmarshal(b, &req); err != nil || (req.Op != opPut && req.Op != opGet) || req.Size < 0 || req.Size > MaxHead {
		writeMsg(s, response{Code: codeBadRequest, Msg: "bad head request"})
		return
	}
	switch req.Op {
	case opGet:
		env, err := n.db.Get(kv.Heads, []byte(owner))
		if errors.Is(err, kv.ErrNotFound) {
			writeMsg(s, response{Code: codeNotFound, Msg: "no head record kept for you"})
			return
		}
		if err != nil {
			writeMsg(s, response{Code: codeInternal, Msg: err.Error()})
			return
		}
		if writeMsg(s, response{OK: true, Size: int64(len(env))}) == nil {
			s.Write(env)
		}
	case opPut:
		if err := writeMsg(s, response{OK: true}); err != nil {
			return
		}
		env, err := readFrame(s, MaxHead)
		if err != nil {
			return
		}
		h, err := OpenHead(env)
		if err != nil || h.Owner != owner {
			n.log.Warn("refused a bad head record", "peer", owner.String(), "err", err)
			writeMsg(s, response{Code: codeMismatch, Msg: "head record not signed by you"})
			return
		}
		err = n.db.Update(func(tx *kv.Tx) error {
			old, err := tx.Get(kv.Heads, []byte(owner))
			if err == nil {
				if oh, err := OpenHead(old); err == nil && oh.Version >= h.Version {
					return nil // keep the newer one
				}
			}
			return tx.Put(kv.Heads, []byte(owner), env)
		})
		if err == nil {
			err = n.db.Sync()
		}
		if err != nil {
			writeMsg(s, response{Code: codeInternal, Msg: err.Error()})
			return
		}
		writeMsg(s, response{OK: true})
	}
}

// PutHead gives the friend the owner's newest head record to keep; it
// returns once the friend has it on disk.
func (t *FriendTarget) PutHead(ctx context.Context, env []byte) error {
	s, err := t.openProto(ctx, ProtoHead, headRequest{Op: opPut, Size: int64(len(env))})
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := t.answer(s, "put head", [32]byte{}); err != nil {
		return err
	}
	if err := writeFrame(s, env); err != nil {
		s.Reset()
		return fmt.Errorf("put head to %s: %w", t.p, err)
	}
	_, err = t.answer(s, "put head", [32]byte{})
	return err
}

// GetHead fetches the head record the friend keeps for this plug; an error
// wrapping fs.ErrNotExist means it keeps none. The envelope is checked by
// the caller.
func (t *FriendTarget) GetHead(ctx context.Context) ([]byte, error) {
	s, err := t.openProto(ctx, ProtoHead, headRequest{Op: opGet})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	r, err := t.answer(s, "get head", [32]byte{})
	if err != nil {
		return nil, err
	}
	if r.Size > MaxHead {
		s.Reset()
		return nil, fmt.Errorf("get head from %s: %w", t.p, ErrFrameTooLarge)
	}
	b := make([]byte, r.Size)
	if _, err := io.ReadFull(s, b); err != nil {
		return nil, fmt.Errorf("get head from %s: %w", t.p, err)
	}
	return b, nil
}
