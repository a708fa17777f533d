package harvest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
)

// SourceMastodon is the source of the items of a Mastodon archive.
const SourceMastodon Source = "mastodon"

func init() {
	register(Importer{
		Source: SourceMastodon,
		Name:   "Mastodon",
		Label:  "a Mastodon archive",
		Files:  ".zip, .tar.gz",
		Help:   "a Mastodon archive: the .zip or .tar.gz of \"Request your archive\", its unpacked folder, or its outbox.json",
		Order:  10,
		Import: ImportMastodon,
	})
}

// ImportMastodon imports the owner's posts and boosts from a Mastodon
// archive ("Request your archive" in Mastodon's settings): a .zip, a
// .tar.gz, an unpacked folder, or its outbox.json itself. Direct messages
// are skipped; media the archive references but does not hold are marked
// Missing. The report accounts for every activity of outbox.json. An error
// means the import stopped early (an unreadable archive or outbox.json,
// a sink error, ctx ended); the report then says what was done before.
func ImportMastodon(ctx context.Context, path string, sink Sink, opt Options) (Report, error) {
	im := newImporter(ctx, SourceMastodon, sink, opt)
	err := im.mastodon(path)
	return im.report(), err
}

func (im *importer) mastodon(p string) error {
	a, single, problems, err := openArchive(im.ctx, p)
	if err != nil {
		return fmt.Errorf("import Mastodon archive: %w", err)
	}
	defer closeReader(a)
	for _, pr := range problems {
		im.problem("%s", pr)
	}
	outbox := single
	if outbox == "" {
		var ok bool
		if outbox, ok = a.find("outbox.json"); !ok {
			return fmt.Errorf("import Mastodon archive %s: no outbox.json in it: give the .zip or .tar.gz that Mastodon's \"Request your archive\" produces, or its unpacked folder: %w", p, ErrNotExport)
		}
	}
	root := path.Dir(outbox)
	if root == "." {
		root = ""
	}
	ac := &apContext{}
	im.readActor(a, path.Join(root, "actor.json"), ac)
	ac.media = func(m apMedia) Media { return im.archiveMedia(a, root, m) }

	rc, err := a.open(outbox, MaxExportFileSize)
	if err != nil {
		return fmt.Errorf("import Mastodon archive %s: %w", p, err)
	}
	defer closeReader(rc)
	if err := im.outbox(rc, outbox, ac); err != nil {
		return fmt.Errorf("import Mastodon archive %s: %w", p, err)
	}
	return nil
}

// outbox imports the activities of an outbox.json read from r.
func (im *importer) outbox(r io.Reader, what string, ac *apContext) error {
	c, err := walkCollection(r, what, func(dec *json.Decoder, c *collection) error {
		return im.collectionEntry(dec, c, what, ac)
	})
	if errors.Is(err, errStop) {
		return nil
	}
	if err != nil {
		im.inputProblem(err)
		return err
	}
	if !c.items {
		return fmt.Errorf("%s holds no orderedItems: it is not a Mastodon outbox: %w", what, ErrNotExport)
	}
	return nil
}

// collectionEntry imports the next entry of collection c (the total it
// announces counts for the progress), or stops the walk once
// Options.MaxItems entries were seen.
func (im *importer) collectionEntry(dec *json.Decoder, c *collection, what string, ac *apContext) error {
	if im.full() {
		return errStop
	}
	if im.total == 0 {
		im.total = c.total
	}
	return im.apEntry(dec, what, ac)
}

// errStop ends a walk early once Options.MaxItems entries were seen.
var errStop = errors.New("stop")

// readActor reads the owner's handle and followers collection from
// actor.json, when the archive has one.
func (im *importer) readActor(a archive, name string, ac *apContext) {
	rc, err := a.open(name, maxSmallFile)
	if err != nil {
		if !errors.Is(err, errNoEntry) {
			im.problem("actor.json: %v", err)
		}
		return
	}
	defer closeReader(rc)
	var actor struct {
		ID                string `json:"id"`
		PreferredUsername string `json:"preferredUsername"`
		Followers         apRef  `json:"followers"`
	}
	if err := json.NewDecoder(rc).Decode(&actor); err != nil {
		im.problem("actor.json is unreadable (%v): the author is taken from each post", err)
		return
	}
	ac.author = handleOf(actor.ID, actor.PreferredUsername)
	ac.followers = string(actor.Followers)
}

// archiveMedia resolves an attachment to a file of the archive. Mastodon
// writes the file's path as the attachment's URL; it may carry the
// storage bucket's name before "media_attachments/", which the archive
// does not.
func (im *importer) archiveMedia(a archive, root string, m apMedia) Media {
	ref := string(m.URL)
	out := Media{
		Type:        mimeType(m.MediaType),
		Description: im.text.plain(m.Name),
	}
	p := ref
	if u, err := url.Parse(ref); err == nil {
		p = u.Path
	}
	out.Name = baseName(p)
	if out.Type == "" {
		out.Type = typeByName(out.Name)
	}
	for _, cand := range mediaCandidates(p) {
		name := path.Join(root, cand)
		size, err := a.stat(name)
		if errors.Is(err, errNoEntry) {
			continue
		}
		if err == nil && size > MaxMediaSize {
			err = tooLarge(fmt.Sprintf("%s (%s)", name, humanSize(size)), MaxMediaSize)
		}
		if err != nil {
			im.problem("media %s: %v", line(ref), err)
			break
		}
		out.Size = size
		out.Open = func() (io.ReadCloser, error) { return a.openMedia(name, MaxMediaSize) }
		return out
	}
	out.Missing = true
	return out
}

// mediaCandidates lists where an attachment's file may sit in the
// archive, as clean relative names.
func mediaCandidates(p string) []string {
	p = strings.TrimLeft(p, "/")
	var out []string
	if c, ok := cleanName(p); ok {
		out = append(out, c)
	}
	if c, ok := cleanName(strings.TrimPrefix(p, "system/")); ok && c != p {
		out = append(out, c)
	}
	if i := strings.Index(p, "media_attachments/"); i > 0 {
		if c, ok := cleanName(p[i:]); ok {
			out = append(out, c)
		}
	}
	return out
}
