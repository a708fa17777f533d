package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// fixtures is the folder of the real exports of the harvester's tests: a
// copy of ../shared/fixtures in the repository's testdata/fixtures, or
// $PLUG_FIXTURES.
func fixtures(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PLUG_FIXTURES")
	if dir == "" {
		dir = filepath.Join("..", "testdata", "fixtures")
	}
	abs, err := filepath.Abs(dir)
	if err == nil {
		_, err = os.Stat(filepath.Join(abs, "mastodon-archive", "outbox.json"))
	}
	if err != nil {
		t.Fatalf("the real exports are not in %s (%v): set PLUG_FIXTURES to the folder holding mastodon-archive/ and twitter-archive/", dir, err)
	}
	return abs
}

type entryJSON struct {
	ID     string    `json:"id"`
	Author string    `json:"author"`
	Source string    `json:"source"`
	Time   time.Time `json:"time"`
	Text   string    `json:"text"`
	URL    string    `json:"url"`
	Own    bool      `json:"own"`
	Media  []struct {
		Hash    string `json:"hash"`
		Name    string `json:"name"`
		Missing bool   `json:"missing"`
	} `json:"media"`
}

func timeline(t *testing.T, dir string, args ...string) []entryJSON {
	t.Helper()
	r := mustPlug(t, append([]string{"timeline", "--data", dir, "--json"}, args...)...)
	var es []entryJSON
	if err := json.Unmarshal([]byte(r.stdout), &es); err != nil {
		t.Fatalf("timeline --json: %v\n%s", err, r.stdout)
	}
	// The contract's keys are all there.
	var raw []map[string]any
	fromJSON(t, r.stdout, &raw)
	for _, e := range raw {
		for _, k := range []string{"id", "author", "source", "time", "text", "url"} {
			if _, ok := e[k]; !ok {
				t.Fatalf("timeline --json lacks %q: %v", k, e)
			}
		}
	}
	return es
}

func searchJSON(t *testing.T, dir, query string) []entryJSON {
	t.Helper()
	r := mustPlug(t, "search", "--data", dir, "--json", "-n", "100", query)
	var es []entryJSON
	if err := json.Unmarshal([]byte(r.stdout), &es); err != nil {
		t.Fatalf("search --json: %v\n%s", err, r.stdout)
	}
	return es
}

// eventually polls cond every 200 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func findEntry(es []entryJSON, id string) (entryJSON, bool) {
	for _, e := range es {
		if e.ID == id {
			return e, true
		}
	}
	return entryJSON{}, false
}

// TestMicroblog: three plugs, A friends with B and C. A's posts, edits and
// deletes reach both; C, offline meanwhile, catches up when it is back; an
// image travels; a plug that is not A's friend gets nothing.
func TestMicroblog(t *testing.T) {
	c := newCluster(t, nil, "a", "b", "c")
	c.start("s", "--bootstrap", c.boot, "--name", "stranger")
	a, b, cc, s := c.dir("a"), c.dir("b"), c.dir("c"), c.dir("s")
	// B and the stranger are friends; the stranger is not A's.
	c.pair("b", "s")

	r := mustPlug(t, "post", "--data", a, "--json", "first post from ann #hello")
	var p1 entryJSON
	fromJSON(t, r.stdout, &p1)
	if p1.ID == "" || !p1.Own || p1.Source != "plug" {
		t.Fatalf("post --json: %s", r.stdout)
	}
	for _, d := range []string{b, cc} {
		eventually(t, 30*time.Second, "a friend did not get A's post", func() bool {
			e, ok := findEntry(timeline(t, d), p1.ID)
			return ok && e.Text == "first post from ann #hello" && e.Author == "a" && !e.Own
		})
	}
	if got := searchJSON(t, b, "#hello"); len(got) != 1 || got[0].ID != p1.ID {
		t.Fatalf("B's search for #hello: %+v", got)
	}

	// An edit and an image reach B.
	img := filepath.Join(t.TempDir(), "dot.png")
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
	mustOK(t, os.WriteFile(img, png, 0o644))
	mustPlug(t, "post", "--data", a, "--edit", p1.ID, "--image", img, "first post, edited")
	eventually(t, 30*time.Second, "B did not get A's edit", func() bool {
		e, ok := findEntry(timeline(t, b), p1.ID)
		return ok && e.Text == "first post, edited" && len(e.Media) == 1 && e.Media[0].Hash != ""
	})

	// B cannot edit or delete A's post.
	if r := plug(t, "", "post", "--data", b, "--delete", p1.ID); r.code != 1 || !strings.Contains(r.stderr, "not your post") {
		t.Fatalf("B deleting A's post: exit %d, %s", r.code, r.stderr)
	}

	// C goes offline; A posts and deletes meanwhile; C catches up.
	c.d["c"].stop()
	r = mustPlug(t, "post", "--data", a, "--json", "while C was away")
	var p2 entryJSON
	fromJSON(t, r.stdout, &p2)
	mustPlug(t, "post", "--data", a, "--delete", p1.ID)
	eventually(t, 30*time.Second, "B still shows a deleted post", func() bool {
		es := timeline(t, b)
		_, old := findEntry(es, p1.ID)
		_, nw := findEntry(es, p2.ID)
		return !old && nw
	})
	c.start("c")
	eventually(t, 60*time.Second, "C did not catch up with what A did while it was away", func() bool {
		es := timeline(t, cc)
		_, old := findEntry(es, p1.ID)
		_, nw := findEntry(es, p2.ID)
		return !old && nw
	})
	if got := searchJSON(t, cc, "first"); len(got) != 0 {
		t.Fatalf("C's search still finds the deleted post: %+v", got)
	}

	// A friend paired now gets A's posts at once (not at the next periodic
	// sync, ten minutes away).
	c.start("d", "--bootstrap", c.boot, "--name", "dan")
	c.pair("a", "d")
	eventually(t, 30*time.Second, "a new friend did not get A's earlier posts", func() bool {
		_, ok := findEntry(timeline(t, c.dir("d")), p2.ID)
		return ok
	})

	// The stranger, though online and friends with B, has none of A's posts.
	// It has had every chance: B posts while the stranger is away, and the
	// stranger, back, pulls B's feed (all B has changed since its last pull,
	// which was before A's posts reached B) until it has that post.
	c.d["s"].stop()
	r = mustPlug(t, "post", "--data", b, "--json", "bob, for his friends")
	var pb entryJSON
	fromJSON(t, r.stdout, &pb)
	c.start("s")
	eventually(t, 60*time.Second, "the stranger did not catch up with its friend B", func() bool {
		_, ok := findEntry(timeline(t, s), pb.ID)
		return ok
	})
	for _, e := range timeline(t, s) {
		if e.Author == "a" {
			t.Fatalf("a plug that is not A's friend got A's post %+v", e)
		}
	}
}

