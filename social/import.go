package social

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/plug-net/plug/social/harvest"
	"github.com/plug-net/plug/social/search"
	"github.com/plug-net/plug/store/kv"
)

// ImportReport is the contract's answer of "plug import --json", with the
// skip reasons and errors of a partial import.
type ImportReport struct {
	Imported     int            `json:"imported"`
	Duplicates   int            `json:"duplicates"`
	Skipped      int            `json:"skipped"`
	MediaFound   int            `json:"media_found"`
	MediaMissing int            `json:"media_missing"`
	Seen         int            `json:"seen"`
	SkipReasons  map[string]int `json:"skip_reasons,omitempty"`
	Errors       []string       `json:"errors,omitempty"`
}

// Import brings items home from an export or a feed: kind names a
// registered importer (harvest.Importers: "mastodon", "twitter", "feed");
// src is a file, folder or URL. Importing twice adds nothing twice. Items
// are stored and indexed in batches; an import that fails or is cancelled
// half-way (Close cancels it too) keeps what it stored.
func (s *Service) Import(ctx context.Context, kind, src string, progress func(done, total int)) (ImportReport, error) {
	imp, ok := harvest.Lookup(harvest.Source(kind))
	if !ok {
		return ImportReport{}, CheckImportKind(kind)
	}
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return ImportReport{}, err
	}
	defer done()
	b := newImportBatch(s)
	rep, err := imp.Import(ctx, src, b.add, harvest.Options{Progress: progress})
	if ferr := b.flush(true); ferr != nil && err == nil {
		err = ferr
	}
	out := ImportReport{
		Imported: rep.Imported, Duplicates: rep.Duplicates, Skipped: rep.Skipped,
		MediaFound: rep.MediaFound, MediaMissing: rep.MediaMissing, Seen: rep.Seen,
		SkipReasons: rep.SkipReasons, Errors: rep.Errors,
	}
	if err != nil {
		s.log.Warn("import failed", "kind", kind, "source", displaySource(src), "imported", out.Imported, "err", err)
		return out, err
	}
	s.log.Info("import done", "kind", kind, "source", displaySource(src), "imported", out.Imported, "duplicates", out.Duplicates,
		"skipped", out.Skipped, "media_found", out.MediaFound, "media_missing", out.MediaMissing)
	return out, nil
}

// importBatchSize is how many items are stored and indexed together.
const importBatchSize = 1000

// importBatch gathers harvested items and stores them in batches: one
// store transaction and one index batch per importBatchSize items. A batch
// is stored while the next one is parsed (one in flight at most), in a
// goroutine that Import waits for (flush(true)) before it returns.
type importBatch struct {
	s       *Service
	pending []Entry
	keys    map[string]bool // IDs added by this import
	busy    chan struct{}   // held while a batch is stored
	err     error           // the first failure of a stored batch (read after wait)
}

func newImportBatch(s *Service) *importBatch {
	return &importBatch{s: s, keys: map[string]bool{}, busy: make(chan struct{}, 1)}
}

// add is the harvest sink: it keeps one item for storing; added is false
// for a duplicate.
func (b *importBatch) add(ctx context.Context, it harvest.Item) (bool, error) {
	e := entryOf(it)
	if b.keys[e.ID] {
		return false, nil
	}
	if _, exists, err := b.s.getEntry(e.ID); err != nil || exists {
		return false, err
	}
	if err := b.s.storeMedia(ctx, &e, it.Media); err != nil {
		return false, err
	}
	b.keys[e.ID] = true
	b.pending = append(b.pending, e)
	if len(b.pending) >= importBatchSize {
		return true, b.flush(false)
	}
	return true, nil
}

// flush hands the pending items to the writer; with wait, it returns once
// everything is stored.
func (b *importBatch) flush(wait bool) error {
	b.busy <- struct{}{} // the previous batch is stored
	err := b.err
	if err != nil || len(b.pending) == 0 {
		<-b.busy
		return err
	}
	batch := b.pending
	b.pending = make([]Entry, 0, importBatchSize)
	go func() {
		defer func() { <-b.busy }()
		if err := b.s.storeEntries(batch); err != nil {
			b.err = err
		}
	}()
	if wait {
		b.busy <- struct{}{}
		<-b.busy
		return b.err
	}
	return nil
}

// storeEntries stores and indexes new entries in one transaction and one
// index batch.
func (s *Service) storeEntries(batch []Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	docs := make([]search.Doc, 0, len(batch))
	err := s.db.Batch(func(tx *kv.Batch) error {
		for _, e := range batch {
			v, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := tx.Put(kv.Posts, append(slices.Clone(pfxEntry), e.ID...), v); err != nil {
				return err
			}
			if err := tx.Put(kv.Posts, timeKey(e.Time, e.ID), nil); err != nil {
				return err
			}
			docs = append(docs, docOf(e))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store imported items: %w", err)
	}
	s.changes.Add(uint64(len(docs)))
	if err := s.index.Put(docs...); err != nil {
		return fmt.Errorf("index imported items: %w", err)
	}
	return nil
}

// displaySource shortens a path or URL for the log.
func displaySource(src string) string {
	if strings.Contains(src, "://") {
		return src
	}
	return filepath.Base(src)
}

// entryOf makes a timeline entry of a harvested item (without its media).
func entryOf(it harvest.Item) Entry {
	key := it.Key()
	t := it.Time.UTC()
	if !datable(t) {
		// Undated (some feeds) or out of range: the time of the import,
		// so that it neither sits above everything nor breaks paging.
		t = time.Now().UTC()
	}
	return Entry{
		ID: entryID(key), Key: key, Source: string(it.Source), Author: cleanText(it.Author, 200), Time: t,
		Text: it.Text, Summary: it.Summary, URL: it.URL, InReplyTo: it.InReplyTo,
		Tags: it.Tags, Mentions: it.Mentions, Boost: it.Boost,
	}
}

// storeMedia stores an item's media files and records them in e.
func (s *Service) storeMedia(ctx context.Context, e *Entry, media []harvest.Media) error {
	for _, m := range media {
		ref := MediaRef{Name: cleanText(filepath.Base(m.Name), 255), Type: cleanText(m.Type, 100), Size: m.Size, Missing: m.Missing}
		if !m.Missing && m.Open != nil {
			rc, err := m.Open()
			if err != nil {
				ref.Missing = true
			} else {
				hash, size, err := s.media.put(rc, harvest.MaxMediaSize)
				_ = rc.Close() // a file of the export, read only: closing it loses nothing
				switch {
				case ctx.Err() != nil:
					return ctx.Err()
				case err != nil:
					ref.Missing = true
				default:
					ref.Hash, ref.Size = hash, size
				}
			}
		}
		e.Media = append(e.Media, ref)
	}
	return nil
}
