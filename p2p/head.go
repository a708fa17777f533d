package p2p

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/plug-net/plug/p2p/headrec"
	"github.com/plug-net/plug/store/kv"
)

// headRequest is the first message of a /plug/head stream.
type headRequest struct {
	Op   string `json:"op"` // "put" or "get"
	Size int64  `json:"size,omitempty"`
}

// handleHead keeps the newest head record of each friend and gives it back
// to that friend only.
func (n *Node) handleHead(s network.Stream) {
	defer closeStream(n.log, s)
	owner := s.Conn().RemotePeer()
	if !n.friends.isFriend(owner) {
		n.Refused(owner, "the head protocol")
		n.reply(s, response{Code: codeNotFriend, Msg: "this plug does not list you as a friend"})
		return
	}
	if err := setDeadline(s, time.Now().Add(shardDeadline)); err != nil {
		n.log.Warn("dropped a friend's head request", "peer", owner.String(), "err", err)
		return
	}
	var req headRequest
	b, err := readFrame(s, MaxControl)
	if err != nil {
		return
	}
	if err := json.Unmarshal(b, &req); err != nil || (req.Op != opPut && req.Op != opGet) || req.Size < 0 || req.Size > headrec.MaxSize {
		n.reply(s, response{Code: codeBadRequest, Msg: "bad head request"})
		return
	}
	switch req.Op {
	case opGet:
		env, err := n.db.Get(kv.Heads, []byte(owner))
		if errors.Is(err, kv.ErrNotFound) {
			n.reply(s, response{Code: codeNotFound, Msg: "no head record kept for you"})
			return
		}
		if err != nil {
			n.reply(s, response{Code: codeInternal, Msg: err.Error()})
			return
		}
		err = writeMsg(s, response{OK: true, Size: int64(len(env))})
		if err == nil {
			_, err = s.Write(env)
		}
		if err != nil {
			n.log.Debug("could not send a friend its head record", streamAttrs(s, err)...)
		}
	case opPut:
		if err := writeMsg(s, response{OK: true}); err != nil {
			return
		}
		env, err := readFrame(s, headrec.MaxSize)
		if err != nil {
			return
		}
		h, err := headrec.Open(env)
		if err != nil || h.Owner != owner {
			n.log.Warn("refused a bad head record", "peer", owner.String(), "err", err)
			n.reply(s, response{Code: codeMismatch, Msg: "head record not signed by you"})
			return
		}
		err = n.db.Update(func(tx *kv.Tx) error {
			old, err := tx.Get(kv.Heads, []byte(owner))
			if err == nil {
				if oh, err := headrec.Open(old); err == nil && oh.Version >= h.Version {
					return nil // keep the newer one
				}
			}
			return tx.Put(kv.Heads, []byte(owner), env)
		})
		if err == nil {
			err = n.db.Sync()
		}
		if err != nil {
			n.reply(s, response{Code: codeInternal, Msg: err.Error()})
			return
		}
		n.reply(s, response{OK: true})
	}
}

// PutHead gives the friend the owner's newest head record to keep; it
// returns once the friend has it on disk.
func (t *FriendTarget) PutHead(ctx context.Context, env []byte) error {
	s, err := t.openProto(ctx, ProtoHead, headRequest{Op: opPut, Size: int64(len(env))})
	if err != nil {
		return err
	}
	defer closeStream(t.n.log, s)
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
	defer closeStream(t.n.log, s)
	r, err := t.answer(s, "get head", [32]byte{})
	if err != nil {
		return nil, err
	}
	if r.Size > headrec.MaxSize {
		s.Reset()
		return nil, fmt.Errorf("get head from %s: %w", t.p, ErrFrameTooLarge)
	}
	b := make([]byte, r.Size)
	if _, err := io.ReadFull(s, b); err != nil {
		return nil, fmt.Errorf("get head from %s: %w", t.p, err)
	}
	return b, nil
}
