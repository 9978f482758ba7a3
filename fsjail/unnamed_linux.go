package fsjail

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// CreateUnnamed creates a file without a name in directory dir
// (open(2) with O_TMPFILE), for data that should appear under a name only
// once complete: if the process dies first, the file system reclaims it
// and nothing is left behind. Link names it. Where the kernel or the file
// system cannot (or /proc, which Link needs, is missing), it returns an
// error wrapping errors.ErrUnsupported, and the caller falls back to a
// named temporary file.
func CreateUnnamed(dir string, perm os.FileMode) (*os.File, error) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		return nil, fmt.Errorf("unnamed files: no /proc: %w", errors.ErrUnsupported)
	}
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, uint32(perm.Perm()))
	switch {
	case err == nil:
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EISDIR), errors.Is(err, unix.EINVAL):
		// The file system has no O_TMPFILE; a kernel before 3.11 reads
		// it as opening the directory for writing (EISDIR).
		return nil, fmt.Errorf("unnamed files in %s: %w", dir, errors.ErrUnsupported)
	default:
		return nil, &os.PathError{Op: "create", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed)")), nil
}

// procPath is the name by which the process reaches f's inode.
func procPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// Link gives the unnamed file f (from CreateUnnamed) the name dst. It
// never replaces a file: an existing dst is an error matching
// fs.ErrExist.
func Link(f *os.File, dst string) error {
	// AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH; the /proc link, which
	// linkat follows with AT_SYMLINK_FOLLOW, needs nothing (see open(2)).
	if err := unix.Linkat(unix.AT_FDCWD, procPath(f), unix.AT_FDCWD, dst, unix.AT_SYMLINK_FOLLOW); err != nil {
		return &os.LinkError{Op: "link", Old: f.Name(), New: dst, Err: err}
	}
	return nil
}

// Chtimes sets the access and modification times of the file f is open
// on, named or not, with the file system's full precision.
func Chtimes(f *os.File, atime, mtime time.Time) error {
	return os.Chtimes(procPath(f), atime, mtime)
}
