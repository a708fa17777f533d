// Package p2p is the plug's network: the libp2p host, the Kademlia DHT,
// pairing by invite, connection gating, and the /plug/* wire protocols that
// serve paired friends only. It keeps friends and the shards it holds for
// them in store/kv.
package p2p
