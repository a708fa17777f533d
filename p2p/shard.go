package p2p

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/plug-net/plug/p2p/holdstore"
	"github.com/plug-net/plug/p2p/proof"
	"github.com/plug-net/plug/store/kv"
)

// shardDeadline bounds one shard operation on the wire: a 32 MiB shard at a
// slow 1 Mbit/s home uplink takes about 4 minutes.
const shardDeadline = 5 * time.Minute

// sendBufs are the buffers a held shard is sent through: 256 KiB, so that
// a shard is read from disk and handed to yamux in a few large pieces
// instead of io.Copy's 32 KiB. benchrestic, plug alone, the 10 GiB mixed
// set restored in 32.9 and 37.0 s with them, in 37.7-40.2 s (four runs)
// with 32 KiB, the friends' CPU 18.4 s against 21.2 (means). Larger yamux
// frames as well (256 KiB instead of 64) gained nothing more and slowed the
// backup.
var sendBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// ErrQuota is wrapped when a friend refuses a shard that would pass the
// quota it gives this plug.
var ErrQuota = errors.New("quota exceeded")

// ErrRefused is wrapped when a friend refuses this plug (it no longer lists
// it as a friend).
var ErrRefused = errors.New("refused")

// ErrFriendFull is wrapped when a friend's disk is full: it is not asked
// to take shards again for fullBackoff, or until it takes one.
var ErrFriendFull = errors.New("the friend's disk is full")

// fullBackoff is how long a friend that said its disk is full is left out
// of new placements.
const fullBackoff = 30 * time.Minute

// handleShard serves /plug/shard to paired friends only, judged by the
// connection's authenticated peer ID. A stranger gets one refusal and the
// stream is closed: nothing is read, stored or served.
func (n *Node) handleShard(s network.Stream) {
	defer closeStream(n.log, s)
	owner := s.Conn().RemotePeer()
	f, ok := n.friends.get(owner)
	if !ok {
		n.Refused(owner, "the shard protocol")
		n.reply(s, response{Code: codeNotFriend, Msg: "this plug does not list you as a friend"})
		return // Close (deferred) sends the refusal; nothing was read
	}
	if err := setDeadline(s, time.Now().Add(shardDeadline)); err != nil {
		n.log.Warn("dropped a friend's shard request", "friend", f.Name, "err", err)
		return
	}
	b, err := readFrame(s, MaxControl)
	if err != nil {
		s.Reset()
		return
	}
	req, id, err := decodeShardRequest(b)
	if err != nil {
		n.reply(s, response{Code: codeBadRequest, Msg: err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), shardDeadline)
	defer cancel()
	fail := func(err error) {
		code := codeInternal
		switch {
		case errors.Is(err, holdstore.ErrQuota):
			code = codeQuota
		case errors.Is(err, fs.ErrNotExist):
			code = codeNotFound
		case errors.Is(err, holdstore.ErrMismatch), errors.Is(err, proof.ErrCorrupt):
			code = codeMismatch
		case errors.Is(err, holdstore.ErrTooLarge):
			code = codeTooLarge
		case errors.Is(err, proof.ErrRange):
			code = codeBadRequest
		case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, kv.ErrDiskFull):
			code = codeFull
			n.log.Warn("the disk is full: a friend's shard was refused", "friend", f.Name, "err", err)
		}
		if code == codeInternal {
			n.log.Error("shard operation failed", "friend", f.Name, "op", req.Op, "err", err)
		}
		n.reply(s, response{Code: code, Msg: err.Error()})
	}
	switch req.Op {
	case opPut:
		// Quota first: the owner sends the body only once told to.
		used, _, err := n.held.Usage(owner)
		if err != nil {
			fail(err)
			return
		}
		has, err := n.held.Has(ctx, owner, id)
		if err != nil {
			fail(err)
			return
		}
		if has {
			// Already held: answer without asking for the body.
			n.reply(s, response{OK: true, Has: true})
			return
		}
		if used+req.Size > f.QuotaGiven {
			fail(fmt.Errorf("%w: %s holds %s of the %s it gives you; this shard needs %s more", holdstore.ErrQuota, n.Name(), humanize.IBytes(uint64(used)), humanize.IBytes(uint64(f.QuotaGiven)), humanize.IBytes(uint64(req.Size))))
			return
		}
		if err := writeMsg(s, response{OK: true}); err != nil {
			return
		}
		if err := n.held.Put(ctx, owner, id, req.Size, bufio.NewReaderSize(s, 256<<10), f.QuotaGiven); err != nil {
			fail(err)
			return
		}
		n.reply(s, response{OK: true})
		if used == 0 {
			n.kickProvide() // a new owner's data: announce its rendezvous soon
		}
	case opGet:
		r, size, err := n.held.Open(ctx, owner, id)
		if err != nil {
			fail(err)
			return
		}
		defer func() { _ = r.Close() }() // opened to read only: closing it loses nothing
		if err := writeMsg(s, response{OK: true, Size: size}); err != nil {
			return
		}
		bp := sendBufs.Get().(*[]byte)
		sent, err := io.CopyBuffer(s, io.LimitReader(r, size), *bp)
		sendBufs.Put(bp)
		if err == nil && sent < size {
			err = fmt.Errorf("the shard's file ended after %d of its %d bytes: %w", sent, size, io.ErrUnexpectedEOF)
		}
		if err != nil {
			// The owner gets a short shard and asks again, or another
			// friend; the error tells a disk that fails from a friend that
			// went away.
			n.log.Warn("could not send a held shard to its owner", "friend", f.Name, "err", err)
			s.Reset()
		}
	case opHas:
		has, err := n.held.Has(ctx, owner, id)
		if err != nil {
			fail(err)
			return
		}
		n.reply(s, response{OK: true, Has: has})
	case opDelete:
		if err := n.held.Delete(ctx, owner, id); err != nil {
			fail(err)
			return
		}
		n.reply(s, response{OK: true})
	case opProve:
		slice, err := n.held.Prove(ctx, owner, id, req.Offset, req.Length)
		if err != nil {
			fail(err)
			return
		}
		if err := writeMsg(s, response{OK: true, Size: int64(len(slice))}); err != nil {
			return
		}
		if _, err := s.Write(slice); err != nil {
			n.log.Debug("could not send a proof of storage to its owner", streamAttrs(s, err)...)
		}
	case opUsage:
		used, shards, err := n.held.Usage(owner)
		if err != nil {
			fail(err)
			return
		}
		n.reply(s, response{OK: true, Quota: f.QuotaGiven, Used: used, Shards: shards})
	}
}

