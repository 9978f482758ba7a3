package fsjail

import "io/fs"

// FileMode is the mode qftp gives a file it publishes, a download or an
// upload, from perm, the permission bits of the file at the other end (0:
// not known): perm's read, write and execute bits (never set-id or sticky
// bits), with reading and writing for the owner always, less the process's
// umask, as cp and sftp do. So a script stays executable and a private
// file private. Without perm it is 0o666 less the umask.
func FileMode(perm uint32) fs.FileMode { return fileMode(perm, umask) }

// UploadMode is FileMode for a file a client uploads to the server: never
// writable by group or others, whatever the client's file allowed and the
// server's umask, since other programs on the server may read the homes.
func UploadMode(perm uint32) fs.FileMode { return FileMode(perm) &^ 0o022 }

func fileMode(perm uint32, umask fs.FileMode) fs.FileMode {
	m := fs.FileMode(perm) & fs.ModePerm
	if m == 0 {
		m = 0o666
	}
	return (m | 0o600) &^ umask
}