// TestImportFixtures imports the real Mastodon and Twitter/X exports with
// the command line: every item is accounted for, a second import adds
// nothing, and the items are in the timeline and the search.
func TestImportFixtures(t *testing.T) {
	fx := fixtures(t)
	dir := filepath.Join(t.TempDir(), "a")
	startPlug(t, dir, "--bootstrap", "none")
	type report struct {
		Imported     int            `json:"imported"`
		Duplicates   int            `json:"duplicates"`
		Skipped      int            `json:"skipped"`
		MediaFound   int            `json:"media_found"`
		MediaMissing int            `json:"media_missing"`
		Seen         int            `json:"seen"`
		SkipReasons  map[string]int `json:"skip_reasons"`
	}
	imp := func(kind, src string) report {
		r := mustPlug(t, "import", "--data", dir, "--json", kind, src)
		var rep report
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("import --json: %v\n%s", err, r.stdout)
		}
		return rep
	}
	m1 := imp("mastodon", filepath.Join(fx, "mastodon-archive"))
	if m1.Imported == 0 || m1.Imported+m1.Duplicates+m1.Skipped != m1.Seen {
		t.Fatalf("mastodon import does not account for every activity: %+v", m1)
	}
	m2 := imp("mastodon", filepath.Join(fx, "mastodon-archive"))
	if m2.Imported != 0 || m2.Duplicates != m1.Imported {
		t.Fatalf("second mastodon import: %+v, first %+v", m2, m1)
	}
	t1 := imp("twitter", filepath.Join(fx, "twitter-archive"))
	if t1.Imported == 0 || t1.Imported+t1.Duplicates+t1.Skipped != t1.Seen {
		t.Fatalf("twitter import: %+v", t1)
	}
	if t2 := imp("twitter", filepath.Join(fx, "twitter-archive")); t2.Imported != 0 {
		t.Fatalf("second twitter import added %d", t2.Imported)
	}

	ms := timeline(t, dir, "--source", "mastodon", "-n", "1000")
	if len(ms) != 1000 {
		t.Fatalf("timeline --source mastodon -n 1000 gave %d items", len(ms))
	}
	for i := 1; i < len(ms); i++ {
		if ms[i].Time.After(ms[i-1].Time) {
			t.Fatalf("timeline not newest first at %d", i)
		}
		if ms[i].Source != "mastodon" {
			t.Fatalf("timeline --source mastodon gave a %s item", ms[i].Source)
		}
	}
	// The newest toot of the fixture, checked by hand against outbox.json.
	newest := ms[0]
	if !strings.HasPrefix(newest.Text, "You see a rug. He sees an opportunity for a caving adventure") ||
		newest.URL != "https://indieweb.social/@dealingwith/112837259854029549" ||
		!newest.Time.Equal(time.Date(2024, 7, 23, 18, 39, 6, 0, time.UTC)) {
		t.Fatalf("newest toot: %+v", newest)
	}
	if strings.Contains(newest.Text, "<") {
		t.Fatalf("HTML left in an imported toot: %q", newest.Text)
	}
	got := searchJSON(t, dir, "caving adventure")
	if len(got) == 0 || got[0].ID != newest.ID {
		t.Fatalf("search for \"caving adventure\": %+v", got)
	}
	tw := searchJSON(t, dir, "source:twitter campers")
	if !slices.ContainsFunc(tw, func(e entryJSON) bool { return e.Text == "#rcc09 Hello campers!" }) {
		t.Fatalf("search for a tweet: %+v", tw)
	}
}

