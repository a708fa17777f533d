package kv

import "fmt"

// Space is a key space: a one-byte prefix that keeps one kind of record apart
// from every other kind in the single database.
//
// The byte values are part of the on-disk format. Never reuse, renumber or
// remove one; add new spaces after the last one. 0x00 is never a space, and
// 0x21 ('!') must never become one: badger reserves keys that start with
// "!badger!".
type Space byte

// The key spaces. Their values are stored on disk: see [Space].
const (
	// Meta holds this package's own records (format version, sequences).
	// Callers may read it but not write it.
	Meta Space = 0x01
	// Settings holds the plug's settings.
	Settings Space = 0x02
	// Chunks is the chunk index: chunk ID to the pack that holds it.
	Chunks Space = 0x03
	// Packs is the pack table: pack ID to where its shards live.
	Packs Space = 0x04
	// Snapshots holds the snapshot records.
	Snapshots Space = 0x05
	// Friends holds the paired friends.
	Friends Space = 0x06
	// Held holds the shards kept for friends: their metadata and the
	// per-owner accounting.
	Held Space = 0x07
	// Posts holds the microblog: own and friends' posts, harvested items.
	Posts Space = 0x08
	// Events is the event log (see [DB.AppendEvent]).
	Events Space = 0x09
	// Invites holds the pending pairing invites.
	Invites Space = 0x0a
	// Heads holds the head records friends gave this plug to keep, and
	// this plug's own latest head record.
	Heads Space = 0x0b
	// Trees caches this plug's own tree blobs (directory listings), so that
	// an incremental backup and browsing need no download.
	Trees Space = 0x0c
	// Local holds the owner's backup state: sources, schedule, job records.
	Local Space = 0x0d
	// Search is the full-text index (social/search), which keeps it in a
	// database of its own: a cache, rebuilt from Posts.
	Search Space = 0x0e

	// lastSpace is the highest space in use. Move it when adding one.
	lastSpace = Search
)

// String returns the space's name, such as "chunks".
func (s Space) String() string {
	switch s {
	case Meta:
		return "meta"
	case Settings:
		return "settings"
	case Chunks:
		return "chunks"
	case Packs:
		return "packs"
	case Snapshots:
		return "snapshots"
	case Friends:
		return "friends"
	case Held:
		return "held"
	case Posts:
		return "posts"
	case Events:
		return "events"
	case Invites:
		return "invites"
	case Heads:
		return "heads"
	case Trees:
		return "trees"
	case Local:
		return "local"
	case Search:
		return "search"
	}
	return fmt.Sprintf("space(0x%02x)", byte(s))
}

// valid reports whether s is a known space.
func (s Space) valid() bool { return s >= Meta && s <= lastSpace }

// writable reports whether callers outside this package may write to s.
func (s Space) writable() bool { return s.valid() && s != Meta }
