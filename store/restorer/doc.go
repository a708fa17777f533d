// Package restorer writes a snapshot back to disk: it plans every
// directory, file and symlink and where each chunk goes, refuses to replace
// a file without Overwrite, fetches the packs the files need and writes
// their chunks into temporary files that are renamed once complete, then
// gives symlinks and directories their modes and times. A failed restore
// leaves no partial file.
package restorer
