package harvest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// This file decodes ActivityStreams (a Mastodon outbox.json, an outbox
// fetched over ActivityPub) and turns activities into Items.

// The public audience, in its three spellings.
const asPublic = "https://www.w3.org/ns/activitystreams#Public"

// apRef is a reference to an object: a string, or an object with an "id"
// (the first of an array). Other shapes decode to "" rather than rejecting
// the entry.
type apRef string

func (r *apRef) UnmarshalJSON(b []byte) error {
	*r = ""
	switch b[0] {
	case '"':
		s, _ := jsonString(b)
		*r = apRef(s)
	case '{':
		var o struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(b, &o) == nil {
			*r = apRef(o.ID)
		}
	case '[':
		var l []apRef
		if json.Unmarshal(b, &l) == nil && len(l) > 0 {
			*r = l[0]
		}
	}
	return nil
}

// jsonString decodes a JSON string that the decoder has already checked,
// without a second pass when it holds no escapes.
func jsonString(b []byte) (string, bool) {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' && bytes.IndexByte(b, '\\') < 0 && utf8.Valid(b) {
		return string(b[1 : len(b)-1]), true
	}
	var s string
	err := json.Unmarshal(b, &s)
	return s, err == nil
}

// apRefs is an audience or any list of references; one reference alone is
// a list of one.
type apRefs []string

func (l *apRefs) UnmarshalJSON(b []byte) error {
	*l = nil
	switch b[0] {
	case '[':
		var refs []apRef
		if json.Unmarshal(b, &refs) == nil {
			for _, r := range refs {
				if r != "" {
					*l = append(*l, string(r))
				}
			}
		}
	default:
		var r apRef
		if r.UnmarshalJSON(b) == nil && r != "" {
			*l = apRefs{string(r)}
		}
	}
	return nil
}

// apURL is a "url": a string, a Link object ({"href": ...}), or an array
// of either, of which the text/html link is preferred.
type apURL string

func (u *apURL) UnmarshalJSON(b []byte) error {
	*u = ""
	type link struct {
		Href      string `json:"href"`
		MediaType string `json:"mediaType"`
	}
	switch b[0] {
	case '"':
		s, _ := jsonString(b)
		*u = apURL(s)
	case '{':
		var l link
		if json.Unmarshal(b, &l) == nil {
			*u = apURL(l.Href)
		}
	case '[':
		var raw []json.RawMessage
		if json.Unmarshal(b, &raw) != nil {
			return nil
		}
		for _, r := range raw {
			var one apURL
			_ = one.UnmarshalJSON(r) // lenient: it never fails, an odd value is left ""
			if *u == "" {
				*u = one
			}
			var l link
			if json.Unmarshal(r, &l) == nil && l.MediaType == "text/html" && l.Href != "" {
				*u = apURL(l.Href)
				break
			}
		}
	}
	return nil
}

// apString is a string that may come as an array of strings (JSON-LD
// allows it for "type"); other shapes decode to "".
type apString string

func (s *apString) UnmarshalJSON(b []byte) error {
	*s = ""
	switch b[0] {
	case '"':
		v, _ := jsonString(b)
		*s = apString(v)
	case '[':
		var l []apString
		if json.Unmarshal(b, &l) == nil && len(l) > 0 {
			*s = l[0]
		}
	}
	return nil
}

// apList is a list that may come as a single object.
type apList[T any] []T

func (l *apList[T]) UnmarshalJSON(b []byte) error {
	*l = nil
	switch b[0] {
	case '[':
		var v []T
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*l = v
	case '{':
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*l = apList[T]{v}
	}
	return nil
}

// apObject is a Note (or Article, Page, Question).
type apObject struct {
	ID           string          `json:"id"`
	Type         apString        `json:"type"`
	Summary      string          `json:"summary"`
	Content      string          `json:"content"`
	ContentMap   json.RawMessage `json:"contentMap"`
	Name         string          `json:"name"`
	InReplyTo    apRef           `json:"inReplyTo"`
	Published    string          `json:"published"`
	URL          apURL           `json:"url"`
	AttributedTo apRef           `json:"attributedTo"`
	To           apRefs          `json:"to"`
	Cc           apRefs          `json:"cc"`
	Attachment   apList[apMedia] `json:"attachment"`
	Tag          apList[apTag]   `json:"tag"`
	OneOf        apList[apTag]   `json:"oneOf"`
	AnyOf        apList[apTag]   `json:"anyOf"`
}

