package holdstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/plug-net/plug/store/kv"
)

// Repair is what [Open] found and fixed. The zero value means all was in
// order.
type Repair struct {
	// TempFiles is how many files of interrupted puts were removed.
	TempFiles int
	// Orphans is how many shard or outboard tree files without a record
	// (a put that crashed before recording it, a delete that crashed before
	// removing them) were removed, and OrphanBytes their size.
	Orphans     int
	OrphanBytes int64
	// Lost are the shards whose files were missing or of the wrong size,
	// or whose bytes no longer hash to their ID: their records were dropped
	// and their bytes released. Their owners find them missing and rebuild
	// them.
	Lost []Lost
	// UsageFixed is how many owners' usage records were corrected.
	UsageFixed int
	// Trees is how many outboard trees, missing or of the wrong size, were
	// made again from their shard's bytes (a crash soon after a put).
	Trees int
	// Kept is how many shards were kept though their files could not be
	// checked (a stat failing other than with "not found") or their tree
	// could not be made again for a reason other than their bytes
	// (unreadable, a full disk): a proof makes the tree, or finds the shard
	// damaged. KeptError is the first such problem.
	Kept      int
	KeptError string
}

// Lost is a held shard that [Open] found damaged and dropped.
type Lost struct {
	Owner peer.ID
	ID    [32]byte
	Size  int64
	// Why says what was wrong, such as "shard file missing".
	Why string
}

// Empty reports whether there was nothing to repair.
func (r Repair) Empty() bool {
	return r.TempFiles == 0 && r.Orphans == 0 && len(r.Lost) == 0 && r.UsageFixed == 0 && r.Trees == 0 && r.Kept == 0
}

// String describes the repair in one line, for the log.
func (r Repair) String() string {
	var parts []string
	if r.TempFiles > 0 {
		parts = append(parts, fmt.Sprintf("removed %d temporary files of interrupted puts", r.TempFiles))
	}
	if r.Orphans > 0 {
		parts = append(parts, fmt.Sprintf("removed %d files without a record (%s)", r.Orphans, humanize.IBytes(uint64(r.OrphanBytes))))
	}
	if len(r.Lost) > 0 {
		parts = append(parts, fmt.Sprintf("dropped %d damaged shards", len(r.Lost)))
	}
	if r.Trees > 0 {
		parts = append(parts, fmt.Sprintf("made %d outboard trees again from their shards", r.Trees))
	}
	if r.Kept > 0 {
		parts = append(parts, fmt.Sprintf("kept %d shards whose files could not be checked or mended, for a proof to mend or drop (%s)", r.Kept, r.KeptError))
	}
	if r.UsageFixed > 0 {
		parts = append(parts, fmt.Sprintf("corrected the usage of %d owners", r.UsageFixed))
	}
	if len(parts) == 0 {
		return "nothing to repair"
	}
	return strings.Join(parts, "; ")
}

// usageSum is an owner's usage as its records add up.
type usageSum struct {
	used   int64
	shards int
}

// repair reconciles the files with the records and the usage records with
// the shard records; see [Repair].
func (s *Store) repair() (Repair, error) {
	var rep Repair

	// 1. Every record needs its two files, of the right sizes; a tree can be
	// made again.
	sums := make(map[peer.ID]*usageSum)
	var drop [][]byte
	err := s.db.Iterate(kv.Held, kv.IterOptions{Prefix: []byte{tagShard}}, func(k, v []byte) error {
		owner, rest, err := parseOwnerKey(k)
		if err != nil || len(rest) != 32 {
			// Not a record this package writes: drop it.
			drop = append(drop, append([]byte(nil), k...))
			return nil
		}
		var id [32]byte
		copy(id[:], rest)
		size, _, err := decodeRecord(v)
		why := ""
		if err != nil {
			why = err.Error()
		} else {
			why = s.checkFiles(owner, id, size, &rep)
		}
		if why != "" {
			drop = append(drop, append([]byte(nil), k...))
			rep.Lost = append(rep.Lost, Lost{Owner: owner, ID: id, Size: size, Why: why})
			return nil
		}
		sum, ok := sums[owner]
		if !ok {
			sum = &usageSum{}
			sums[owner] = sum
		}
		sum.used += size
		sum.shards++
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("check shard records: %w", err)
	}
	if err := s.deleteKeys(drop); err != nil {
		return rep, fmt.Errorf("drop damaged shard records: %w", err)
	}
	for _, l := range rep.Lost {
		if checkOwner(l.Owner) == nil {
			if err := removeFiles(s.Path(l.Owner, l.ID)); err != nil {
				return rep, fmt.Errorf("remove damaged shard: %w", err)
			}
		}
	}

	// 2. Every file needs its record.
	if err := s.removeOrphans(&rep); err != nil {
		return rep, err
	}

	// 3. Every owner's usage is the sum of its records.
	if err := s.fixUsage(sums, &rep); err != nil {
		return rep, fmt.Errorf("correct usage: %w", err)
	}
	if err := s.db.Sync(); err != nil {
		return rep, err
	}
	return rep, nil
}

// checkFiles says what is wrong with a recorded shard's files, or "". An
// outboard tree missing or of the wrong size (Put does not sync it) is made
// again from the body, and counted in rep; a body that then shows wrong
// bytes is what is wrong. A body that cannot be checked (stat fails other
// than with "not found"), or a tree that cannot be made again for a reason
// other than the body's bytes (unreadable, a full disk), keeps the shard,
// counted in rep: a proof makes the tree, or finds the shard damaged.
func (s *Store) checkFiles(owner peer.ID, id [32]byte, size int64, rep *Repair) string {
	if checkOwner(owner) != nil {
		return "invalid owner"
	}
	kept := func(why string, err error) {
		rep.Kept++
		if rep.KeptError == "" {
			rep.KeptError = fmt.Sprintf("shard %s of %s: %s", shortID(id), owner, why)
			if err != nil {
				rep.KeptError += fmt.Sprintf(": %v", err)
			}
		}
	}
	name := s.Path(owner, id)
	if why, sure := checkFile(name, "shard file", size); why != "" {
		if !sure {
			kept(why, nil)
			return ""
		}
		return why
	}
	why, _ := checkFile(name+obaoExt, "outboard tree", treeSize(size))
	if why == "" {
		return ""
	}
	err := s.remakeTree(owner, id, size)
	switch {
	case errors.Is(err, errDamaged):
		return fmt.Sprintf("%s, and %v", why, err)
	case err != nil:
		kept(why, err)
	default:
		rep.Trees++
	}
	return ""
}

// remakeTree makes a held shard's outboard tree again from its body and puts
// it in place, at Open.
func (s *Store) remakeTree(owner peer.ID, id [32]byte, size int64) error {
	body, err := os.Open(s.Path(owner, id))
	if err != nil {
		return err
	}
	defer func() { _ = body.Close() }() // opened to read only: closing it loses nothing
	tree, err := makeTree(context.Background(), body, id, size)
	if err != nil {
		return err
	}
	return s.putTree(owner, id, tree, false)
}

// checkFile says what is wrong with the file name, which should be a
// regular file of size bytes, or "", and whether that is sure: a stat that
// fails other than with "not found" says nothing of the file.
func checkFile(name, what string, size int64) (why string, sure bool) {
	fi, err := os.Stat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return what + " missing", true
	case err != nil:
		return fmt.Sprintf("%s unreadable: %v", what, err), false
	case !fi.Mode().IsRegular():
		return what + " is not a file", true
	case fi.Size() != size:
		return fmt.Sprintf("%s of %d bytes, want %d", what, fi.Size(), size), true
	}
	return "", true
}

