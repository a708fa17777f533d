package data

import (
	"crypto/rand"
	"time"
)

// Snapshot is the record of one backup.
type Snapshot struct {
	ID       ID        `json:"id"`
	Time     time.Time `json:"time"`
	Host     string    `json:"host"`
	Paths    []string  `json:"paths"`
	Tree     []ID      `json:"tree"` // chunks of the root tree
	Parent   ID        `json:"parent,omitzero"`
	Files    int64     `json:"files"`
	Dirs     int64     `json:"dirs"`
	Bytes    int64     `json:"bytes"`     // size of the files
	NewBytes int64     `json:"new_bytes"` // file data stored anew
	Errors   int64     `json:"errors,omitempty"`
	Duration float64   `json:"duration_s"`
	// State is the tree of the plug's own state folder (posts, harvested
	// items, media) at StatePath, carried beside the paths; see
	// the state source of the Repo.
	State     []ID   `json:"state,omitempty"`
	StatePath string `json:"state_path,omitempty"`
}

// StateOnly reports whether the snapshot carries only the plug's own
// state (no paths of the owner's): such snapshots are not listed to people
// nor restored as "latest".
func (s Snapshot) StateOnly() bool { return len(s.Paths) == 0 }

// NewSnapshotID returns a random snapshot ID: snapshots of the same tree at
// different times are different snapshots.
func NewSnapshotID() ID {
	var id ID
	rand.Read(id[:])
	return id
}
