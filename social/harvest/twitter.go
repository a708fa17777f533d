package harvest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// SourceTwitter is the source of the items of a Twitter/X archive.
const SourceTwitter Source = "twitter"

func init() {
	register(Importer{
		Source: SourceTwitter,
		Name:   "Twitter/X",
		Label:  "a Twitter/X archive",
		Files:  ".zip",
		Help:   "a Twitter/X archive: the .zip, its unpacked folder, or its data/tweets.js",
		Order:  20,
		Import: ImportTwitter,
	})
}

// ImportTwitter imports the owner's tweets and retweets from a Twitter/X
// archive: the .zip, its unpacked folder, or data/tweets.js itself. The
// data files are JavaScript assignments (window.YTD.tweets.part0 = [...]):
// the assignment is stripped as text and the rest decoded as JSON, never
// run. Long posts are completed from data/note-tweet.js when present, and
// the author comes from data/account.js when present. Media live in
// data/tweets_media/<tweet ID>-<file name>; those not in the archive are
// marked Missing. An error means the import stopped early; the report
// then says what was done before.
func ImportTwitter(ctx context.Context, path string, sink Sink, opt Options) (Report, error) {
	im := newImporter(ctx, SourceTwitter, sink, opt)
	err := im.twitter(path)
	return im.report(), err
}

// twitterContext is what the tweets of an archive are read against.
type twitterContext struct {
	a        archive
	dataDir  string
	username string
	notes    *noteIndex
}

func (im *importer) twitter(p string) error {
	a, single, problems, err := openArchive(im.ctx, p)
	if err != nil {
		return fmt.Errorf("import Twitter archive: %w", err)
	}
	defer closeReader(a)
	for _, pr := range problems {
		im.problem("%s", pr)
	}
	var files []string
	if single != "" {
		files = []string{single}
	} else {
		main, ok := "", false
		for _, want := range []string{"data/tweets.js", "data/tweet.js", "tweets.js", "tweet.js"} {
			if main, ok = a.find(want); ok {
				break
			}
		}
		if !ok {
			return fmt.Errorf("import Twitter archive %s: no data/tweets.js in it: give the .zip that X's \"Download an archive of your data\" produces, or its unpacked folder: %w", p, ErrNotExport)
		}
		files = append(files, main)
		stem := strings.TrimSuffix(main, ".js")
		for i := 1; i < 1000; i++ {
			part := fmt.Sprintf("%s-part%d.js", stem, i)
			if _, err := a.stat(part); err != nil {
				break
			}
			files = append(files, part)
		}
	}
	tc := &twitterContext{a: a, dataDir: path.Dir(files[0])}
	if tc.dataDir == "." {
		tc.dataDir = ""
	}
	tc.username = im.readAccount(a, path.Join(tc.dataDir, "account.js"))
	tc.notes = im.readNotes(a, path.Join(tc.dataDir, "note-tweet.js"))
	for _, f := range files {
		if err := im.tweetsFile(tc, f); err != nil {
			if errors.Is(err, errStop) {
				break
			}
			im.inputProblem(err)
			return fmt.Errorf("import Twitter archive %s: %w", p, err)
		}
	}
	for _, n := range tc.notes.unused() {
		im.problem("long post %s of %s matched no tweet in tweets.js: its full text was not used", n.id, n.at.Format(time.RFC3339))
	}
	return nil
}

// openYTD strips the JavaScript assignment "window.YTD.<name>.part<N> ="
// that starts an archive's data file, by reading it as text, and returns a
// decoder positioned at the JSON value after it.
func openYTD(r io.Reader, what string) (*json.Decoder, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var prefix []byte
	for {
		c, err := br.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) && strings.TrimSpace(string(prefix)) != "" {
				return nil, ytdError(what, prefix)
			}
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("read %s: it ends before the \"window.YTD.<name>.part<N> =\" that starts a Twitter archive file: it is empty or cut short: %w", what, ErrNotExport)
			}
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
		if c == '=' {
			break
		}
		prefix = append(prefix, c)
		if len(prefix) > 200 {
			return nil, ytdError(what, prefix)
		}
	}
	p := strings.TrimSpace(strings.TrimPrefix(string(prefix), "\uFEFF"))
	if !validYTDPrefix(p) {
		return nil, ytdError(what, prefix)
	}
	return json.NewDecoder(br), nil
}