// removeOrphans removes the temporary files of interrupted puts and the
// shard files without a record, and the owner directories left empty.
// Names it does not know are left alone.
func (s *Store) removeOrphans(rep *Repair) error {
	dirs, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, d := range dirs {
		owner, err := peer.Decode(d.Name())
		if !d.IsDir() || err != nil || owner.String() != d.Name() || checkOwner(owner) != nil {
			continue
		}
		dir := filepath.Join(s.dir, d.Name())
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		kept := 0
		for _, e := range entries {
			name := filepath.Join(dir, e.Name())
			if strings.HasPrefix(e.Name(), tmpPrefix) && e.Type().IsRegular() {
				if err := os.Remove(name); err != nil {
					return err
				}
				rep.TempFiles++
				continue
			}
			id, ok := parseFileName(e.Name())
			if !ok || !e.Type().IsRegular() {
				kept++
				continue
			}
			held, err := s.db.Has(kv.Held, shardKey(owner, id))
			if err != nil {
				return err
			}
			if held {
				kept++
				continue
			}
			if fi, err := e.Info(); err == nil {
				rep.OrphanBytes += fi.Size()
			}
			if err := os.Remove(name); err != nil {
				return err
			}
			rep.Orphans++
		}
		if kept == 0 {
			if err := os.Remove(dir); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseFileName returns the shard ID a shard or outboard tree file is named
// after.
func parseFileName(name string) ([32]byte, bool) {
	var id [32]byte
	name = strings.TrimSuffix(name, obaoExt)
	if len(name) != 64 || strings.ToLower(name) != name {
		return id, false
	}
	_, err := hex.Decode(id[:], []byte(name))
	return id, err == nil
}

// fixUsage makes every usage record the sum of its owner's records.
func (s *Store) fixUsage(sums map[peer.ID]*usageSum, rep *Repair) error {
	type fix struct {
		key []byte
		val []byte // nil: delete
	}
	var fixes []fix
	seen := make(map[peer.ID]bool)
	err := s.db.Iterate(kv.Held, kv.IterOptions{Prefix: []byte{tagUsage}}, func(k, v []byte) error {
		owner, rest, err := parseOwnerKey(k)
		if err != nil || len(rest) != 0 {
			fixes = append(fixes, fix{key: append([]byte(nil), k...)})
			return nil
		}
		seen[owner] = true
		sum := sums[owner]
		used, shards, err := decodeUsage(v)
		switch {
		case sum == nil:
			fixes = append(fixes, fix{key: append([]byte(nil), k...)})
		case err != nil || used != sum.used || shards != sum.shards:
			fixes = append(fixes, fix{key: append([]byte(nil), k...), val: encodeUsage(sum.used, sum.shards)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for owner, sum := range sums {
		if !seen[owner] {
			fixes = append(fixes, fix{key: usageKey(owner), val: encodeUsage(sum.used, sum.shards)})
		}
	}
	if len(fixes) == 0 {
		return nil
	}
	rep.UsageFixed = len(fixes)
	return s.db.Batch(func(b *kv.Batch) error {
		for _, f := range fixes {
			var err error
			if f.val == nil {
				err = b.Delete(kv.Held, f.key)
			} else {
				err = b.Put(kv.Held, f.key, f.val)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// deleteKeys deletes keys from kv.Held.
func (s *Store) deleteKeys(keys [][]byte) error {
	if len(keys) == 0 {
		return nil
	}
	return s.db.Batch(func(b *kv.Batch) error {
		for _, k := range keys {
			if err := b.Delete(kv.Held, k); err != nil {
				return err
			}
		}
		return nil
	})
}
