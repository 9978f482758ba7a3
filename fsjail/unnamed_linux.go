package fsjail

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
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
	f := os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed)"))
	// Naming the file needs /proc's link to be followed, which a process
	// may be refused (one that is not dumpable, a hardened /proc): learn
	// that once, before a download depends on it.
	linkProbe.once.Do(func() { linkProbe.ok = canLink(dir) })
	if !linkProbe.ok {
		_ = f.Close()
		return nil, fmt.Errorf("unnamed files: linking through /proc failed: %w", errors.ErrUnsupported)
	}
	return f, nil
}

var linkProbe struct {
	once sync.Once
	ok   bool
}

// canLink reports whether an unnamed file in dir can be given a name.
func canLink(dir string) bool {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false
	}
	f := os.NewFile(uintptr(fd), "probe")
	defer f.Close()
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	name := filepath.Join(dir, fmt.Sprintf(".qftp-probe-%x", rnd))
	if err := Link(f, name); err != nil {
		return false
	}
	_ = os.Remove(name)
	return true
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
