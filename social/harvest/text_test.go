package harvest

import (
	"strings"
	"testing"
	"time"
)

func TestHTMLText(t *testing.T) {
	c := newTextCleaner()
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", ""},
		{"paragraphs and breaks", "<p>one<br>two<br/>three</p><p>four</p>", "one\ntwo\nthree\n\nfour"},
		{"raw whitespace collapses", "<p>a\n   b\t\tc</p>\n\n<p>d</p>", "a b c\n\nd"},
		{"link text kept", `<p><a href="https://x.example/a" class="u-url mention">@<span>ann</span></a> see <a href="https://y.example/">` +
			`<span class="invisible">https://</span><span class="ellipsis">y.example/long/pa</span><span class="invisible">th</span></a></p>`,
			"@ann see https://y.example/long/path"},
		{"entities decoded", "<p>it&#39;s &amp; &quot;ok&quot; &eacute;t&eacute; &nbsp;x</p>", "it's & \"ok\" été x"},
		{"scripts and styles dropped", "<p>a<script>alert(1)</script><style>p{}</style>b</p>", "ab"},
		{"escaped markup stays text, defused", "&lt;script&gt;alert(1)&lt;/script&gt;", "< script>alert(1)< /script>"},
		{"comparison kept", "a &lt; b, c&lt;3, x &lt;= y", "a < b, c<3, x <= y"},
		{"attributes never leak", `<img src=x onerror="alert(1)" alt="pic"><a href="javascript:alert(2)">click</a>`, "click"},
		{"lists", "<ul><li>one</li><li>two</li></ul><p>after</p>", "one\ntwo\n\nafter"},
		{"invalid UTF-8", "<p>caf\xe9 \xff</p>", "caf\uFFFD \uFFFD"},
		{"controls dropped", "a\x00b\x07c\u200bd\u200de", "abc\u200bd\u200de"},
		{"many blank lines", "<p>a</p><p></p><p></p><br><br><br><p>b</p>", "a\n\nb"},
		{"unclosed tag", "text <b", "text"},
		{"comment", "a<!-- <p>hidden</p> -->b", "ab"},
		{"cdata is a bogus comment in HTML", "a<![CDATA[<b>x</b>]]>b", "ax]]>b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := c.html(tc.in)
			if got != tc.want {
				t.Fatalf("html(%q) = %q, want %q", tc.in, got, tc.want)
			}
			checkSafeText(t, tc.name, got)
		})
	}
}

func TestPlainText(t *testing.T) {
	c := newTextCleaner()
	for _, tc := range []struct{ name, in, want string }{
		{"tweet entities", "Tom &amp; Jerry &lt;3 &gt; all", "Tom & Jerry <3 > all"},
		{"newlines kept", "line one\r\nline two\n\n\n\nline three  ", "line one\nline two\n\nline three"},
		{"tags defused", "&lt;b&gt;bold&lt;/b&gt; <i>x</i> <!x <?y", "< b>bold< /b> < i>x< /i> < !x < ?y"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.plain(tc.in); got != tc.want {
				t.Fatalf("plain(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestItemKey(t *testing.T) {
	a := Item{Source: SourceMastodon, OriginalID: "https://ex.social/users/ann/statuses/1"}
	if got, want := a.Key(), "mastodon:https://ex.social/users/ann/statuses/1"; got != want {
		t.Fatalf("Key() = %q, want %q", got, want)
	}
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	b := Item{Source: SourceFeed, URL: "https://x.example/1", Time: at, Text: "hello"}
	c := b
	c.Time = at.In(time.FixedZone("X", 3600)) // the same instant
	d := b
	d.Text = "hello!"
	if b.Key() != c.Key() || b.Key() == d.Key() || !strings.HasPrefix(b.Key(), "feed:sha256:") {
		t.Fatalf("keys without an ID: %q %q %q", b.Key(), c.Key(), d.Key())
	}
}

func TestSafeURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://ex.social/@ann/1":  "https://ex.social/@ann/1",
		"http://ex.social/a?b=c#d":  "http://ex.social/a?b=c#d",
		"javascript:alert(1)":       "",
		"data:text/html,<script>":   "",
		"/relative/path":            "",
		"https://ex.social/a b":     "",
		"  https://ex.social/x  ":   "https://ex.social/x",
		"https:///no-host":          "",
		"vbscript:msgbox":           "",
		"https://ex.social/\x00bad": "",
	} {
		if got := safeURL(in); got != want {
			t.Errorf("safeURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"outbox.json":            "outbox.json",
		"./a/b/../c.jpg":         "",
		"a/./b//c.jpg":           "a/b/c.jpg",
		"../outbox.json":         "",
		"/etc/passwd":            "",
		"a/../../x":              "",
		`..\..\windows\evil.exe`: "",
		`C:\evil`:                "",
		"dir/":                   "dir",
		"nul\x00byte":            "",
		"bad\xffutf8":            "",
	} {
		got, _ := cleanName(in)
		if got != want {
			t.Errorf("cleanName(%q) = %q, want %q", in, got, want)
		}
	}
}
