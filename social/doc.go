// Package social is the plug's microblog: signed posts shared with friends,
// feed sync, the harvester that imports the owner's posts from Mastodon,
// Twitter/X and feeds, and full-text search over all of it.
package social
