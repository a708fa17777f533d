/*
 * plug: not part of upstream badger; see PLUG-PATCH.md.
 */

package badger

import (
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/ristretto/v2/z"
	"golang.org/x/sys/unix"
)

// TrimMapped takes the pages of the files badger maps out of this
// process's memory (its resident set): the value log, the tables and the
// memtables' logs. They stay in the page cache, and the next read maps its
// page again from there. Badger writes and reads these files through
// memory maps, so every page written or read counts as the process's own
// until the file is closed: a plug that wrote 50 MiB of values carried
// them in its RSS, and one with a million chunks 90 MiB of tables.
//
// It is safe at any time: for a shared file mapping MADV_DONTNEED keeps
// the data (a page written and not yet on disk stays dirty in the page
// cache), and a lock or a reference keeps each mapping alive meanwhile.
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

	if db.lc != nil {
		for _, l := range db.lc.levels {
			l.RLock()
			tables := append([]*table.Table(nil), l.tables...)
			for _, t := range tables {
				t.IncrRef()
			}
			l.RUnlock()
			for _, t := range tables {
				trim(t.MmapFile)
				_ = t.DecrRef() // a table dropped meanwhile is deleted here, as badger would
			}
		}
	}

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
