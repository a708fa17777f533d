package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/plug-net/plug/httpui"
	"github.com/plug-net/plug/social"
	"github.com/plug-net/plug/social/harvest"
)

func cmdPost(ctx context.Context, std stdio, args []string) error {
	f := newFlags("post", std)
	var images multiFlag
	f.Var(&images, "image", "attach an image `FILE` (up to 4)")
	edit := f.String("edit", "", "replace the text of your post `ID` (and its images, if --image is given)")
	del := f.String("delete", "", "delete your post `ID` (at your friends too)")
	jsonOut := f.Bool("json", false, "print the post as JSON")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	text := strings.Join(pos, " ")
	if text == "-" {
		b, err := io.ReadAll(io.LimitReader(std.in, 1<<20))
		if err != nil {
			return err
		}
		text = string(b)
	}
	c, err := f.client(std)
	if err != nil {
		return err
	}
	if *del != "" {
		if text != "" || len(images) > 0 || *edit != "" {
			return usagef(f.cmd.usage, "post: --delete takes no text, --image or --edit")
		}
		if err := c.do(ctx, "DELETE", "/api/v1/posts/"+url.PathEscape(*del), nil, nil, nil); err != nil {
			return fmt.Errorf("delete post: %w", err)
		}
		if *jsonOut {
			return printJSON(std.out, map[string]string{"deleted": *del})
		}
		std.err.println("Deleted; your friends' plugs drop it when they next hear from yours.")
		return nil
	}
	if strings.TrimSpace(text) == "" && len(images) == 0 {
		return usagef(f.cmd.usage, "post: give the text to post (or - to read it from stdin), or an --image")
	}
	if n := utf8.RuneCountInString(text); n > social.MaxPostChars {
		return fmt.Errorf("the post has %d characters; at most %d fit", n, social.MaxPostChars)
	}
	body, ctype, err := postBody(text, images)
	if err != nil {
		return err
	}
	method, path := "POST", "/api/v1/posts"
	if *edit != "" {
		method, path = "PUT", "/api/v1/posts/"+url.PathEscape(*edit)
	}
	var e social.Entry
	if err := c.doRaw(ctx, method, path, body, ctype, &e); err != nil {
		return fmt.Errorf("post: %w", err)
	}
	if *jsonOut {
		return printJSON(std.out, e)
	}
	std.out.println(e.ID)
	return nil
}

