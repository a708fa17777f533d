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
// The index is the plug's own, kept in a store/kv database of its own
// (index.go describes its records): words are analysed for English
// (analyse), scored with BM25, and kept in blocks of postings, one per term
// and write. Nothing but the ID is stored; text fields keep positions for
// phrase queries; author, source and tags are plain keywords. It replaced
// bleve, whose seven segment formats weighed a quarter of a board's binary.
package search
