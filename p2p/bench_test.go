package p2p

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// benchPair starts two paired plugs on 127.0.0.1 (TCP + TLS + yamux).
func benchPair(b *testing.B) (a, d *testPlug) {
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
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tg.GetShard(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkShardPut puts 8 MiB shards: the friend hashes each, builds its
// Bao tree and fsyncs it before answering.
func BenchmarkShardPut(b *testing.B) {
	a, d := benchPair(b)
	ctx := context.Background()
	tg := a.node.Target(d.node.ID())
	var ids [][32]byte
	var shards [][]byte
	for range 4 {
		id, s := randShard(b, 8<<20)
		ids, shards = append(ids, id), append(shards, s)
	}
	b.SetBytes(8 << 20)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		k := i % len(ids)
		tg.DeleteShard(ctx, ids[k])
		if err := tg.PutShard(ctx, ids[k], shards[k]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamRaw is one libp2p stream between the same two hosts with no
// protocol and no disk: the ceiling of the shard stream.
func BenchmarkStreamRaw(b *testing.B) {
	a, d := benchPair(b)
	const proto = "/plug-bench/raw"
	d.node.Host().SetStreamHandler(proto, func(s network.Stream) {
		io.Copy(io.Discard, s)
		s.Write([]byte{1})
		s.Close()
	})
	buf := make([]byte, 8<<20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		s, err := a.node.Host().NewStream(context.Background(), d.node.ID(), proto)
		if err != nil {
			b.Fatal(err)
		}
		s.Write(buf)
		s.CloseWrite()
		io.ReadFull(s, make([]byte, 1))
		s.Close()
	}
}
