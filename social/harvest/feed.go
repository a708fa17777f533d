package harvest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/mmcdole/gofeed"
	jsonfeed "github.com/mmcdole/gofeed/json"
)

// Accept headers: any feed (ActivityPub first), and ActivityPub only.
const (
	acceptAny = `application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams";q=0.95, ` +
		`application/atom+xml;q=0.9, application/rss+xml;q=0.9, application/feed+json;q=0.9, application/json;q=0.8, ` +
		`application/xml;q=0.7, text/xml;q=0.7, */*;q=0.1`
	acceptAP = "application/activity+json"
)

// SourceFeed is the source of the items of RSS, Atom and JSON feeds and of
// ActivityPub outboxes.
const SourceFeed Source = "feed"

func init() {
	register(Importer{
		Source: SourceFeed,
		Name:   "feeds",
		Label:  "an RSS, Atom or ActivityPub feed",
		URL:    true,
		Help:   "an RSS, Atom or JSON feed or an ActivityPub outbox: its http or https URL, or a file",
		Order:  30,
		Import: ImportFeed,
	})
}

// ImportFeed imports the entries of a feed: src is an http or https URL,
// or a local file. RSS, Atom and JSON Feed are read with gofeed; an
// ActivityPub outbox (a JSON OrderedCollection, or an actor, whose outbox
// is then read) is read page by page, following "first" then "next" on the
// same host, at most Options.MaxPages pages. Each document fetched is at
// most MaxDocumentSize. Feed media (enclosures, attachments) are fetched
// when opened. An error means the import stopped early; the report then
// says what was done before.
func ImportFeed(ctx context.Context, src string, sink Sink, opt Options) (Report, error) {
	im := newImporter(ctx, SourceFeed, sink, opt)
	err := im.feed(src)
	if errors.Is(err, errStop) {
		err = nil
	}
	return im.report(), err
}

func (im *importer) feed(src string) error {
	if !strings.Contains(src, "://") {
		return im.feedFile(src)
	}
	u, err := url.Parse(src)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("import feed %q: only http and https URLs can be fetched; give such a URL or a local file", src)
	}
	body, final, err := im.fetch(u.String(), acceptAny)
	if err != nil {
		return fmt.Errorf("import feed: %w", err)
	}
	if firstByte(body) == '{' {
		handled, err := im.apDocument(body, final)
		if handled || err != nil {
			if err != nil && !errors.Is(err, errStop) {
				im.inputProblem(err)
				return fmt.Errorf("import feed %s: %w", final, err)
			}
			return err
		}
	}
	return im.feedItems(body, final)
}

// feedFile imports a local file: an ActivityPub outbox is read as a stream
// (up to MaxExportFileSize), anything else whole with gofeed (up to
// MaxDocumentSize).
func (im *importer) feedFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("import feed: %w", err)
	}
	defer closeReader(f)
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("import feed %s: not a regular file: give a feed file or URL", name)
	}
	br := bufio.NewReader(newCapReader(f, MaxExportFileSize, name))
	if c, err := peekByte(br); err == nil && c == '{' {
		ac := &apContext{media: func(m apMedia) Media { return im.remoteMedia(string(m.URL), m.MediaType, m.Name, nil, 0) }}
		c, err := walkCollection(br, name, func(dec *json.Decoder, c *collection) error {
			return im.collectionEntry(dec, c, name, ac)
		})
		if errors.Is(err, errStop) {
			return nil
		}
		if c.isAP() {
			if err != nil {
				im.inputProblem(err)
				return fmt.Errorf("import feed %s: %w", name, err)
			}
			if !c.items {
				im.problem("%s holds no items; its pages are not followed from a file: import its URL instead", name)
			}
			return nil
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("import feed %s: %w", name, err)
		}
	} else if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("import feed %s: %w", name, err)
	}
	body, err := io.ReadAll(newCapReader(f, MaxDocumentSize, name))
	if err != nil {
		return fmt.Errorf("import feed: %w", err)
	}
	return im.feedItems(body, nil)
}

