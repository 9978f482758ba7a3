//go:build unix

package fsjail

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

const (
	// openFileFlags opens a file for reading without waiting for a FIFO
	// writer or a device.
	openFileFlags = os.O_RDONLY | syscall.O_NONBLOCK
	// openDirFlags opens only directories, so that a file or FIFO fails at
	// once with ENOTDIR instead of being opened.
	openDirFlags = os.O_RDONLY | syscall.O_DIRECTORY | syscall.O_NONBLOCK
)

// withName returns a new *os.File for the same open file as f, with Name
// vpath, and closes f. os.Root names its files by host path, which would
// otherwise show up in every error from Read, Write or Close.
func withName(f *os.File, vpath string) (*os.File, error) {
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var dupErr error
	err = rc.Control(func(fd uintptr) {
		// ForkLock keeps the new descriptor out of a child forked before it
		// is marked close-on-exec, as package os does.
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
		nfd, dupErr = syscall.Dup(int(fd))
		if dupErr == nil {
			syscall.CloseOnExec(nfd)
		}
	})
	if err == nil {
		err = dupErr
	}
	if err != nil {
		return nil, err
	}
	// The descriptor is a regular file, for which O_NONBLOCK means nothing;
	// clearing it keeps os.NewFile from handing it to the netpoller.
	if err := syscall.SetNonblock(nfd, false); err != nil {
		syscall.Close(nfd)
		return nil, err
	}
	return os.NewFile(uintptr(nfd), vpath), nil
}

// TryLock takes an exclusive advisory lock on f without waiting; it fails
// with ErrBusy if another descriptor holds one. (A no-op outside Unix.)
func TryLock(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) {
		lerr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
	}); err != nil {
		return err
	}
	if errors.Is(lerr, syscall.EWOULDBLOCK) {
		return ErrBusy
	}
	return lerr
}

// finishFile gives a finished upload its final mode through its open
// descriptor, sparing a path walk. (Its time needs nanoseconds, which
// futimes lacks; CommitPartial sets it.)
func finishFile(f *os.File, mode fs.FileMode) (bool, error) {
	if err := f.Chmod(mode); err != nil {
		return false, err
	}
	return true, nil
}

// Blocking clears O_NONBLOCK on f, a regular file opened with it so that
// the open could not wait on a FIFO: most file systems ignore the flag for
// regular files, but some (FUSE ones) honour it and fail reads with EAGAIN.
func Blocking(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), false) }); err != nil {
		return err
	}
	return serr
}
