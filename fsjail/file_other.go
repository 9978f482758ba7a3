//go:build !unix

package fsjail

import (
	"os"
	"syscall"
	"time"
)

const (
	openFileFlags = os.O_RDONLY | syscall.O_NONBLOCK
	openDirFlags  = os.O_RDONLY
)

// withName returns f unchanged: outside Unix there is no portable way to
// rename an open file, so its Name and errors carry the host path.
func withName(f *os.File, _ string) (*os.File, error) { return f, nil }

// tryLock is a no-op where advisory locks are not used.
func tryLock(f *os.File) error { return nil }

// finishFile reports that the caller must set the mode by path.
func finishFile(f *os.File) (bool, error) { return false, nil }
