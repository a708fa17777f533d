package harvest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Limits on what an import reads. Inputs over them are refused (a whole
// file) or reported (one entry or medium), and never allocated.
const (
	// MaxExportFileSize caps the uncompressed size of the main file of an
	// export (outbox.json, tweets.js, note-tweet.js), read as a stream.
	MaxExportFileSize = 512 << 20
	// MaxMediaSize caps one media file; Media.Open never yields more.
	MaxMediaSize = 64 << 20
	// MaxDocumentSize caps one document fetched over HTTP (a feed, an
	// outbox page) and a feed file read whole by the feed parser.
	MaxDocumentSize = 20 << 20
	// MaxErrors is how many problems a Report lists; the rest are counted.
	MaxErrors = 100
	// DefaultMaxPages is how many pages of an ActivityPub outbox are read
	// when Options.MaxPages is zero.
	DefaultMaxPages = 20
	// DefaultHTTPTimeout bounds each HTTP exchange when Options.HTTPClient
	// is nil.
	DefaultHTTPTimeout = 30 * time.Second
	// UserAgent is sent with every HTTP request.
	UserAgent = "plug/0.1"

	// maxSmallFile caps side files read whole (actor.json, account.js).
	maxSmallFile = 4 << 20
	// maxNesting caps how deep JSON is walked token by token.
	maxNesting = 512
	// maxArchiveEntries caps how many entries of an archive are indexed.
	maxArchiveEntries = 2_000_000
)

// ErrTooLarge is returned (wrapped) when an input is over one of the size
// limits above.
var ErrTooLarge = errors.New("too large")

// ErrNotExport is returned (wrapped) when the input is not the kind of
// export that was asked for (no outbox.json, no tweets.js, no feed).
var ErrNotExport = errors.New("not a recognised export")

// Media is one file attached to an Item.
type Media struct {
	// Name is the file's base name, cleaned for display.
	Name string
	// Type is the MIME type when known ("image/jpeg").
	Type string
	// Size is the size in bytes when known (0 when not).
	Size int64
	// Description is the alternative text the author wrote, if any.
	Description string
	// Missing is true when the export references the file but does not
	// hold it, or holds it in a form that cannot be read (too large, a
	// symbolic link out of the folder); Open is then nil.
	Missing bool
	// Open reads the file, at most MaxMediaSize bytes (more is an error
	// wrapping ErrTooLarge). It is valid until the import returns; call it
	// from the Sink, one reader at a time, and close each reader.
	Open func() (io.ReadCloser, error) `json:"-"`
}

// Item is one post brought home.
type Item struct {
	Source Source
	// OriginalID is the service's ID of the post: the status URI
	// (Mastodon; the Announce activity's ID for a boost), the tweet ID,
	// the feed entry's GUID or link.
	OriginalID string
	// URL is where the post was published (http or https only).
	URL string
	// Author is the owner's handle as the export names it
	// ("@ann@example.social", "@ann"), or a feed's author name.
	Author string
	// Time is the original publication time, in UTC; zero when a feed
	// entry carries no date.
	Time time.Time
	// Text is plain text: HTML reduced with bluemonday's strict policy,
	// entities decoded, whitespace tidied, valid UTF-8; a '<' is never
	// followed directly by a letter, '/', '!' or '?'.
	Text string
	// Summary is the content warning (Mastodon) or the title (feeds).
	Summary string
	// InReplyTo names the post this one answers (a URL), if any.
	InReplyTo string
	// Mentions are the handles mentioned, with a leading '@'
	// ("@ann@example.social" for Mastodon, "@ann" for Twitter).
	Mentions []string
	// Tags are the hashtags, without '#'.
	Tags []string
	// Boost is true for a reblog or retweet; Text then names what was
	// boosted (the boosted post's URL for Mastodon, "RT @who: ..." for
	// Twitter).
	Boost bool
	Media []Media
}

// Key is the stable de-duplication key of the item: source ":" original ID,
// or, without an original ID, source ":" a hash of the URL, time and text.
func (it Item) Key() string {
	if it.OriginalID != "" {
		return string(it.Source) + ":" + it.OriginalID
	}
	h := sha256.New()
	io.WriteString(h, it.URL)
	io.WriteString(h, "\x00")
	io.WriteString(h, it.Time.UTC().Format(time.RFC3339Nano))
	io.WriteString(h, "\x00")
	io.WriteString(h, it.Text)
	return string(it.Source) + ":sha256:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// Report says what an import did. Every entry read is counted once:
// Seen = Imported + Duplicates + Skipped.
type Report struct {
	Seen       int
	Imported   int
	Duplicates int
	Skipped    int
	// MediaFound and MediaMissing count the media of the entries handed
	// to the sink.
	MediaFound   int
	MediaMissing int
	// SkipReasons counts skipped entries by reason ("direct message
	// (private)", "no text and no media", ...).
	SkipReasons map[string]int
	// Errors describes problems with parts of the input (at most
	// MaxErrors; the last line then says how many more there were).
	Errors []string
}

// Sink stores one item. It answers added=false when the item was already
// stored (a duplicate). An error stops the import.
type Sink func(ctx context.Context, it Item) (added bool, err error)

// Options tune an import. The zero value is ready to use.
type Options struct {
	// Progress, when set, is called after each entry with the entries
	// done and the total the export announces (0 when unknown; never
	// less than done).
	Progress func(done, total int)
	// MaxItems stops the import after that many entries (0: no limit).
	MaxItems int
	// HTTPClient fetches feeds, outbox pages and feed media. Nil means a
	// client with DefaultHTTPTimeout that follows at most 10 redirects,
	// to http and https URLs only.
	HTTPClient *http.Client
	// MaxPages caps the pages of an ActivityPub outbox read
	// (0: DefaultMaxPages).
	MaxPages int
}

// importer is the bookkeeping shared by the importers: it counts every
// entry into the report and hands items to the sink.
type importer struct {
	ctx    context.Context
	source Source
	sink   Sink
	opt    Options
	rep    Report
	text   *textCleaner
	total  int
	// moreErrors counts the problems past MaxErrors.
	moreErrors int

	httpClient *http.Client // the default client, made on first use
}

func newImporter(ctx context.Context, source Source, sink Sink, opt Options) *importer {
	return &importer{
		ctx: ctx, source: source, sink: sink, opt: opt,
		rep:  Report{SkipReasons: map[string]int{}},
		text: newTextCleaner(),
	}
}

// report returns the final report.
func (im *importer) report() Report {
	r := im.rep
	if im.moreErrors > 0 {
		errs := append([]string(nil), r.Errors[:MaxErrors-1]...)
		r.Errors = append(errs, fmt.Sprintf("... and %d more problems not listed", im.moreErrors+1))
	}
	return r
}

// full reports whether MaxItems entries have been seen.
func (im *importer) full() bool {
	return im.opt.MaxItems > 0 && im.rep.Seen >= im.opt.MaxItems
}

// problem records a problem with part of the input.
func (im *importer) problem(format string, args ...any) {
	if len(im.rep.Errors) >= MaxErrors {
		im.moreErrors++
		return
	}
	im.rep.Errors = append(im.rep.Errors, fmt.Sprintf(format, args...))
}

// skip counts one entry that is not imported, and why.
func (im *importer) skip(reason string) {
	im.rep.Seen++
	im.rep.Skipped++
	im.rep.SkipReasons[reason]++
	im.progress()
}

func (im *importer) progress() {
	if im.opt.Progress == nil {
		return
	}
	total := im.total
	if total > 0 && total < im.rep.Seen {
		total = im.rep.Seen
	}
	im.opt.Progress(im.rep.Seen, total)
}

// Skip reasons used in Report.SkipReasons.
const (
	reasonNotPost     = "not a Create or Announce"
	reasonObjectType  = "not a post (unsupported object type)"
	reasonDirect      = "direct message (private)"
	reasonEmpty       = "no text and no media"
	reasonMalformed   = "malformed entry"
	reasonStoreFailed = "not stored (sink error)"
	reasonReference   = "a reference, not an embedded activity"
)

// sinkError marks an error of the sink, which is not a problem of the input.
type sinkError struct{ err error }

func (e *sinkError) Error() string { return e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

// inputProblem lists err in the report unless it is the sink's or the
// context's: the input broke off there.
func (im *importer) inputProblem(err error) {
	var se *sinkError
	if errors.As(err, &se) || im.ctx.Err() != nil {
		return
	}
	im.problem("%v", err)
}

// emit hands one item to the sink and counts it. A sink error stops the
// import: the item is counted as skipped and the error returned.
func (im *importer) emit(it Item) error {
	if it.Text == "" && it.Summary == "" && len(it.Media) == 0 {
		im.skip(reasonEmpty)
		return nil
	}
	if err := im.ctx.Err(); err != nil {
		return err
	}
	it.Source = im.source
	added, err := im.sink(im.ctx, it)
	if err != nil {
		im.skip(reasonStoreFailed)
		return &sinkError{fmt.Errorf("store %s: %w", it.Key(), err)}
	}
	im.rep.Seen++
	if added {
		im.rep.Imported++
	} else {
		im.rep.Duplicates++
	}
	for _, m := range it.Media {
		if m.Missing {
			im.rep.MediaMissing++
		} else {
			im.rep.MediaFound++
		}
	}
	im.progress()
	return nil
}
