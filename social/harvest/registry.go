package harvest

import (
	"cmp"
	"context"
	"slices"
)

// Source names the service an Item comes from, and the importer that
// brings it: "mastodon", "twitter", "feed". It is stored with every
// harvested entry, is part of each item's Key, and is what "plug import
// KIND" and the import API's "kind" take: a source, once registered, is
// never renamed.
type Source string

// Importer is one way of bringing posts home: what it reads, how people
// name it, and the function that reads it. Each importer registers its
// Importer from an init function in its own file, so that a new importer
// is one file of this package: the social service, the command line
// ("plug import KIND") and the web UI's import page list and look them up
// here.
type Importer struct {
	// Source names the importer and the items it brings.
	Source Source
	// Name names the source for people, in lists and filters: "Mastodon".
	Name string
	// Label says what it reads, for people, completing "It is ...":
	// "a Mastodon archive".
	Label string
	// Files names the archive files a person may upload for it (".zip,
	// .tar.gz"); empty when there is nothing to upload (a feed is read
	// from its URL).
	Files string
	// URL is true when it reads an http or https URL; the others read a
	// file or folder on the plug.
	URL bool
	// Help says in one line what to give it, for "plug import -h".
	Help string
	// Order places it in lists for people: lowest first.
	Order int
	// Import reads src (a file, a folder or a URL) and hands each item to
	// sink; see Sink, Options and Report.
	Import func(ctx context.Context, src string, sink Sink, opt Options) (Report, error)
}

// importers holds the registered importers in Order. It is filled by
// register from init functions only and never changes afterwards (as
// image.RegisterFormat does).
var importers []Importer

// register adds an importer to the registry. A second importer of the
// same source, or one without a source, name, label or function, is a
// mistake in this package and panics at start-up.
func register(im Importer) {
	if im.Source == "" || im.Name == "" || im.Label == "" || im.Import == nil {
		panic("harvest: an importer needs a source, a name, a label and an Import function")
	}
	if _, dup := Lookup(im.Source); dup {
		panic("harvest: importer " + string(im.Source) + " registered twice")
	}
	importers = append(importers, im)
	slices.SortStableFunc(importers, func(a, b Importer) int { return cmp.Compare(a.Order, b.Order) })
}

// Importers returns the registered importers, in the order people see
// them.
func Importers() []Importer { return slices.Clone(importers) }

// Sources returns the sources of the registered importers, in order.
func Sources() []Source {
	out := make([]Source, len(importers))
	for i, im := range importers {
		out[i] = im.Source
	}
	return out
}

// Lookup returns the importer of source s; ok is false when no importer
// brings items from s.
func Lookup(s Source) (im Importer, ok bool) {
	i := slices.IndexFunc(importers, func(im Importer) bool { return im.Source == s })
	if i < 0 {
		return Importer{}, false
	}
	return importers[i], true
}
