package p2p

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// setDeadline bounds a stream's exchange. A stream that cannot take a
// deadline could hold its goroutine forever: it is reset, and the error
// returned.
func setDeadline(s network.Stream, t time.Time) error {
	if err := s.SetDeadline(t); err != nil {
		s.Reset()
		return fmt.Errorf("set a deadline on the stream: %w", err)
	}
	return nil
}

// reply writes a handler's answer. When it cannot be written, the asker has
// gone away or its deadline passed and it sees its own error: there is no
// one left to tell here, so the failure is only logged, for debugging.
func (n *Node) reply(s network.Stream, v any) {
	if err := writeMsg(s, v); err != nil {
		n.log.Debug("could not answer a request", streamAttrs(s, err)...)
	}
}

// closeStream closes a stream whose exchange is over. By then everything
// was written or read, and a failure there was handled: a failing close
// (the other side went away, or the stream was reset) loses nothing, so it
// is only logged, for debugging.
func closeStream(log *slog.Logger, s network.Stream) {
	if err := s.Close(); err != nil {
		log.Debug("could not close a stream", streamAttrs(s, err)...)
	}
}

func streamAttrs(s network.Stream, err error) []any {
	return []any{"proto", string(s.Protocol()), "peer", s.Conn().RemotePeer().String(), "err", err}
}

// closeConn drops a connection this plug no longer wants: dead though no one
// said so, or limited where a better one is to come. A failing close means
// it was closed already or its transport broke; it is gone either way, so
// the failure is only logged, for debugging.
func (n *Node) closeConn(c network.Conn) {
	if err := c.Close(); err != nil {
		n.log.Debug("could not close a connection", "peer", c.RemotePeer().String(), "addr", c.RemoteMultiaddr().String(), "err", err)
	}
}

// closePeer drops every connection to p, as closeConn does one.
func (n *Node) closePeer(p peer.ID) {
	if err := n.h.Network().ClosePeer(p); err != nil {
		n.log.Debug("could not close the connections to a peer", "peer", p.String(), "err", err)
	}
}
