// Package prune decides which snapshots a retention keeps and deletes the
// packs that no kept snapshot uses: from the catalog first, then at every
// friend that holds a shard of them.
package prune
