package fsjail

import "io/fs"

// Stamp identifies one version of a file: the same inode with the same
// size, modification time and change time. Any write, truncation, rename
// or metadata change gives a file a new change time, which nobody can set
// by hand, so an unchanged stamp means unchanged content, except within
// the file system's timestamp granularity: a change in the same clock tick
// as the previous one may leave the change time as it was. Callers that
// remember something about a file by its stamp trust it only for files
// whose change time was well in the past when they looked (see
// session's digest cache), or accept that risk. (Linux 6.13 and later
// give ext4, xfs, btrfs and tmpfs fine-grained change times once a
// stamp has been read, which closes it there.)
type Stamp struct {
	Dev, Ino     uint64
	Size         int64
	Mtime, Ctime int64 // ns since the epoch
}

// StampOf returns the stamp of the file fi describes, and false where the
// platform does not say (then nothing should be remembered by stamp).
func StampOf(fi fs.FileInfo) (Stamp, bool) { return stampOf(fi) }
