package search

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// corpus makes realistic, reproducible documents and queries for tests
// and benchmarks: word frequencies follow Zipf's law over a vocabulary of
// English stop words, common English words and a long tail of made-up
// rarer words; authors and tags are Zipf-distributed too; lengths mix
// short posts with a few long harvested articles.
type corpus struct {
	seed    uint64
	vocab   []string
	authors []string
	tags    []string
}

// stopWords come first in the ranking, as in real text.
var stopWords = strings.Fields(`the of and a to in is it you that he was for on are
with as I his they be at one have this from or had by not but what some we can
out other were all there when up use your how said an each she which do their if
will way about many then them would so these her`)

// commonWords are the next ranks: the words people search for.
var commonWords = strings.Fields(`time people year day way thing man world life hand
part child eye woman place work week case point government company number group
problem fact home water room mother area money story month lot right study book
job word business issue side kind head house service friend father power hour game
line end member law car city community name president team minute idea kid body
information back parent face others level office door health person art war history
party result change morning reason research girl guy moment air teacher force
education garden rain river frost snow winter summer spring autumn music photo
coffee running walking cooking reading writing travel train bike mountain sea beach
forest tree flower bird cat dog night light dark sun moon star cloud wind storm
weather news blog post video film movie show song band concert festival market
food bread cheese wine beer tea breakfast lunch dinner recipe kitchen table chair
window street road bridge station airport school university library museum park
computer phone software code bug release server network internet website email
backup storage disk memory battery power solar energy climate election vote
policy health doctor hospital medicine sleep dream happy sad angry tired excited
beautiful quiet loud small large old new young early late fast slow hot cold warm
cool wet dry green blue red yellow white black first last best worst great good
bad little long short high low open closed free busy ready sorry thanks hello
finally today tomorrow yesterday weekend holiday birthday wedding family baby
neighbour village town country island lake valley hill field farm harvest apple
pear berry potato tomato soup pizza pasta rice chocolate cake cookie sugar salt`)

func newCorpus(seed uint64) *corpus {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	c := &corpus{seed: seed}
	c.vocab = append(c.vocab, stopWords...)
	c.vocab = append(c.vocab, commonWords...)
	syll := strings.Fields(`ka lo mi nu pe ra si to ve za bri cho dra fle gru ste tha qui wen yor mar len dus hal pin`)
	seen := map[string]bool{}
	for _, w := range c.vocab {
		seen[w] = true
	}
	for len(c.vocab) < 30_000 {
		var b strings.Builder
		for range 2 + r.IntN(3) {
			b.WriteString(syll[r.IntN(len(syll))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			c.vocab = append(c.vocab, w)
		}
	}
	hosts := []string{"mastodon.social", "example.org", "fosstodon.org", "plug"}
	for i := range 2000 {
		c.authors = append(c.authors, fmt.Sprintf("user%d@%s", i, hosts[i%len(hosts)]))
	}
	for i := range 500 {
		if i < len(commonWords) {
			c.tags = append(c.tags, commonWords[(i*7)%len(commonWords)])
		} else {
			c.tags = append(c.tags, fmt.Sprintf("tag%d", i))
		}
	}
	return c
}

// rng returns a generator for item i, so doc(i) is the same whatever
// order documents are made in.
func (c *corpus) rng(i int) *rand.Rand {
	return rand.New(rand.NewPCG(c.seed, uint64(i)))
}

func zipf(r *rand.Rand, n int) int {
	return int(rand.NewZipf(r, 1.07, 2, uint64(n-1)).Uint64())
}

var sources = []string{"plug", "plug", "plug", "mastodon", "mastodon", "mastodon", "mastodon", "twitter", "twitter", "feed"}

// doc returns document i.
func (c *corpus) doc(i int) Doc {
	r := c.rng(i)
	var n int
	switch p := r.IntN(100); {
	case p < 70:
		n = 5 + r.IntN(35)
	case p < 95:
		n = 40 + r.IntN(80)
	default:
		n = 200 + r.IntN(600)
	}
	z := rand.NewZipf(r, 1.07, 2, uint64(len(c.vocab)-1))
	var b strings.Builder
	for j := range n {
		if j > 0 {
			if r.IntN(12) == 0 {
				b.WriteString(". ")
			} else {
				b.WriteByte(' ')
			}
		}
		b.WriteString(c.vocab[z.Uint64()])
	}
	d := Doc{
		ID:     fmt.Sprintf("item-%07d", i),
		Text:   b.String(),
		Author: c.authors[zipf(r, len(c.authors))],
		Source: sources[r.IntN(len(sources))],
		Time:   time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(3 * 365 * 24 * time.Hour)))),
	}
	if r.IntN(10) == 0 {
		d.Summary = c.vocab[len(stopWords)+r.IntN(len(commonWords))] + " " + c.vocab[len(stopWords)+r.IntN(len(commonWords))]
	}
	for range r.IntN(4) {
		d.Tags = append(d.Tags, c.tags[zipf(r, len(c.tags))])
	}
	return d
}

// docs returns documents 0 to n-1.
func (c *corpus) docs(n int) []Doc {
	out := make([]Doc, n)
	for i := range out {
		out[i] = c.doc(i)
	}
	return out
}

// queries returns n typical queries: one to three common or rarer words, a
// tag, a phrase taken from a document, an author or a source with a word.
func (c *corpus) queries(n int) []string {
	r := rand.New(rand.NewPCG(c.seed, 0xc0ffee))
	common := func() string { return commonWords[zipf(r, len(commonWords))] }
	rare := func() string { return c.vocab[len(stopWords)+len(commonWords)+r.IntN(5000)] }
	out := make([]string, 0, n)
	for len(out) < n {
		var q string
		switch r.IntN(8) {
		case 0:
			q = common()
		case 1:
			q = common() + " " + common()
		case 2:
			q = common() + " " + rare() + " " + common()
		case 3:
			q = rare()
		case 4:
			q = "#" + c.tags[zipf(r, len(c.tags))]
		case 5:
			words := strings.Fields(c.doc(r.IntN(10_000)).Text)
			j := r.IntN(max(len(words)-2, 1))
			q = `"` + strings.Join(words[j:min(j+3, len(words))], " ") + `"`
		case 6:
			q = "from:" + c.authors[zipf(r, len(c.authors))] + " " + common()
		case 7:
			q = "source:mastodon " + common()
		}
		out = append(out, q)
	}
	return out
}