// feedItems imports an RSS, Atom or JSON Feed document; base resolves
// relative links (nil for a file).
func (im *importer) feedItems(body []byte, base *url.URL) error {
	where := "the file"
	if base != nil {
		where = base.String()
	}
	if err := checkXMLShape(body); err != nil {
		return fmt.Errorf("import feed %s: %w", where, err)
	}
	p := gofeed.NewParser()
	p.KeepOriginalFeed = true
	f, err := p.Parse(bytes.NewReader(body))
	if err != nil {
		if errors.Is(err, gofeed.ErrFeedTypeNotDetected) {
			return fmt.Errorf("import feed %s: it is not RSS, Atom, JSON Feed or an ActivityPub outbox: %w", where, ErrNotExport)
		}
		return fmt.Errorf("import feed %s: %w: the feed is broken", where, err)
	}
	var jsonItems []*jsonfeed.Item
	if jf, ok := f.OriginalFeed().(*jsonfeed.Feed); ok && len(jf.Items) == len(f.Items) {
		jsonItems = jf.Items
	}
	feedAuthor := ""
	if len(f.Authors) > 0 && f.Authors[0] != nil {
		feedAuthor = line(f.Authors[0].Name)
	}
	if feedAuthor == "" {
		feedAuthor = line(im.text.html(f.Title))
	}
	im.total = len(f.Items)
	if len(f.Items) == 0 {
		im.problem("%s is a feed with no items: there is nothing to import", where)
	}
	for i, fi := range f.Items {
		if im.full() {
			return nil
		}
		if fi == nil {
			im.skip(reasonMalformed)
			continue
		}
		it := Item{
			URL:     resolveURL(base, fi.Link),
			Summary: line(im.text.html(fi.Title)),
			Author:  feedAuthor,
		}
		it.OriginalID = firstOf(line(fi.GUID), it.URL, line(fi.Link))
		if len(it.OriginalID) > 2048 {
			it.OriginalID = ""
		}
		if len(fi.Authors) > 0 && fi.Authors[0] != nil && line(fi.Authors[0].Name) != "" {
			it.Author = line(fi.Authors[0].Name)
		}
		switch {
		case fi.PublishedParsed != nil:
			it.Time = fi.PublishedParsed.UTC()
		case fi.UpdatedParsed != nil:
			it.Time = fi.UpdatedParsed.UTC()
		}
		switch {
		case jsonItems != nil && jsonItems[i] != nil && jsonItems[i].ContentHTML == "" && jsonItems[i].ContentText != "":
			it.Text = im.text.plain(jsonItems[i].ContentText)
		case strings.TrimSpace(fi.Content) != "":
			it.Text = im.text.html(fi.Content)
		default:
			it.Text = im.text.html(fi.Description)
		}
		for _, c := range fi.Categories {
			it.Tags = appendUnique(it.Tags, hashtag(c))
		}
		for _, e := range fi.Enclosures {
			if e == nil || len(it.Media) == maxMediaPerItem {
				continue
			}
			size, _ := strconv.ParseInt(strings.TrimSpace(e.Length), 10, 64)
			it.Media = append(it.Media, im.remoteMedia(e.URL, e.Type, "", base, size))
		}
		if err := im.emit(it); err != nil {
			return err
		}
	}
	return nil
}

// apDocument imports an ActivityPub document fetched from base: an actor
// (whose outbox is fetched), an outbox or a page, following its pages. It
// reports false when the document is not ActivityPub (a JSON Feed).
func (im *importer) apDocument(body []byte, base *url.URL) (bool, error) {
	ac := &apContext{media: func(m apMedia) Media { return im.remoteMedia(string(m.URL), m.MediaType, m.Name, base, 0) }}
	item := func(dec *json.Decoder, c *collection) error {
		return im.collectionEntry(dec, c, base.String(), ac)
	}
	c, err := walkCollection(bytes.NewReader(body), base.String(), item)
	if err != nil || !c.isAP() {
		return c.isAP(), err
	}
	if !isCollectionType(c.typ) && c.outbox != "" {
		// An actor: read its outbox.
		ac.author = handleOf(firstOf(c.id, base.String()), c.preferred)
		ac.followers = c.followers
		u, err := im.pageURL(base, c.outbox, nil)
		if err != nil {
			return true, err
		}
		if body, base, err = im.fetch(u.String(), acceptAP); err != nil {
			return true, err
		}
		if c, err = walkCollection(bytes.NewReader(body), base.String(), item); err != nil {
			return true, err
		}
		if !isCollectionType(c.typ) && !c.items {
			return true, fmt.Errorf("%s is not an outbox (its type is %q): %w", base, c.typ, ErrNotExport)
		}
	}
	return true, im.apPages(c, base, item)
}