// postBody builds the multipart form of a post with its images.
func postBody(text string, images []string) (*bytes.Buffer, string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("text", text); err != nil {
		return nil, "", err
	}
	for _, path := range images {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, "", fmt.Errorf("image: %w", err)
		}
		if fi.Size() > social.MaxImageSize {
			return nil, "", fmt.Errorf("image %s is %s; at most %s fit", path, humanSize(fi.Size()), humanSize(social.MaxImageSize))
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, "", fmt.Errorf("image: %w", err)
		}
		h := make(textproto.MIMEHeader)
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="image"; filename=%q`, filepath.Base(path)))
		h.Set("Content-Type", http.DetectContentType(b))
		w, err := mw.CreatePart(h)
		if err != nil {
			return nil, "", err
		}
		if _, err := w.Write(b); err != nil {
			return nil, "", err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return &buf, mw.FormDataContentType(), nil
}

// doRaw sends a body of the given type and decodes the JSON answer.
func (c *client) doRaw(ctx context.Context, method, path string, body io.Reader, ctype string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := c.sendReq(req)
	if err != nil {
		return err
	}
	defer closeBody(resp.Body)
	return json.NewDecoder(resp.Body).Decode(out)
}

func cmdTimeline(ctx context.Context, std stdio, args []string) error {
	f := newFlags("timeline", std)
	jsonOut := f.Bool("json", false, "print the items as JSON")
	friend := f.String("friend", "", "only the posts of friend `NAME` (or peer ID)")
	source := f.String("source", "", sourceHelp())
	n := f.Int("n", 20, "show `N` items")
	before := f.String("before", "", "show items older than `TIME` (RFC 3339, as printed by --json), for the next page")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.noArgs(pos); err != nil {
		return err
	}
	q := url.Values{"limit": {strconv.Itoa(*n)}}
	if *friend != "" {
		q.Set("author", *friend)
	}
	if *source != "" {
		q.Set("source", *source)
	}
	if *before != "" {
		q.Set("before", *before)
	}
	c, err := f.client(std)
	if err != nil {
		return err
	}
	var items []social.Entry
	if err := c.do(ctx, "GET", "/api/v1/timeline", q, nil, &items); err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(std.out, items)
	}
	if len(items) == 0 {
		std.out.printf("Nothing here yet: post with \"plug post TEXT\", or import your posts with \"plug import %s FILE|URL\".\n", importKinds())
		return nil
	}
	printEntries(std.out, items)
	if len(items) == *n {
		std.out.printf("\nmore: plug timeline --before %s\n", items[len(items)-1].Time.Format(time.RFC3339Nano))
	}
	return nil
}

// printEntries prints timeline items for people: a header line each, then
// the text, indented.
func printEntries(w *output, items []social.Entry) {
	for i, e := range items {
		if i > 0 {
			w.println()
		}
		who := e.Author
		if who == "" {
			who = "(unknown)"
		}
		if e.Own {
			who += " (you)"
		}
		w.printf("%s  %s  %s  [%s]", shortID(e.ID), e.Time.Local().Format("2006-01-02 15:04"), who, e.Source)
		if !e.Edited.IsZero() {
			w.print("  edited")
		}
		w.println()
		text := e.Text
		if e.Summary != "" {
			text = "CW: " + e.Summary + "\n" + text
		}
		if r := []rune(text); len(r) > 500 {
			text = string(r[:500]) + "…"
		}
		for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
			w.printf("    %s\n", l)
		}
		for _, m := range e.Media {
			state := ""
			if m.Missing {
				state = " (not in the export)"
			}
			w.printf("    [%s%s]\n", m.Name, state)
		}
		if e.URL != "" {
			w.printf("    %s\n", e.URL)
		}
	}
}

// importKinds is the KIND of "plug import KIND": the registered importers,
// as in "mastodon|twitter|feed".
func importKinds() string {
	var kinds []string
	for _, src := range harvest.Sources() {
		kinds = append(kinds, string(src))
	}
	return strings.Join(kinds, "|")
}

// importUsage is the usage line of "plug import", after "plug ".
func importUsage() string {
	return "import [--data DIR] [--json] " + importKinds() + " FILE|URL"
}

// importHelp is the start of "plug import -h": the usage line, then what
// each importer reads.
func importHelp() string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: plug %s\n", importUsage())
	for _, im := range harvest.Importers() {
		fmt.Fprintf(&b, "  %-10s %s\n", im.Source, im.Help)
	}
	return b.String()
}

// sourceChoices is the SOURCE of the --source filters: every importer's
// source, then "plug", as in "mastodon|twitter|feed|plug".
func sourceChoices() string { return importKinds() + "|" + social.SourcePlug }

// sourceHelp describes the --source filters of timeline and search.
func sourceHelp() string {
	return "only items from `SOURCE`, one of " + strings.Join(social.Sources(), ", ")
}

func cmdImport(ctx context.Context, std stdio, args []string) error {
	f := newFlags("import", std)
	usage := importUsage()
	f.Usage = func() {
		std.err.print(importHelp())
		f.PrintDefaults()
	}
	jsonOut := f.Bool("json", false, "print the report as JSON (progress as JSON lines on stderr)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef(usage, "import: give what to import and from where, e.g. plug import mastodon archive.zip")
	}
	kind, src := pos[0], pos[1]
	if err := social.CheckImportKind(kind); err != nil {
		return usagef(usage, "%v", err)
	}
	if !strings.Contains(src, "://") {
		abs, err := filepath.Abs(src)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("cannot import %s: %w", src, err)
		}
		src = abs
	}
	c, err := f.client(std)
	if err != nil {
		return err
	}
	b := newBar(std, *jsonOut, "importing")
	b.bytes = false
	var rep social.ImportReport
	err = c.stream(ctx, "/api/v1/import", httpui.ImportRequest{Kind: kind, Source: src}, std, func(raw json.RawMessage) {
		var p httpui.ImportProgress
		if json.Unmarshal(raw, &p) != nil {
			return // not progress this version knows: the bar waits for the next
		}
		b.update(raw, int64(p.Done), int64(max(p.Total, p.Done)), "items")
	}, &rep)
	b.finish()
	if err != nil {
		return fmt.Errorf("import failed: %w", err)
	}
	if *jsonOut {
		return printJSON(std.out, rep)
	}
	std.out.printf("Imported %d items (%d already there, %d skipped); media: %d found, %d missing from the export.\n",
		rep.Imported, rep.Duplicates, rep.Skipped, rep.MediaFound, rep.MediaMissing)
	if len(rep.SkipReasons) > 0 {
		tw := std.out.table()
		tw.println("skipped\treason")
		for reason, n := range rep.SkipReasons {
			tw.printf("%d\t%s\n", n, reason)
		}
		tw.flush()
	}
	for _, e := range rep.Errors {
		std.err.printf("warning: %s\n", e)
	}
	return nil
}

func cmdSearch(ctx context.Context, std stdio, args []string) error {
	f := newFlags("search", std)
	jsonOut := f.Bool("json", false, "print the items as JSON, best match first")
	source := f.String("source", "", sourceHelp())
	n := f.Int("n", 20, "show `N` items")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	query := strings.TrimSpace(strings.Join(pos, " "))
	if query == "" {
		return usagef(f.cmd.usage, "search: give words to search for (\"a phrase\", #tag, from:NAME and source:NAME work too)")
	}
	c, err := f.client(std)
	if err != nil {
		return err
	}
	q := url.Values{"q": {query}, "limit": {strconv.Itoa(*n)}}
	if *source != "" {
		q.Set("source", *source)
	}
	var res httpui.SearchResult
	if err := c.do(ctx, "GET", "/api/v1/search", q, nil, &res); err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(std.out, res.Items)
	}
	if len(res.Items) == 0 {
		std.out.printf("Nothing matches %q.\n", query)
		return nil
	}
	printEntries(std.out, res.Items)
	std.out.printf("\n%d of %d matches shown.\n", len(res.Items), res.Total)
	return nil
}
