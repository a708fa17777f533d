/*
 * plug: not part of upstream badger; see PLUG-PATCH.md.
 */

package badger

import (
	"github.com/dgraph-io/ristretto/v2/z"
	"golang.org/x/sys/unix"
)

// TrimMapped takes the pages of the files badger writes or reads through
// memory maps out of this process's memory (its resident set): the value
// log and the memtables' logs (tables are read with pread, see
// table.CreateTable). They stay in the page cache, and the next read maps
// its page again from there. Every page written or read through a map
// counts as the process's own until the file is closed: a plug that wrote
// 50 MiB of values carried them in its RSS.
//
// It is safe at any time: for a shared file mapping MADV_DONTNEED keeps
// the data (a page written and not yet on disk stays dirty in the page
// cache), and a lock or a reference keeps each mapping alive meanwhile.
// (On Linux 6.x a fault maps up to a whole large folio, 1 MiB here, not a
// page: a few reads make a whole file resident.)
func (db *DB) TrimMapped() {
	if db.opt.InMemory {
		return // its "tables" are Go memory: advice would zero them
	}
	vlog := &db.vlog
	vlog.filesLock.RLock()
	for _, lf := range vlog.filesMap {
		lf.lock.RLock()
		trim(lf.MmapFile)
		lf.lock.RUnlock()
	}
	vlog.filesLock.RUnlock()

	if db.opt.ReadOnly {
		return // no memtable
	}
	mts, release := db.getMemTables()
	for _, mt := range mts {
		if mt.wal != nil {
			trim(mt.wal.MmapFile)
		}
	}
	release()
}

// trim advises the kernel to drop a file's mapped pages; only a map of a
// file (Fd set) is touched.
func trim(m *z.MmapFile) {
	if m != nil && m.Fd != nil && len(m.Data) > 0 {
		_ = unix.Madvise(m.Data, unix.MADV_DONTNEED) // only advice: at worst the pages stay
	}
}
