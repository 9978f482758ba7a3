//go:build !unix

package fsjail

import "io/fs"

// umask: outside Unix, modes are only a read-only flag.
const umask fs.FileMode = 0