// apMedia is an attachment.
type apMedia struct {
	Type      apString `json:"type"`
	MediaType string   `json:"mediaType"`
	URL       apURL    `json:"url"`
	Name      string   `json:"name"`
}

// apTag is a Mention or Hashtag (and a poll choice, by its name).
type apTag struct {
	Type apString `json:"type"`
	Name string   `json:"name"`
	Href string   `json:"href"`
}

// apObjectOrRef is an activity's object: embedded, or a reference.
type apObjectOrRef struct {
	ref string
	obj *apObject
}

func (o *apObjectOrRef) UnmarshalJSON(b []byte) error {
	*o = apObjectOrRef{}
	switch b[0] {
	case '"':
		o.ref, _ = jsonString(b)
	case '{':
		var obj apObject
		if err := json.Unmarshal(b, &obj); err != nil {
			return err
		}
		o.obj, o.ref = &obj, obj.ID
	}
	return nil
}

// apActivity is one element of an outbox: an activity, or (from some
// servers) a bare object, whose fields then sit beside the activity's.
type apActivity struct {
	apObject
	Actor  apRef         `json:"actor"`
	Object apObjectOrRef `json:"object"`
}

// apContext is what an outbox's items are read against.
type apContext struct {
	// author is the owner's handle; empty derives it from each activity.
	author string
	// followers is the owner's followers collection, when known.
	followers string
	// media resolves an attachment to a Media.
	media func(m apMedia) Media
}

// isPostType reports whether an object type is a post this package imports.
func isPostType(t apString) bool {
	switch t {
	case "Note", "Article", "Page", "Question":
		return true
	}
	return false
}

// apEntry decodes the next element of an outbox's items and imports it.
// It returns an error only when the import must stop.
func (im *importer) apEntry(dec *json.Decoder, what string, ac *apContext) error {
	var act apActivity
	ok, err := decodeEntry(dec, &act)
	if !ok {
		return jsonError(what, dec, err)
	}
	if err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && typ.Field == "" && typ.Value == "string" {
			im.skip(reasonReference)
			return nil
		}
		im.problem("%s: entry %d: %v", what, im.rep.Seen+1, err)
		im.skip(reasonMalformed)
		return nil
	}
	return im.activity(&act, ac)
}

// activity imports one activity.
func (im *importer) activity(act *apActivity, ac *apContext) error {
	switch {
	case act.Type == "Create":
		if act.Object.obj == nil {
			im.skip(reasonObjectType)
			return nil
		}
		return im.note(act.Object.obj, act, ac)
	case act.Type == "Announce":
		return im.announce(act, ac)
	case isPostType(act.Type):
		return im.note(&act.apObject, act, ac)
	}
	im.skip(reasonNotPost)
	return nil
}