// FriendTarget is a friend's plug as a place for shards: it implements
// store.ShardTarget over /plug/shard.
type FriendTarget struct {
	n *Node
	p peer.ID
}

// Target returns the friend p as a shard target.
func (n *Node) Target(p peer.ID) *FriendTarget { return &FriendTarget{n: n, p: p} }

// Name returns the friend's peer ID.
func (t *FriendTarget) Name() string { return t.p.String() }

// Peer returns the friend's peer ID.
func (t *FriendTarget) Peer() peer.ID { return t.p }

// open connects to the friend, opens a shard stream and sends the request.
func (t *FriendTarget) open(ctx context.Context, req shardRequest) (network.Stream, error) {
	return t.openProto(ctx, ProtoShard, req)
}

// openProto connects to the friend, opens a stream of proto and sends req.
func (t *FriendTarget) openProto(ctx context.Context, proto string, req any) (network.Stream, error) {
	if err := t.n.Usable(ctx, t.p); err != nil {
		return nil, err
	}
	s, err := t.n.h.NewStream(ctx, t.p, protocol.ID(proto))
	if err != nil {
		return nil, fmt.Errorf("open %s stream to %s: %w", proto, t.p, err)
	}
	dl := time.Now().Add(shardDeadline)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	if err := setDeadline(s, dl); err != nil {
		return nil, fmt.Errorf("open %s stream to %s: %w", proto, t.p, err)
	}
	if err := writeMsg(s, req); err != nil {
		s.Reset()
		return nil, fmt.Errorf("send %s request to %s: %w", proto, t.p, err)
	}
	return s, nil
}

// answer reads a response and turns a refusal into an error.
func (t *FriendTarget) answer(s network.Stream, op string, id [32]byte) (response, error) {
	r, err := readResponse(s)
	if err != nil {
		return r, fmt.Errorf("%s shard %x at %s: %w", op, id[:4], t.p, err)
	}
	if r.OK {
		return r, nil
	}
	var kind error
	switch r.Code {
	case codeNotFound:
		kind = fs.ErrNotExist
	case codeQuota:
		kind = ErrQuota
	case codeNotFriend:
		kind = ErrRefused
	case codeMismatch:
		kind = proof.ErrCorrupt
	case codeFull:
		kind = ErrFriendFull
	default:
		kind = errors.New(r.Code)
	}
	return r, fmt.Errorf("%s shard %x at %s: %w: %s", op, id[:4], t.p, kind, r.Msg)
}

