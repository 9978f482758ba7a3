//go:build !unix

package fsjail

// umask: outside Unix, modes are only a read-only flag.
const umask = 0