// note imports a post created by the owner.
func (im *importer) note(o *apObject, act *apActivity, ac *apContext) error {
	if !isPostType(o.Type) {
		im.skip(reasonObjectType)
		return nil
	}
	to, cc := o.To, o.Cc
	if len(to)+len(cc) == 0 {
		to, cc = act.To, act.Cc
	}
	if isDirect(to, cc, ac.followers) {
		im.skip(reasonDirect)
		return nil
	}
	it := Item{
		OriginalID: line(firstOf(o.ID, act.ID)),
		URL:        firstOf(safeURL(string(o.URL)), safeURL(o.ID)),
		Author:     im.apAuthor(ac, firstOf(string(o.AttributedTo), string(act.Actor))),
		Time:       im.apTime(firstOf(o.Published, act.Published), o.ID),
		Summary:    line(im.text.html(o.Summary)),
		InReplyTo:  safeRef(string(o.InReplyTo)),
	}
	content := o.Content
	if content == "" && len(o.ContentMap) > 0 {
		content = firstValue(o.ContentMap)
	}
	it.Text = im.text.html(content)
	if o.Type != "Note" && o.Name != "" {
		title := line(im.text.html(o.Name))
		switch {
		case o.Type == "Question":
			// A poll's name is its question, already in the content.
		case it.Summary == "":
			it.Summary = title
		default:
			it.Text = strings.TrimSpace(title + "\n\n" + it.Text)
		}
	}
	var choices []string
	for _, c := range append(o.OneOf, o.AnyOf...) {
		if n := line(c.Name); n != "" {
			choices = append(choices, "- "+n)
		}
	}
	if len(choices) > 0 {
		it.Text = strings.TrimSpace(it.Text + "\n\n" + strings.Join(choices, "\n"))
	}
	for _, t := range o.Tag {
		switch t.Type {
		case "Hashtag":
			it.Tags = appendUnique(it.Tags, hashtag(t.Name))
		case "Mention":
			it.Mentions = appendUnique(it.Mentions, mention(t.Name, t.Href))
		}
	}
	for i, m := range o.Attachment {
		if i == maxMediaPerItem {
			im.problem("%s: more than %d attachments; the rest are left out", it.OriginalID, maxMediaPerItem)
			break
		}
		if ac.media != nil {
			it.Media = append(it.Media, ac.media(m))
		}
	}
	return im.emit(it)
}

// announce imports a boost: the item names what was boosted.
func (im *importer) announce(act *apActivity, ac *apContext) error {
	target := act.Object.ref
	if o := act.Object.obj; o != nil {
		target = firstOf(safeURL(string(o.URL)), o.ID)
	}
	target = line(target)
	if target == "" {
		im.skip(reasonMalformed)
		im.problem("boost %s names nothing that was boosted", line(act.ID))
		return nil
	}
	return im.emit(Item{
		OriginalID: line(act.ID),
		URL:        safeURL(target),
		Author:     im.apAuthor(ac, string(act.Actor)),
		Time:       im.apTime(act.Published, act.ID),
		Text:       target,
		Boost:      true,
	})
}

// isDirect reports whether a post is addressed to neither the public nor
// the followers: a direct message, which stays out of the timeline.
func isDirect(to, cc []string, followers string) bool {
	for _, list := range [][]string{to, cc} {
		for _, a := range list {
			switch {
			case a == asPublic || a == "as:Public" || a == "Public":
				return false
			case followers != "" && a == followers, strings.HasSuffix(a, "/followers"):
				return false
			}
		}
	}
	return true
}

// apTime parses an ActivityStreams date; a bad one is reported and left
// zero.
func (im *importer) apTime(s, id string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		im.problem("%s: unreadable date %q", line(id), line(s))
		return time.Time{}
	}
	return t.UTC()
}

// apAuthor returns the owner's handle, or one derived from an actor URL.
func (im *importer) apAuthor(ac *apContext, actor string) string {
	if ac.author != "" {
		return ac.author
	}
	return handleOf(actor, "")
}

// handleOf makes "@name@host" from an actor's preferred name and ID, or
// from an actor URL shaped like /users/NAME or /@NAME; else it returns the
// URL itself (or "").
func handleOf(actorID, preferred string) string {
	u, err := url.Parse(actorID)
	if err != nil || u.Host == "" {
		return line(preferred)
	}
	name := line(preferred)
	if name == "" {
		p := strings.Trim(u.Path, "/")
		switch {
		case strings.HasPrefix(p, "users/") && !strings.Contains(p[6:], "/"):
			name = p[6:]
		case strings.HasPrefix(p, "@") && !strings.Contains(p, "/"):
			name = p[1:]
		}
	}
	if name == "" || strings.ContainsAny(name, "@ ") {
		return safeURL(actorID)
	}
	return "@" + name + "@" + u.Host
}

// hashtag cleans a hashtag's name: no '#', one line.
func hashtag(name string) string {
	return strings.TrimLeft(line(name), "#")
}

