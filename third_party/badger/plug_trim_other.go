//go:build !linux

/*
 * plug: not part of upstream badger; see PLUG-PATCH.md.
 */

package badger

// TrimMapped does nothing where plug does not run.
func (db *DB) TrimMapped() {}
