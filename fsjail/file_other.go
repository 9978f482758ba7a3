//go:build !unix

package fsjail

import (
	"io/fs"
	"os"
	"syscall"
)

const (
	openFileFlags = os.O_RDONLY | syscall.O_NONBLOCK
	openDirFlags  = os.O_RDONLY
)

// withName returns f unchanged: outside Unix there is no portable way to
// rename an open file, so its Name and errors carry the host path.
func withName(f *os.File, _ string) (*os.File, error) { return f, nil }

// TryLock is a no-op where advisory locks are not used.
func TryLock(f *os.File) error { return nil }

// finishFile reports that the caller must set the mode by path.
func finishFile(*os.File, fs.FileMode) (bool, error) { return false, nil }

// Blocking does nothing outside Unix.
func Blocking(*os.File) error { return nil }
