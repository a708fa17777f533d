package p2p

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
)

// benchPair starts two paired plugs on 127.0.0.1 and checks that they are
// connected as the benchmarks say: TCP, TLS, yamux.
func benchPair(b *testing.B) (a, d *testPlug) {
	b.Helper()
	a = newTestPlug(b, "ann", nil)
	d = newTestPlug(b, "dan", nil)
	a.node.Host().Peerstore().AddAddrs(d.node.ID(), d.node.Host().Addrs(), time.Hour)
	inv, err := d.node.CreateInvite(0)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.node.Accept(context.Background(), inv.Code(), nil); err != nil {
		b.Fatal(err)
	}
	conns := a.node.Host().Network().ConnsToPeer(d.node.ID())
	if len(conns) == 0 {
		b.Fatal("the paired plugs are not connected")
	}
	for _, c := range conns {
		if st := c.ConnState(); st.Transport != "tcp" || st.Security != libp2ptls.ID || st.StreamMultiplexer != yamux.ID {
			b.Fatalf("connection over %s, %s, %s; want tcp, %s, %s", st.Transport, st.Security, st.StreamMultiplexer, libp2ptls.ID, yamux.ID)
		}
	}
	return a, d
}

// BenchmarkShardGet is the loopback throughput of one shard stream: 8 MiB
// shards served from the friend's disk (page cache) over TCP+TLS+yamux.
func BenchmarkShardGet(b *testing.B) {
	a, d := benchPair(b)
	ctx := context.Background()
	id, data := randShard(b, 8<<20)
	tg := a.node.Target(d.node.ID())
	if err := tg.PutShard(ctx, id, data); err != nil {
		b.Fatal(err)
	}
	if got, err := tg.GetShard(ctx, id); err != nil || !bytes.Equal(got, data) {
		b.Fatalf("GetShard: %v (same bytes %v)", err, bytes.Equal(got, data))
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tg.GetShard(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkShardPut puts 8 MiB shards: the friend checks the quota, then
// hashes each, builds its Bao tree and fsyncs it before answering. Only the
// put is timed: the friend then drops the shard, untimed, so that the next
// put sends and stores it again (a shard it holds would be answered without
// its body).
func BenchmarkShardPut(b *testing.B) {
	a, d := benchPair(b)
	ctx := context.Background()
	tg := a.node.Target(d.node.ID())
	// The friend already holds a shard of the owner, as it does after the
	// first put of a backup: a first one makes it announce the owner's
	// rendezvous key in the DHT, work that is not the put's.
	held, small := randShard(b, 4096)
	if err := tg.PutShard(ctx, held, small); err != nil {
		b.Fatal(err)
	}
	id, data := randShard(b, 8<<20)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := tg.PutShard(ctx, id, data); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if ok, err := d.held.Has(ctx, a.node.ID(), id); err != nil || !ok {
			b.Fatalf("after the put the friend holds the shard: %v, %v", ok, err)
		}
		if err := tg.DeleteShard(ctx, id); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkStreamRaw is one libp2p stream between the same two hosts with no
// protocol and no disk: the ceiling of the shard stream. The far side reads
// the stream to its end and answers how many bytes it read.
func BenchmarkStreamRaw(b *testing.B) {
	a, d := benchPair(b)
	const proto = "/plug-bench/raw"
	d.node.Host().SetStreamHandler(proto, func(s network.Stream) {
		n, err := io.Copy(io.Discard, s)
		if err != nil {
			s.Reset()
			return
		}
		if err := binary.Write(s, binary.BigEndian, uint64(n)); err != nil {
			s.Reset()
			return
		}
		// The answer is written and the benchmark checks it: a failing
		// close loses nothing (and may come after the benchmark ended).
		_ = s.Close()
	})
	ctx := context.Background()
	buf := make([]byte, 8<<20)
	var got uint64
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		s, err := a.node.Host().NewStream(ctx, d.node.ID(), proto)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := s.CloseWrite(); err != nil {
			b.Fatal(err)
		}
		if err := binary.Read(s, binary.BigEndian, &got); err != nil {
			b.Fatal(err)
		}
		if got != uint64(len(buf)) {
			b.Fatalf("the far side read %d bytes, want %d", got, len(buf))
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
