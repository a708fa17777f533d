// Package target is the store's plug-in point for where shards go: a
// ShardTarget stores and returns shards by ID, a Holder also proves it
// holds them and keeps the owner's head record. Friends' plugs implement it
// over the network (p2p.FriendTarget); MemTarget is the in-memory fake,
// and both pass the same suite (store/storetest).
package target