// mention cleans a mention: "@name@host", adding the host from the
// mentioned actor's URL when the name is local ("@name").
func mention(name, href string) string {
	name = strings.TrimLeft(line(name), "@")
	if name == "" {
		return ""
	}
	if !strings.Contains(name, "@") {
		if u, err := url.Parse(href); err == nil && u.Host != "" {
			name += "@" + u.Host
		}
	}
	return "@" + name
}

// maxMediaPerItem and maxTagsPerItem bound what one entry can carry.
const (
	maxMediaPerItem = 100
	maxTagsPerItem  = 200
)

// appendUnique appends s to list unless it is empty, already there, or the
// list is full.
func appendUnique(list []string, s string) []string {
	if s == "" || len(list) >= maxTagsPerItem {
		return list
	}
	for _, have := range list {
		if have == s {
			return list
		}
	}
	return append(list, s)
}

// firstOf returns the first non-empty string.
func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// firstValue returns the value of the first key (in sorted order) of a
// JSON object of strings, such as a contentMap.
func firstValue(raw json.RawMessage) string {
	var m map[string]string
	if json.Unmarshal(raw, &m) != nil || len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return m[keys[0]]
}

// collection is what walkCollection learnt about a collection document.
type collection struct {
	typ       apString
	id        string
	total     int
	first     json.RawMessage
	next      json.RawMessage
	items     bool // an items array was read
	outbox    string
	preferred string // an actor's preferredUsername
	followers string
}

// isAP reports whether the document was an ActivityStreams collection,
// page or actor.
func (c *collection) isAP() bool {
	return c.items || isCollectionType(c.typ) || c.outbox != ""
}

func isCollectionType(t apString) bool {
	switch t {
	case "OrderedCollection", "OrderedCollectionPage", "Collection", "CollectionPage":
		return true
	}
	return false
}

// walkCollection reads an ActivityStreams collection, page or actor from
// r, calling item with the decoder positioned at each element of its
// orderedItems (or items) and what is known of the collection so far; item
// consumes exactly one value. "items" only
// counts once "type" has named a collection, so a JSON Feed's items are
// left alone.
func walkCollection(r io.Reader, what string, item func(dec *json.Decoder, c *collection) error) (collection, error) {
	var c collection
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil {
		return c, jsonError(what, dec, err)
	}
	if tok != json.Delim('{') {
		return c, fmt.Errorf("read %s: it is not a JSON object (it starts with %s): %w", what, describeToken(tok), ErrNotExport)
	}
	for dec.More() {
		key, err := readKey(dec, what)
		if err != nil {
			return c, err
		}
		switch key {
		case "type":
			err = decodeField(dec, what, &c.typ)
		case "id":
			var id apRef
			err = decodeField(dec, what, &id)
			c.id = string(id)
		case "totalItems":
			err = decodeField(dec, what, &c.total)
		case "first":
			err = decodeField(dec, what, &c.first)
		case "next":
			err = decodeField(dec, what, &c.next)
		case "outbox":
			var o apRef
			err = decodeField(dec, what, &o)
			c.outbox = string(o)
		case "preferredUsername":
			err = decodeField(dec, what, &c.preferred)
		case "followers":
			var f apRef
			err = decodeField(dec, what, &f)
			c.followers = string(f)
		case "orderedItems", "items":
			if key == "items" && !isCollectionType(c.typ) {
				err = skipValue(dec, what)
				break
			}
			c.items = true
			err = arrayItems(dec, what, func() error { return item(dec, &c) })
		default:
			err = skipValue(dec, what)
		}
		if err != nil {
			return c, err
		}
	}
	if err := expectDelim(dec, what, '}'); err != nil {
		return c, err
	}
	return c, nil
}

// decodeField decodes the value of a collection's member; a value of the
// wrong shape is ignored, a broken stream is an error.
func decodeField(dec *json.Decoder, what string, v any) error {
	ok, err := decodeEntry(dec, v)
	if !ok {
		return jsonError(what, dec, err)
	}
	return nil
}
