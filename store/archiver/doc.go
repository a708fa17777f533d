// Package archiver walks the files of a backup and stores them: a walker
// lists directories and hands files to a pool of workers that chunk
// (FastCDC), hash (keyed BLAKE3) and save them through the packer; a
// finisher writes each directory's tree once its entries are done.
// Unchanged files (size, mtime, ctime, inode, mode) of the parent snapshot
// are not read again when their chunks are still stored.
package archiver
