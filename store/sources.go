package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// ErrNotSource is wrapped when a folder to remove is not a source.
var ErrNotSource = errors.New("not a backup source")

// ErrBadSource is wrapped when a folder cannot be a source.
var ErrBadSource = errors.New("cannot back up this folder")

// Sources returns the folders the plug backs up by itself, sorted. They
// travel in the head record.
func (r *Repo) Sources() ([]string, error) {
	var src []string
	_, err := r.Extra("sources", &src)
	return src, err
}

// AddSource adds a folder to the sources and returns them.
func (r *Repo) AddSource(path string) ([]string, error) {
	path = filepath.Clean(path)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadSource, path, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a folder", ErrBadSource, path)
	}
	src, err := r.Sources()
	if err != nil {
		return nil, err
	}
	if slices.Contains(src, path) {
		return src, nil
	}
	src = append(src, path)
	slices.Sort(src)
	if err := r.SetExtra("sources", src); err != nil {
		return nil, err
	}
	r.log.Info("backup source added", "path", path)
	r.sourcesChanged()
	return src, nil
}

// RemoveSource removes a folder from the sources and returns them.
func (r *Repo) RemoveSource(path string) ([]string, error) {
	path = filepath.Clean(path)
	src, err := r.Sources()
	if err != nil {
		return nil, err
	}
	i := slices.Index(src, path)
	if i < 0 {
		return nil, fmt.Errorf("%w: %s (see plug sources ls)", ErrNotSource, path)
	}
	src = slices.Delete(src, i, i+1)
	if err := r.SetExtra("sources", src); err != nil {
		return nil, err
	}
	r.log.Info("backup source removed", "path", path)
	r.sourcesChanged()
	return src, nil
}

// OnSourcesChanged registers f to be called when the sources change.
func (r *Repo) OnSourcesChanged(f func()) {
	r.hookMu.Lock()
	r.onSources = append(r.onSources, f)
	r.hookMu.Unlock()
}

func (r *Repo) sourcesChanged() {
	r.hookMu.Lock()
	hooks := slices.Clone(r.onSources)
	r.hookMu.Unlock()
	for _, f := range hooks {
		f()
	}
}
