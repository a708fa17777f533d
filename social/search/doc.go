// Package search is the full-text index over the plug's posts and harvested
// items: it maps a person's query ("garden rain", "\"first frost\"", "#photo",
// "from:ann", "source:mastodon") to the IDs of the matching items, best match
// first.
//
// The index is a cache, not a store. It keeps only each item's ID (the
// caller's item key) plus the terms needed to find it; the items themselves
// live in the caller's store, which turns hits back into posts. Because the
// caller can always rebuild the index from its store, the index makes no
// attempt to repair itself: when the directory given to [Open] is missing an
// index, Open creates an empty one; when it holds something that cannot be
// opened, Open returns an error wrapping [ErrDamaged] and the caller removes
// the directory (os.RemoveAll), opens it again and re-puts every item. An
// empty index after Open (Count returns 0) while the store has items also
// means "reindex".
//
// The query language is described on [Index.Search]. Search never reads the
// documents back and never logs; the package does no network I/O.
//
// The index is built on bleve (scorch segments, memory-mapped), tuned for a
// small board: nothing but the ID is stored, text fields keep positions only
// for phrase queries, and author, source and tags are plain keywords.
package search
