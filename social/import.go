package social

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

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

// Import brings items home from an export or a feed: kind is "mastodon",
// "twitter" or "feed"; src a file, folder or URL. Importing twice adds
// nothing twice. Items are stored and indexed in batches; an import that
// fails half-way keeps what it stored.
func (s *Service) Import(ctx context.Context, kind, src string, progress func(done, total int)) (ImportReport, error) {
	b := &importBatch{s: s, keys: map[string]bool{}}
	opt := harvest.Options{Progress: progress}
	var (
		rep harvest.Report
		err error
	)
	switch kind {
	case SourceMastodon:
		rep, err = harvest.ImportMastodon(ctx, src, b.add, opt)
	case SourceTwitter:
		rep, err = harvest.ImportTwitter(ctx, src, b.add, opt)
	case SourceFeed:
		rep, err = harvest.ImportFeed(ctx, src, b.add, opt)
	default:
		return ImportReport{}, fmt.Errorf("unknown import kind %q: use mastodon, twitter or feed", kind)
	}
	if ferr := b.flush(); ferr != nil && err == nil {
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
const importBatchSize = 500

// importBatch gathers harvested items and stores them in batches: one
// store transaction and one index batch per importBatchSize items.
type importBatch struct {
	s       *Service
	pending []Entry
	keys    map[string]bool // IDs pending
}

// add is the harvest sink: it stores one item; added is false for a
// duplicate.
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
		return true, b.flush()
	}
	return true, nil
}

// flush stores and indexes the pending items.
func (b *importBatch) flush() error {
	if len(b.pending) == 0 {
		return nil
	}
	s := b.s
	s.mu.Lock()
	defer s.mu.Unlock()
	docs := make([]search.Doc, 0, len(b.pending))
	err := s.db.Batch(func(tx *kv.Batch) error {
		for _, e := range b.pending {
			if _, exists, err := s.getEntry(e.ID); err != nil || exists {
				if err != nil {
					return err
				}
				continue
			}
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
	b.pending = b.pending[:0]
	clear(b.keys)
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
	return Entry{
		ID: entryID(key), Key: key, Source: string(it.Source), Author: cleanText(it.Author, 200), Time: it.Time.UTC(),
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
				rc.Close()
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
