// Package kv is the plug's local persistence: one badger v4 database per plug
// (in DIR/db), split into typed key spaces (chunks, packs, friends, held
// shards, posts, events, settings, ...), tuned to stay small on a 512 MiB
// device.
//
// It stores bytes under keys and nothing more: it never logs, never touches the
// network and knows nothing of the formats kept in it, except for the event
// log ([DB.AppendEvent]), whose records it encodes itself.
//
// Every key lives in a [Space]; callers pass keys without the space byte and
// get them back without it. Reads return copies; callbacks of [DB.Iterate]
// get slices valid only during the call. [DB.Update] is atomic and bounded in
// size, [DB.Batch] is for bulk loads. Writes are not synced by default: they
// survive a killed process, and [DB.Sync], [DB.PutSync] and [DB.UpdateSync]
// make them survive a power cut too, for the writes that acknowledge a shard
// or publish a head record.
package kv