// TestTimelineSurvivesLosingThePlug: A posts, gets a friend's post and
// imports the Mastodon export; A is lost; the plug recovered from its words
// has the same timeline and search.
func TestTimelineSurvivesLosingThePlug(t *testing.T) {
	fx := fixtures(t)
	c := newCluster(t, nil, "a", "b", "c")
	a := c.dir("a")
	phrase := recoveryPhraseOf(t, c, "a")

	mustPlug(t, "post", "--data", a, "ann's own post about tomatoes")
	r := mustPlug(t, "post", "--data", c.dir("b"), "--json", "bob's post about gardens")
	var pb entryJSON
	fromJSON(t, r.stdout, &pb)
	eventually(t, 30*time.Second, "A did not get B's post", func() bool { _, ok := findEntry(timeline(t, a), pb.ID); return ok })
	mustPlug(t, "import", "--data", a, "mastodon", filepath.Join(fx, "mastodon-archive"))

	src := filepath.Join(c.base, "src")
	makeFiles(t, src, 7, 20)
	c.backup(src)

	before := timeline(t, a, "-n", "1000")
	searches := []string{"tomatoes", "gardens", "caving adventure", "#catsofmastodon"}
	found := map[string][]entryJSON{}
	for _, q := range searches {
		found[q] = searchJSON(t, a, q)
		if len(found[q]) == 0 {
			t.Fatalf("search %q finds nothing before the loss", q)
		}
	}

	c.kill("a")
	mustOK(t, os.RemoveAll(a))
	a2 := filepath.Join(c.base, "a2")
	if r := plug(t, phrase+"\n", "init", "--recover", "--data", a2, "--json"); r.code != 0 {
		t.Fatalf("init --recover: %s", r.stderr)
	}
	d2 := startPlug(t, a2, "--bootstrap", c.boot, "--name", "a")
	eventually(t, 3*time.Minute, "the recovered plug did not get its timeline back", func() bool {
		return len(timeline(t, a2, "-n", "1000")) == len(before)
	})
	eventually(t, 30*time.Second, "the recovered plug still marks itself as recovering", func() bool {
		_, err := os.Stat(filepath.Join(a2, "recovering"))
		return os.IsNotExist(err)
	})
	if _, err := os.Stat(filepath.Join(c.dir("b"), "recovering")); !os.IsNotExist(err) {
		t.Fatal("a plug made new marks itself as recovering")
	}
	after := timeline(t, a2, "-n", "1000")
	if !reflect.DeepEqual(ids(before), ids(after)) {
		t.Fatalf("timeline differs after recovery:\n%s", d2.logText())
	}
	for i := range before {
		if before[i].Text != after[i].Text || !before[i].Time.Equal(after[i].Time) || before[i].Author != after[i].Author {
			t.Fatalf("entry %d differs: %+v vs %+v", i, before[i], after[i])
		}
	}
	for _, q := range searches {
		if got := searchJSON(t, a2, q); !reflect.DeepEqual(ids(got), ids(found[q])) {
			t.Fatalf("search %q differs after recovery: %d vs %d items", q, len(got), len(found[q]))
		}
	}
	// The recovered plug posts on, and its friends get it.
	r = mustPlug(t, "post", "--data", a2, "--json", "back from the dead")
	var p entryJSON
	fromJSON(t, r.stdout, &p)
	eventually(t, 30*time.Second, "B did not get the recovered plug's post", func() bool {
		_, ok := findEntry(timeline(t, c.dir("b")), p.ID)
		return ok
	})
}

func ids(es []entryJSON) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// recoveryPhraseOf finds the 24 words a plug printed when "plug up" created
// it.
func recoveryPhraseOf(t *testing.T, c *cluster, name string) string {
	t.Helper()
	for _, l := range lines(c.d[name].logText()) {
		words := strings.Fields(l)
		if len(words) == 24 && !strings.ContainsAny(l, "=:.") {
			return l
		}
	}
	t.Fatalf("plug %s printed no recovery phrase:\n%s", name, c.d[name].logText())
	return ""
}