// apPages reads the pages after a collection document: "first" when the
// document held no items itself, then "next", at most MaxPages pages.
func (im *importer) apPages(c collection, base *url.URL, item func(*json.Decoder, *collection) error) error {
	maxPages := im.opt.MaxPages
	if maxPages <= 0 {
		maxPages = DefaultMaxPages
	}
	pages := 0
	next := c.next
	if c.items {
		pages++
	} else {
		next = c.first
	}
	visited := map[string]bool{base.String(): true}
	origin := base
	for {
		if im.full() {
			return nil
		}
		var (
			doc  []byte
			from = base
		)
		switch firstByte(next) {
		case 0, 'n': // absent or null
			return nil
		case '{': // an embedded page
			doc = next
		case '"':
			var ref string
			if err := json.Unmarshal(next, &ref); err != nil || ref == "" {
				return nil
			}
			u, err := im.pageURL(base, ref, origin)
			if err != nil {
				im.problem("%v", err)
				return nil
			}
			if visited[u.String()] {
				return nil
			}
			if pages >= maxPages {
				im.problem("stopped after %d pages (the page limit); more items remain at %s", pages, u)
				return nil
			}
			visited[u.String()] = true
			var err2 error
			if doc, from, err2 = im.fetch(u.String(), acceptAP); err2 != nil {
				return err2
			}
		default:
			im.problem("the next page of %s is neither a link nor a page", base)
			return nil
		}
		pc, err := walkCollection(bytes.NewReader(doc), from.String(), item)
		if err != nil {
			return err
		}
		pages++
		base = from
		next = pc.next
		if !pc.items {
			next = pc.first
		}
	}
}

// pageURL resolves a page's link and checks it: http or https, and on the
// same host as the outbox (origin, when given).
func (im *importer) pageURL(base *url.URL, ref string, origin *url.URL) (*url.URL, error) {
	u, err := base.Parse(ref)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("the outbox at %s links to %q, which is not an http or https URL: not followed", base, line(ref))
	}
	if origin != nil && !strings.EqualFold(u.Host, origin.Host) {
		return nil, fmt.Errorf("the outbox at %s links to a page on another host (%s): not followed", origin, u.Host)
	}
	u.Fragment = ""
	return u, nil
}

// resolveURL resolves a link against base and keeps it when it is http or
// https.
func resolveURL(base *url.URL, ref string) string {
	ref = strings.TrimSpace(ref)
	if base != nil {
		if u, err := base.Parse(ref); err == nil {
			ref = u.String()
		}
	}
	return safeURL(ref)
}

// remoteMedia is a medium on the web, fetched when opened.
func (im *importer) remoteMedia(ref, typ, desc string, base *url.URL, size int64) Media {
	u := resolveURL(base, ref)
	m := Media{Type: mimeType(typ), Description: im.text.plain(desc), Missing: true}
	if u == "" {
		return m
	}
	pu, _ := url.Parse(u)
	m.Name = baseName(pu.Path)
	if m.Type == "" {
		m.Type = typeByName(m.Name)
	}
	if size > 0 && size <= MaxMediaSize {
		m.Size = size
	}
	if size > MaxMediaSize {
		im.problem("media %s: %s is over the %s limit: not fetched", u, humanSize(size), humanSize(MaxMediaSize))
		return m
	}
	m.Missing = false
	m.Open = func() (io.ReadCloser, error) { return im.fetchStream(u, "*/*", MaxMediaSize) }
	return m
}