// PutShard stores a shard at the friend and returns once the friend has it
// on disk, synced. It ends as soon as the friend answers — a friend that
// fails midway (a full disk) says why and stops reading — or ctx ends,
// never waiting for flow control to time out.
func (t *FriendTarget) PutShard(ctx context.Context, id [32]byte, data []byte) error {
	s, err := t.open(ctx, shardRequest{Op: opPut, ID: hex.EncodeToString(id[:]), Size: int64(len(data))})
	if err != nil {
		return err
	}
	defer closeStream(t.n.log, s)
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	r, err := t.answer(s, "put", id) // quota checked before the body
	if err != nil {
		return t.putFailed(ctx, err)
	}
	if r.Has {
		return nil // the friend already holds it, durably
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := s.Write(data)
		wrote <- err
	}()
	_, err = t.answer(s, "put", id)
	if err != nil {
		s.Reset() // the friend stopped reading: unblock the write
		if werr := <-wrote; werr != nil {
			t.n.log.Debug("the write of a refused shard ended", "friend", t.n.peerName(t.p), "err", werr) // the answer says why
		}
		return t.putFailed(ctx, err)
	}
	if err := <-wrote; err != nil {
		return fmt.Errorf("put shard %x to %s: %w", id[:4], t.p, err)
	}
	t.n.setFull(t.p, false)
	// What this plug uses there grows by the shard (the friend's count,
	// asked on every connection, corrects it).
	if _, err := t.n.friends.update(t.p, false, func(f *Friend) { f.UsedTaken += int64(len(data)) }); err != nil && !errors.Is(err, ErrNotFriend) {
		t.n.log.Debug("could not record what a friend holds", "friend", t.n.peerName(t.p), "err", err)
	}
	return nil
}

