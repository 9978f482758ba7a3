//go:build !linux

package fsjail

import (
	"errors"
	"os"
	"time"
)

// CreateUnnamed is Linux's O_TMPFILE; elsewhere it is unsupported and
// callers use a named temporary file.
func CreateUnnamed(dir string, perm os.FileMode) (*os.File, error) {
	return nil, errors.ErrUnsupported
}

// Link is never reached without CreateUnnamed.
func Link(f *os.File, dst string) error { return errors.ErrUnsupported }

// Chtimes is never reached without CreateUnnamed.
func Chtimes(f *os.File, atime, mtime time.Time) error { return errors.ErrUnsupported }