// client returns the HTTP client of the import.
func (im *importer) client() *http.Client {
	if im.opt.HTTPClient != nil {
		return im.opt.HTTPClient
	}
	if im.httpClient == nil {
		im.httpClient = &http.Client{
			Timeout: DefaultHTTPTimeout,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 10 {
					return errors.New("more than 10 redirects")
				}
				if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
					return fmt.Errorf("redirected to %s, which is not http or https", req.URL.Scheme)
				}
				return nil
			},
		}
	}
	return im.httpClient
}

// fetchStream starts a GET of u and returns its body, capped at max.
func (im *importer) fetchStream(u, accept string, max int64) (io.ReadCloser, error) {
	rc, _, err := get(im.ctx, im.client(), u, accept, max)
	return rc, err
}

// fetch GETs one document (at most MaxDocumentSize) and returns it with
// the URL it came from after redirects.
func (im *importer) fetch(u, accept string) ([]byte, *url.URL, error) {
	rc, final, err := get(im.ctx, im.client(), u, accept, MaxDocumentSize)
	if err != nil {
		return nil, nil, err
	}
	defer closeReader(rc)
	body, err := io.ReadAll(rc)
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	return body, final, nil
}

// get starts a GET of u, refusing answers other than 2xx and bodies over
// max bytes (announced, or read), and returns the body and the URL it
// came from after redirects.
func get(ctx context.Context, client *http.Client, u, accept string, max int64) (io.ReadCloser, *url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", UserAgent)
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, nil, fmt.Errorf("fetch %s: %w: check the address, the network and that the server is up", u, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		closeReader(resp.Body)
		return nil, nil, fmt.Errorf("fetch %s: the server answered %q", u, resp.Status)
	}
	if resp.ContentLength > max {
		closeReader(resp.Body)
		return nil, nil, tooLarge(fmt.Sprintf("the response from %s (%s)", u, humanSize(resp.ContentLength)), max)
	}
	return readCloser{newCapReader(resp.Body, max, "the response from "+u), resp.Body}, resp.Request.URL, nil
}

// firstByte is the first byte of b that is not white space (0 if none).
func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n\uFEFF")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// peekByte returns the first byte of r that is not white space or a byte
// order mark, without consuming anything.
func peekByte(br *bufio.Reader) (byte, error) {
	for n := 1; n <= 4096; n++ {
		b, err := br.Peek(n)
		if len(b) < n {
			return 0, err
		}
		switch c := b[n-1]; c {
		case ' ', '\t', '\r', '\n', 0xEF, 0xBB, 0xBF:
		default:
			return c, nil
		}
	}
	return 0, io.EOF
}

// Bounds on the shape of an XML feed: real feeds nest a few elements deep
// and hold thousands at most. A document past them would cost the parser
// (which builds a tree) far more than its bytes.
const (
	maxFeedDepth    = 64
	maxFeedElements = 1_000_000
)

// checkXMLShape scans an XML document's tags, without building anything,
// and refuses one nested too deep or with too many elements. What the
// tolerant scan cannot read is left to the feed parser to judge.
func checkXMLShape(body []byte) error {
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")), " \t\r\n")
	if !bytes.HasPrefix(trimmed, []byte("<")) {
		return nil
	}
	dec := xml.NewDecoder(bytes.NewReader(trimmed))
	dec.Strict = false
	dec.AutoClose = xml.HTMLAutoClose
	dec.Entity = xml.HTMLEntity
	depth, elements := 0, 0
	for {
		tok, err := dec.RawToken()
		if err != nil {
			return nil // the end, or XML the parser may still read
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
			elements++
			if depth > maxFeedDepth {
				return fmt.Errorf("%w: its elements nest more than %d deep, where a feed nests a handful", ErrNotExport, maxFeedDepth)
			}
			if elements > maxFeedElements {
				return fmt.Errorf("%w: it has more than %d elements, more than any feed", ErrTooLarge, maxFeedElements)
			}
		case xml.EndElement:
			depth = max(0, depth-1)
		}
	}
}