func ytdError(what string, prefix []byte) error {
	start := strings.ToValidUTF8(string(prefix), "\uFFFD")
	if utf8.RuneCountInString(start) > 40 {
		start = string([]rune(start)[:40]) + "..."
	}
	return fmt.Errorf("read %s: it does not start with \"window.YTD.<name>.part<N> =\" (it starts with %q): it is not a Twitter archive data file: %w", what, start, ErrNotExport)
}

// validYTDPrefix checks "window.YTD.<name>.part<N>" ("window." optional).
func validYTDPrefix(p string) bool {
	p = strings.TrimPrefix(p, "window.")
	rest, ok := strings.CutPrefix(p, "YTD.")
	if !ok {
		return false
	}
	name, part, ok := strings.Cut(rest, ".part")
	if !ok || name == "" || part == "" {
		return false
	}
	for _, c := range name {
		if !(c == '_' || c >= '0' && c <= '9' || c < 128 && isASCIILetter(byte(c))) {
			return false
		}
	}
	for _, c := range part {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// tweetJSON is a tweet as the archive writes it (numbers as strings).
type tweetJSON struct {
	IDStr               string   `json:"id_str"`
	ID                  apString `json:"id"`
	FullText            string   `json:"full_text"`
	Text                string   `json:"text"`
	CreatedAt           string   `json:"created_at"`
	InReplyToStatusID   string   `json:"in_reply_to_status_id_str"`
	InReplyToScreenName string   `json:"in_reply_to_screen_name"`
	Retweeted           flexBool `json:"retweeted"`
	Entities            struct {
		Hashtags     []struct{ Text string } `json:"hashtags"`
		UserMentions []struct {
			ScreenName string `json:"screen_name"`
		} `json:"user_mentions"`
		URLs  []tweetURL   `json:"urls"`
		Media []tweetMedia `json:"media"`
	} `json:"entities"`
	ExtendedEntities struct {
		Media []tweetMedia `json:"media"`
	} `json:"extended_entities"`
}

type tweetURL struct {
	URL         string `json:"url"`
	ExpandedURL string `json:"expanded_url"`
}

type tweetMedia struct {
	ID            apString `json:"id_str"`
	URL           string   `json:"url"`
	MediaURL      string   `json:"media_url"`
	MediaURLHTTPS string   `json:"media_url_https"`
	Type          string   `json:"type"`
	AltText       string   `json:"ext_alt_text"`
	VideoInfo     struct {
		Variants []struct {
			Bitrate     apString `json:"bitrate"`
			ContentType string   `json:"content_type"`
			URL         string   `json:"url"`
		} `json:"variants"`
	} `json:"video_info"`
}

// flexBool is a boolean that may come as a string ("true").
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	s := strings.Trim(string(data), `"`)
	*b = flexBool(s == "true")
	return nil
}

// tweetsFile imports the tweets of one data file.
func (im *importer) tweetsFile(tc *twitterContext, name string) error {
	rc, err := tc.a.open(name, MaxExportFileSize)
	if err != nil {
		return err
	}
	defer closeReader(rc)
	return im.tweets(rc, name, tc)
}

// tweets imports the tweets of a data file read from r.
func (im *importer) tweets(r io.Reader, name string, tc *twitterContext) error {
	dec, err := openYTD(r, name)
	if err != nil {
		return err
	}
	return arrayItems(dec, name, func() error {
		if im.full() {
			return errStop
		}
		var entry struct {
			Tweet *tweetJSON `json:"tweet"`
			tweetJSON
		}
		ok, err := decodeEntry(dec, &entry)
		if !ok {
			return jsonError(name, dec, err)
		}
		if err != nil {
			im.problem("%s: entry %d: %v", name, im.rep.Seen+1, err)
			im.skip(reasonMalformed)
			return nil
		}
		t := entry.Tweet
		if t == nil {
			t = &entry.tweetJSON
		}
		return im.tweet(tc, t)
	})
}

// tweet imports one tweet.
func (im *importer) tweet(tc *twitterContext, t *tweetJSON) error {
	id := firstOf(t.IDStr, string(t.ID))
	if !isDigits(id) {
		im.problem("a tweet without a usable ID (%q) was skipped", line(id))
		im.skip(reasonMalformed)
		return nil
	}
	raw := firstOf(t.FullText, t.Text)
	media := t.ExtendedEntities.Media
	if len(media) == 0 {
		media = t.Entities.Media
	}
	it := Item{
		OriginalID: id,
		URL:        tweetURLOf(tc.username, id),
		Time:       im.tweetTime(t.CreatedAt, id),
		Text:       im.text.plain(expandTweetText(raw, t.Entities.URLs, media)),
		Boost:      bool(t.Retweeted) || strings.HasPrefix(raw, "RT @"),
	}
	if tc.username != "" {
		it.Author = "@" + tc.username
	}
	if isDigits(t.InReplyToStatusID) {
		it.InReplyTo = tweetURLOf(line(t.InReplyToScreenName), t.InReplyToStatusID)
	}
	for _, h := range t.Entities.Hashtags {
		it.Tags = appendUnique(it.Tags, hashtag(h.Text))
	}
	for _, m := range t.Entities.UserMentions {
		if n := strings.TrimLeft(line(m.ScreenName), "@"); n != "" {
			it.Mentions = appendUnique(it.Mentions, "@"+n)
		}
	}
	if !it.Boost {
		if n := tc.notes.match(id, it.Time, it.Text); n != nil {
			it.Text = n.text
			for _, h := range n.tags {
				it.Tags = appendUnique(it.Tags, h)
			}
			for _, m := range n.mentions {
				it.Mentions = appendUnique(it.Mentions, m)
			}
		}
	}
	seen := map[string]bool{}
	for _, m := range media {
		key := firstOf(string(m.ID), m.MediaURLHTTPS, m.MediaURL)
		if seen[key] {
			continue
		}
		seen[key] = true
		if len(it.Media) == maxMediaPerItem {
			break
		}
		it.Media = append(it.Media, im.tweetMedia(tc, id, m))
	}
	return im.emit(it)
}

// tweetURLOf is the web address of a tweet.
func tweetURLOf(username, id string) string {
	if username == "" || strings.ContainsAny(username, "/?#@ ") {
		return "https://twitter.com/i/web/status/" + id
	}
	return "https://twitter.com/" + url.PathEscape(username) + "/status/" + id
}

// tweetTime parses created_at ("Wed Oct 10 20:19:24 +0000 2018"), falling
// back to the time inside the tweet's ID.
func (im *importer) tweetTime(s, id string) time.Time {
	if t, err := time.Parse(time.RubyDate, s); err == nil {
		return t.UTC()
	}
	if t, ok := snowflakeTime(id); ok {
		return t
	}
	im.problem("tweet %s: unreadable date %q", id, line(s))
	return time.Time{}
}

// snowflakeTime is the time encoded in a Twitter ID made since November
// 2010.
func snowflakeTime(id string) (time.Time, bool) {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil || n < 1<<40 {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(n>>22) + 1288834974657).UTC(), true
}

func isDigits(s string) bool {
	if s == "" || len(s) > 25 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// expandTweetText replaces each t.co link of the text with the address it
// stands for, and removes the links to the tweet's own media.
func expandTweetText(s string, urls []tweetURL, media []tweetMedia) string {
	var pairs []string
	for _, u := range urls {
		if u.URL != "" && u.ExpandedURL != "" {
			pairs = append(pairs, u.URL, u.ExpandedURL)
		}
	}
	for _, m := range media {
		if m.URL != "" {
			pairs = append(pairs, m.URL, "")
		}
	}
	if len(pairs) == 0 {
		return s
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// tweetMedia resolves a tweet's medium to its file in
// data/tweets_media/<tweet ID>-<file name> (data/tweet_media in older
// archives). A video's file is named after its best MP4 variant.
func (im *importer) tweetMedia(tc *twitterContext, tweetID string, m tweetMedia) Media {
	var names []string
	if m.Type == "video" || m.Type == "animated_gif" {
		best, bestRate := "", int64(-1)
		for _, v := range m.VideoInfo.Variants {
			rate, _ := strconv.ParseInt(string(v.Bitrate), 10, 64)
			if v.ContentType == "video/mp4" && rate > bestRate {
				best, bestRate = v.URL, rate
			}
		}
		if n := urlBase(best); n != "" {
			names = append(names, n)
		}
	}
	if n := urlBase(firstOf(m.MediaURLHTTPS, m.MediaURL)); n != "" {
		names = append(names, n)
	}
	out := Media{Description: im.text.plain(m.AltText), Missing: true}
	if len(names) == 0 {
		return out
	}
	out.Name = baseName(tweetID + "-" + names[0])
	out.Type = typeByName(out.Name)
	for _, n := range names {
		for _, folder := range []string{"tweets_media", "tweet_media"} {
			name, ok := cleanName(path.Join(tc.dataDir, folder, tweetID+"-"+n))
			if !ok {
				continue
			}
			size, err := tc.a.stat(name)
			if errors.Is(err, errNoEntry) {
				continue
			}
			if err == nil && size > MaxMediaSize {
				err = tooLarge(fmt.Sprintf("%s (%s)", name, humanSize(size)), MaxMediaSize)
			}
			if err != nil {
				im.problem("media of tweet %s: %v", tweetID, err)
				return out
			}
			a := tc.a
			return Media{
				Name: baseName(name), Type: typeByName(name), Size: size, Description: out.Description,
				Open: func() (io.ReadCloser, error) { return a.openMedia(name, MaxMediaSize) },
			}
		}
	}
	return out
}

// urlBase is the last element of a URL's path.
func urlBase(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Path == "" {
		return ""
	}
	b := path.Base(u.Path)
	if b == "/" || b == "." || strings.ContainsAny(b, "\\\x00") {
		return ""
	}
	return b
}

// readAccount returns the owner's username from account.js, or "".
func (im *importer) readAccount(a archive, name string) string {
	rc, err := a.open(name, maxSmallFile)
	if err != nil {
		if !errors.Is(err, errNoEntry) {
			im.problem("account.js: %v", err)
		}
		return ""
	}
	defer closeReader(rc)
	dec, err := openYTD(rc, name)
	if err != nil {
		im.problem("%v", err)
		return ""
	}
	var accounts []struct {
		Account struct {
			Username string `json:"username"`
		} `json:"account"`
	}
	if err := dec.Decode(&accounts); err != nil || len(accounts) == 0 {
		im.problem("account.js holds no account (%v): the author is left empty", err)
		return ""
	}
	return strings.TrimLeft(line(accounts[0].Account.Username), "@")
}

// noteTweet is a long post from note-tweet.js.
type noteTweet struct {
	id             string
	at             time.Time
	text           string // the full text, plain, links expanded
	key            string // the start of the text, for matching
	tags, mentions []string
	used           bool
}

// noteIndex finds the long post behind a tweet. The archive does not link
// them: a tweet holds the first part of its long post's text, and the two
// were created within moments of each other (createdAt of the note,
// created_at of the tweet). A note matches the tweet created within two minutes of
// it whose text starts the same way (compared without links, "…" and
// extra whitespace), the closest in time winning; each note is used once.
type noteIndex struct {
	notes []*noteTweet // by time
}

// noteMatchWindow is how far apart a tweet and its long post may be made.
const noteMatchWindow = 2 * time.Minute

func (im *importer) readNotes(a archive, name string) *noteIndex {
	idx := &noteIndex{}
	rc, err := a.open(name, MaxExportFileSize)
	if err != nil {
		if !errors.Is(err, errNoEntry) {
			im.problem("note-tweet.js: %v", err)
		}
		return idx
	}
	defer closeReader(rc)
	dec, err := openYTD(rc, name)
	if err != nil {
		im.problem("%v", err)
		return idx
	}
	err = arrayItems(dec, name, func() error {
		var entry struct {
			NoteTweet struct {
				NoteTweetID apString `json:"noteTweetId"`
				CreatedAt   string   `json:"createdAt"`
				Core        struct {
					Text string `json:"text"`
					URLs []struct {
						ShortURL    string `json:"shortUrl"`
						ExpandedURL string `json:"expandedUrl"`
					} `json:"urls"`
					Hashtags []struct{ Text string } `json:"hashtags"`
					Mentions []struct {
						ScreenName string `json:"screenName"`
					} `json:"mentions"`
				} `json:"core"`
			} `json:"noteTweet"`
		}
		ok, err := decodeEntry(dec, &entry)
		if !ok {
			return jsonError(name, dec, err)
		}
		nt := entry.NoteTweet
		if err != nil || nt.Core.Text == "" {
			im.problem("%s: a long post could not be read (%v)", name, err)
			return nil
		}
		n := &noteTweet{id: line(string(nt.NoteTweetID))}
		if t, err := time.Parse(time.RFC3339, nt.CreatedAt); err == nil {
			n.at = t.UTC()
		} else if t, ok := snowflakeTime(n.id); ok {
			n.at = t
		} else {
			im.problem("%s: long post %s has no readable date: it cannot be matched", name, n.id)
			return nil
		}
		var pairs []string
		for _, u := range nt.Core.URLs {
			if u.ShortURL != "" && u.ExpandedURL != "" {
				pairs = append(pairs, u.ShortURL, u.ExpandedURL)
			}
		}
		text := nt.Core.Text
		if len(pairs) > 0 {
			text = strings.NewReplacer(pairs...).Replace(text)
		}
		n.text = im.text.plain(text)
		n.key = matchKey(n.text)
		for _, h := range nt.Core.Hashtags {
			n.tags = appendUnique(n.tags, hashtag(h.Text))
		}
		for _, m := range nt.Core.Mentions {
			if s := strings.TrimLeft(line(m.ScreenName), "@"); s != "" {
				n.mentions = appendUnique(n.mentions, "@"+s)
			}
		}
		idx.notes = append(idx.notes, n)
		return nil
	})
	if err != nil {
		im.problem("%v (the long posts before it are used)", err)
	}
	sort.SliceStable(idx.notes, func(i, j int) bool { return idx.notes[i].at.Before(idx.notes[j].at) })
	return idx
}

// match returns the unused long post of the tweet with this ID, time and
// (plain) text, or nil.
func (x *noteIndex) match(id string, created time.Time, text string) *noteTweet {
	if len(x.notes) == 0 {
		return nil
	}
	at := created
	if at.IsZero() {
		if t, ok := snowflakeTime(id); ok {
			at = t
		}
	}
	stub := matchKey(text)
	if utf8.RuneCountInString(stub) < 10 {
		return nil
	}
	stub = string([]rune(stub)[:min(utf8.RuneCountInString(stub), 60)])
	i := sort.Search(len(x.notes), func(i int) bool { return !x.notes[i].at.Before(at.Add(-noteMatchWindow)) })
	var best *noteTweet
	var bestDiff time.Duration
	for ; i < len(x.notes) && !x.notes[i].at.After(at.Add(noteMatchWindow)); i++ {
		n := x.notes[i]
		if n.used || !strings.HasPrefix(n.key, stub) {
			continue
		}
		d := n.at.Sub(at).Abs()
		if best == nil || d < bestDiff {
			best, bestDiff = n, d
		}
	}
	if best != nil {
		best.used = true
	}
	return best
}

// unused returns the long posts that matched no tweet.
func (x *noteIndex) unused() []*noteTweet {
	var out []*noteTweet
	for _, n := range x.notes {
		if !n.used {
			out = append(out, n)
		}
	}
	return out
}

// matchKey reduces a text to what a tweet and its long post share: no
// links, no leading mentions, no "…", single spaces.
func matchKey(s string) string {
	var words []string
	lead := true
	for _, w := range strings.Fields(s) {
		if strings.HasPrefix(w, "http://") || strings.HasPrefix(w, "https://") {
			continue
		}
		if lead && strings.HasPrefix(w, "@") {
			continue
		}
		lead = false
		words = append(words, w)
	}
	return strings.TrimRight(strings.Join(words, " "), "…. ")
}