// putFailed tells why a put failed: the context's end, or the friend's
// reason; a friend whose disk is full is left out for a while.
func (t *FriendTarget) putFailed(ctx context.Context, err error) error {
	if errors.Is(err, ErrFriendFull) {
		t.n.setFull(t.p, true)
		t.n.log.Warn("a friend's disk is full: it is left out of new backups for a while", "friend", t.n.peerName(t.p), "err", err)
	}
	if errors.Is(err, ErrQuota) {
		t.n.log.Warn("a friend refuses more of your data: the space it gives you is used up; ask it for more (plug friends quota on its plug)", "friend", t.n.peerName(t.p), "err", err)
		t.n.goRun(func(ctx context.Context) { t.n.refreshUsage(ctx, t.p, true) })
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// GetShard fetches a shard. Its bytes are not checked here: the caller checks
// them against the ID.
func (t *FriendTarget) GetShard(ctx context.Context, id [32]byte) ([]byte, error) {
	return t.GetShardInto(ctx, id, nil)
}

// GetShardInto is GetShard reading into buf's memory when it is large
// enough (a restore reuses its shard buffers), else into a new buffer.
func (t *FriendTarget) GetShardInto(ctx context.Context, id [32]byte, buf []byte) ([]byte, error) {
	s, err := t.open(ctx, shardRequest{Op: opGet, ID: hex.EncodeToString(id[:])})
	if err != nil {
		return nil, err
	}
	defer closeStream(t.n.log, s)
	r, err := t.answer(s, "get", id)
	if err != nil {
		return nil, err
	}
	if r.Size > proof.MaxShardSize {
		s.Reset()
		return nil, fmt.Errorf("get shard %x from %s: %w: %d bytes", id[:4], t.p, ErrFrameTooLarge, r.Size)
	}
	b := buf[:0]
	if int64(cap(b)) < r.Size {
		b = make([]byte, r.Size)
	}
	b = b[:r.Size]
	if _, err := io.ReadFull(s, b); err != nil {
		return nil, fmt.Errorf("get shard %x from %s: %w", id[:4], t.p, err)
	}
	return b, nil
}

// HasShard asks whether the friend holds a shard.
func (t *FriendTarget) HasShard(ctx context.Context, id [32]byte) (bool, error) {
	s, err := t.open(ctx, shardRequest{Op: opHas, ID: hex.EncodeToString(id[:])})
	if err != nil {
		return false, err
	}
	defer closeStream(t.n.log, s)
	r, err := t.answer(s, "has", id)
	return r.Has, err
}

// DeleteShard asks the friend to drop a shard.
func (t *FriendTarget) DeleteShard(ctx context.Context, id [32]byte) error {
	s, err := t.open(ctx, shardRequest{Op: opDelete, ID: hex.EncodeToString(id[:])})
	if err != nil {
		return err
	}
	defer closeStream(t.n.log, s)
	_, err = t.answer(s, "delete", id)
	return err
}

// Prove asks the friend for bytes [offset, offset+length) of a shard with
// their Bao proof, and checks them against the shard ID (the Bao root) and
// its size. The challenge is the caller's: pick it at random when asking.
func (t *FriendTarget) Prove(ctx context.Context, id [32]byte, size int64, offset, length uint64) ([]byte, error) {
	s, err := t.open(ctx, shardRequest{Op: opProve, ID: hex.EncodeToString(id[:]), Offset: offset, Length: length})
	if err != nil {
		return nil, err
	}
	defer closeStream(t.n.log, s)
	r, err := t.answer(s, "prove", id)
	if err != nil {
		return nil, err
	}
	if r.Size > proof.MaxSlice {
		s.Reset()
		return nil, fmt.Errorf("prove shard %x at %s: %w: proof of %d bytes", id[:4], t.p, ErrFrameTooLarge, r.Size)
	}
	slice := make([]byte, r.Size)
	if _, err := io.ReadFull(s, slice); err != nil {
		return nil, fmt.Errorf("prove shard %x at %s: %w", id[:4], t.p, err)
	}
	data, err := proof.Verify(id, uint64(size), offset, length, slice)
	if err != nil {
		return nil, fmt.Errorf("prove shard %x at %s: %w", id[:4], t.p, err)
	}
	return data, nil
}

// Usage asks the friend how much it gives this plug and how much this plug
// uses there, and remembers the answer.
func (t *FriendTarget) Usage(ctx context.Context) (quota, used int64, shards int, err error) {
	s, err := t.open(ctx, shardRequest{Op: opUsage})
	if err != nil {
		return 0, 0, 0, err
	}
	defer closeStream(t.n.log, s)
	r, err := t.answer(s, "usage", [32]byte{})
	if err != nil {
		return 0, 0, 0, err
	}
	_, err = t.n.friends.update(t.p, false, func(f *Friend) { f.QuotaTaken, f.UsedTaken = r.Quota, r.Used })
	if err != nil && !errors.Is(err, ErrNotFriend) { // no longer a friend: nothing to remember
		return 0, 0, 0, err
	}
	return r.Quota, r.Used, r.Shards, nil
}

// setFull records that a friend's disk is full (or no longer).
func (n *Node) setFull(p peer.ID, full bool) {
	n.fullMu.Lock()
	defer n.fullMu.Unlock()
	if !full {
		delete(n.full, p)
		return
	}
	if n.full == nil {
		n.full = map[peer.ID]time.Time{}
	}
	n.full[p] = time.Now()
}

// isFull reports whether a friend said its disk is full in the last
// fullBackoff.
func (n *Node) isFull(p peer.ID) bool {
	n.fullMu.Lock()
	defer n.fullMu.Unlock()
	t, ok := n.full[p]
	return ok && time.Since(t) < fullBackoff
}

// usageEvery spaces the usage questions to one friend.
const usageEvery = 10 * time.Minute

// refreshUsage asks friend p what it gives this plug and what this plug
// uses there, at most once per usageEvery unless now, so that both sides'
// numbers stay true.
func (n *Node) refreshUsage(ctx context.Context, p peer.ID, now bool) {
	n.usageMu.Lock()
	if !now && time.Since(n.usageAsked[p]) < usageEvery {
		n.usageMu.Unlock()
		return
	}
	if n.usageAsked == nil {
		n.usageAsked = map[peer.ID]time.Time{}
	}
	n.usageAsked[p] = time.Now()
	n.usageMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, _, _, err := n.Target(p).Usage(ctx); err != nil {
		n.log.Debug("could not ask a friend what it holds for this plug", "friend", n.peerName(p), "err", err)
	}
}
