package data

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"unicode/utf8"
)

// Node types in a tree.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
)

// Node is one entry of a directory listing.
type Node struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Mode holds the permission bits and setuid, setgid and sticky, as in
	// fs.FileMode.
	Mode    uint32 `json:"mode"`
	ModTime int64  `json:"mtime"` // unix nanoseconds
	Size    int64  `json:"size,omitempty"`
	// CTime, Inode and Dev tell an unchanged file without reading it; they
	// are not restored.
	CTime int64  `json:"ctime,omitempty"`
	Inode uint64 `json:"inode,omitempty"`
	Dev   uint64 `json:"dev,omitempty"`
	// Content lists a file's chunks in order.
	Content []ID `json:"content,omitempty"`
	// Subtree lists the chunks of a directory's own serialized tree.
	Subtree []ID `json:"subtree,omitempty"`
	// Target is a symlink's target.
	Target string `json:"target,omitempty"`
	// RawName and RawTarget carry a name or target that is not valid UTF-8
	// (JSON could not keep its bytes); Name or Target is then empty in the
	// serialized form.
	RawName   []byte `json:"raw_name,omitempty"`
	RawTarget []byte `json:"raw_target,omitempty"`
}

// FileMode returns the node's mode as an fs.FileMode, type bits included.
func (n *Node) FileMode() fs.FileMode {
	m := fs.FileMode(n.Mode) & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	switch n.Type {
	case TypeDir:
		m |= fs.ModeDir
	case TypeSymlink:
		m |= fs.ModeSymlink
	}
	return m
}

// Tree is a directory listing, sorted by name.
type Tree struct {
	Nodes []Node `json:"nodes"`
}

// Limits of a tree read back from a pack.
const (
	// MaxTreeSize bounds a serialized tree (a directory of about a million
	// entries).
	MaxTreeSize = 256 << 20
	maxNameLen  = 4096
)

// ErrBadTree is wrapped by every error about a malformed tree.
var ErrBadTree = errors.New("malformed tree")

// Encode serializes the tree, sorting it by name first.
func (t *Tree) Encode() ([]byte, error) {
	slices.SortFunc(t.Nodes, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	out := Tree{Nodes: make([]Node, len(t.Nodes))}
	for i, n := range t.Nodes {
		if !utf8.ValidString(n.Name) {
			n.RawName, n.Name = []byte(n.Name), ""
		}
		if !utf8.ValidString(n.Target) {
			n.RawTarget, n.Target = []byte(n.Target), ""
		}
		out.Nodes[i] = n
	}
	return json.Marshal(out)
}

// DecodeTree parses and checks a serialized tree: names are single path
// elements (never "", ".", "..", nor containing "/" or NUL), unique and
// sorted; each node has a known type and only the fields of its type.
func DecodeTree(b []byte) (*Tree, error) {
	if len(b) > MaxTreeSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadTree, len(b))
	}
	var t Tree
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadTree, err)
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if n.RawName != nil {
			if n.Name != "" {
				return nil, fmt.Errorf("%w: entry %d has two names", ErrBadTree, i)
			}
			n.Name, n.RawName = string(n.RawName), nil
		}
		if n.RawTarget != nil {
			if n.Target != "" {
				return nil, fmt.Errorf("%w: entry %d has two targets", ErrBadTree, i)
			}
			n.Target, n.RawTarget = string(n.RawTarget), nil
		}
		if err := checkName(n.Name); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrBadTree, i, err)
		}
		if i > 0 && t.Nodes[i-1].Name >= n.Name {
			return nil, fmt.Errorf("%w: entries not sorted or repeated at %q", ErrBadTree, n.Name)
		}
		switch n.Type {
		case TypeFile:
			if n.Size < 0 || len(n.Subtree) > 0 || n.Target != "" {
				return nil, fmt.Errorf("%w: file %q has fields of another type", ErrBadTree, n.Name)
			}
		case TypeDir:
			if len(n.Content) > 0 || n.Target != "" {
				return nil, fmt.Errorf("%w: directory %q has fields of another type", ErrBadTree, n.Name)
			}
		case TypeSymlink:
			if len(n.Content) > 0 || len(n.Subtree) > 0 || n.Target == "" || len(n.Target) > maxNameLen || strings.ContainsRune(n.Target, 0) {
				return nil, fmt.Errorf("%w: bad symlink %q", ErrBadTree, n.Name)
			}
		default:
			return nil, fmt.Errorf("%w: %q has unknown type %.16q", ErrBadTree, n.Name, n.Type)
		}
	}
	return &t, nil
}

func checkName(s string) error {
	switch {
	case s == "" || s == "." || s == "..":
		return fmt.Errorf("name %q", s)
	case len(s) > maxNameLen:
		return fmt.Errorf("name of %d bytes", len(s))
	case strings.ContainsAny(s, "/\x00"):
		return fmt.Errorf("name %q contains / or NUL", s)
	}
	return nil // file names are bytes: any byte but / and NUL is allowed
}

// Find returns the node named name, or nil.
func (t *Tree) Find(name string) *Node {
	i, ok := slices.BinarySearchFunc(t.Nodes, name, func(n Node, name string) int { return strings.Compare(n.Name, name) })
	if !ok {
		return nil
	}
	return &t.Nodes[i]
}
