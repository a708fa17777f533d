// Package harvest turns the owner's exports and feeds into Items: a Mastodon
// archive (outbox.json in a .zip, .tar.gz or unpacked folder), a Twitter/X
// archive (data/tweets.js) and RSS, Atom, JSON Feed or ActivityPub outboxes
// read from a URL or a file.
//
// Each importer registers itself (Importer, in its own file): Importers and
// Lookup are how the social service, the command line and the web UI know
// which sources exist, what each reads and how people name it.
//
// It parses and nothing else. Each Item goes to a Sink supplied by the
// caller (the social package), which stores it, de-duplicates it by
// Item.Key and indexes it; media files are handed over as readers
// (Media.Open) and are never written to disk here. The package does not log:
// what went wrong with parts of an input is counted and listed in the
// Report, so one broken entry never stops an import.
//
// Inputs are untrusted. Archives are read without extracting them, entries
// are size-capped (MaxExportFileSize, MaxMediaSize, MaxDocumentSize) whatever
// their headers claim, path names from an archive never reach the file
// system, symbolic links in archives are ignored and, in unpacked folders,
// never followed outside the folder. JSON is decoded as a stream, one entry
// at a time, so memory follows the largest entry, not the file. HTML is
// reduced to plain text with bluemonday's strict policy, and JavaScript
// (tweets.js) is parsed as data, never run.
package harvest
