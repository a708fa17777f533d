package harvest

import (
	"html"
	"net/url"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/microcosm-cc/bluemonday"
)

// textCleaner turns untrusted HTML and text into the plain text of an Item.
// It is safe for concurrent use.
type textCleaner struct {
	policy *bluemonday.Policy
}

func newTextCleaner() *textCleaner {
	return &textCleaner{policy: bluemonday.StrictPolicy()}
}

// html reduces an HTML fragment to plain text: raw whitespace collapses as
// a browser would, line breaks and the ends of paragraphs, list items and
// other blocks become newlines, every tag goes (the text of links stays,
// scripts and styles go whole), entities are decoded and the result is
// tidied (see tidy).
func (c *textCleaner) html(s string) string {
	if s == "" {
		return ""
	}
	s = markBreaks(strings.ToValidUTF8(s, "\uFFFD"))
	s = c.policy.Sanitize(s)
	return tidy(html.UnescapeString(s))
}

// plain tidies text that is not HTML but may carry HTML entities (a tweet's
// full_text escapes &, < and >).
func (c *textCleaner) plain(s string) string {
	return tidy(html.UnescapeString(s))
}

// markBreaks collapses runs of raw whitespace to one space and writes a
// newline before <br> and before the end tags of block elements, so the
// layout survives the removal of the tags.
func markBreaks(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 16)
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case ' ', '\t', '\n', '\r', '\f':
			if !space {
				b.WriteByte(' ')
				space = true
			}
			continue
		case '<':
			b.WriteString(breakBefore(s[i+1:]))
		}
		space = false
		b.WriteByte(c)
	}
	return b.String()
}

// breakBefore returns the newlines to write before the tag that starts
// after a '<' with rest.
func breakBefore(rest string) string {
	closing := strings.HasPrefix(rest, "/")
	if closing {
		rest = rest[1:]
	}
	n := 0
	for n < len(rest) && n < 12 && (isASCIILetter(rest[n]) || rest[n] >= '0' && rest[n] <= '9') {
		n++
	}
	if n == len(rest) || n == 0 {
		return ""
	}
	switch strings.ToLower(rest[:n]) {
	case "br":
		return "\n"
	case "p", "div", "blockquote", "pre", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6",
		"section", "article", "header", "footer", "figure", "hr", "dl":
		if closing {
			return "\n\n"
		}
	case "li", "tr", "dt", "dd", "figcaption":
		if closing {
			return "\n"
		}
	}
	return ""
}

func isASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// tidy makes text safe and neat: valid UTF-8 (bad bytes become U+FFFD),
// no control characters but newlines, runs of spaces and tabs collapsed to
// one space, no space at the ends of lines, at most one empty line in a
// row, no leading or trailing blank, and a space after any '<' that a
// letter, '/', '!' or '?' would otherwise follow, so the text can never be
// read as a tag.
func tidy(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	var (
		space    bool
		newlines int
		started  bool
		prev     rune
	)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '\r':
			if i < len(s) && s[i] == '\n' {
				continue
			}
			newlines++
		case r == '\n' || r == '\u2028' || r == '\u2029' || r == '\v' || r == '\f':
			newlines++
		case unicode.IsSpace(r):
			space = true
		case r == '\uFEFF' || unicode.IsControl(r):
			// dropped
		default:
			if started {
				switch {
				case newlines > 0:
					b.WriteString("\n\n"[:min(newlines, 2)])
				case space:
					b.WriteByte(' ')
				case prev == '<' && (unicode.IsLetter(r) || r == '/' || r == '!' || r == '?'):
					b.WriteByte(' ')
				}
			}
			b.WriteRune(r)
			prev, started, space, newlines = r, true, false, 0
		}
		if newlines > 0 {
			space = false
		}
	}
	return b.String()
}

// line tidies a short one-line value (a name, a handle, a tag).
func line(s string) string {
	return strings.Join(strings.Fields(tidy(s)), " ")
}

// safeURL returns u when it is an absolute http or https URL, else "".
func safeURL(u string) string {
	u = strings.TrimSpace(u)
	if u == "" || len(u) > 4096 || !utf8.ValidString(u) {
		return ""
	}
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || (p.Scheme != "http" && p.Scheme != "https") {
		return ""
	}
	for _, r := range u {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return ""
		}
	}
	return u
}

// safeRef returns a reference to another post: an http(s) URL kept as it
// is, an ID without a scheme tidied, anything else dropped.
func safeRef(ref string) string {
	if u := safeURL(ref); u != "" {
		return u
	}
	if strings.Contains(ref, ":") {
		return ""
	}
	return line(ref)
}

// baseName returns the last element of a slash path, cleaned for display.
func baseName(p string) string {
	p = strings.ReplaceAll(p, "\\", "/")
	name := line(path.Base(p))
	if name == "." || name == "/" || name == ".." {
		return ""
	}
	for len(name) > 255 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name
}

// typeByName guesses a MIME type from a file name's extension, from a
// fixed list so results do not depend on the system's tables.
func typeByName(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".png":
		return "image/png"
	case ".gif":
		return "image/gif"
	case ".webp":
		return "image/webp"
	case ".avif":
		return "image/avif"
	case ".heic":
		return "image/heic"
	case ".mp4", ".m4v":
		return "video/mp4"
	case ".mov":
		return "video/quicktime"
	case ".webm":
		return "video/webm"
	case ".mp3":
		return "audio/mpeg"
	case ".m4a":
		return "audio/mp4"
	case ".ogg", ".oga":
		return "audio/ogg"
	case ".opus":
		return "audio/opus"
	case ".wav":
		return "audio/wav"
	}
	return ""
}

// mimeType cleans a MIME type given by an export.
func mimeType(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	if len(t) > 100 || strings.ContainsFunc(t, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return ""
	}
	return t
}
