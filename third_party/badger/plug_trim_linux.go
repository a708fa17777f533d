/*
 * plug: not part of upstream badger; see PLUG-PATCH.md.
 */

package badger

import "golang.org/x/sys/unix"

// TrimMapped takes the pages of the value log files out of this process's
// memory (its resident set): they stay in the page cache, and the next
// read of a value maps its page again from there. Badger writes and reads
// the value log through a shared memory map, so every page written or read
// counts as the process's own until the file is closed; a plug that wrote
// 50 MiB of values carried them in its RSS.
//
// It is safe at any time: for a shared file mapping MADV_DONTNEED keeps
// the data (a page written and not yet on disk stays dirty in the page
// cache), and the file's lock keeps the mapping alive meanwhile.
func (db *DB) TrimMapped() {
	vlog := &db.vlog
	vlog.filesLock.RLock()
	defer vlog.filesLock.RUnlock()
	for _, lf := range vlog.filesMap {
		lf.lock.RLock()
		if lf.MmapFile != nil && len(lf.Data) > 0 {
			_ = unix.Madvise(lf.Data, unix.MADV_DONTNEED) // only advice: at worst the pages stay
		}
		lf.lock.RUnlock()
	}
}
