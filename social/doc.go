// Package social is the plug's microblog: signed posts shared with friends,
// feed sync, the harvester that imports the owner's posts from Mastodon,
// Twitter/X and feeds (its importers are listed in social/harvest), and
// full-text search over all of it.
//
// A Service owns the work it does in the background (pushes, pulls and
// image fetches between friends, feed requests being served, imports, Run):
// all of it runs under a context that Close cancels, and Close returns once
// it has ended.
package social
