// Package restorer writes a snapshot back to disk: it walks the trees once
// to list directories and symlinks, count the files and refuse to replace
// a file without Overwrite; then walks them again, planning where each
// chunk goes a part at a time (its memory does not grow with the number of
// files), fetches the packs each part needs and writes their chunks into
// temporary files that are renamed once complete; last it gives symlinks
// and directories their modes and times. A failed restore leaves no
// partial file.
package restorer
