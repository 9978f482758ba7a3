// Package fsjail confines file access to one user's home directory. It is the
// only code in qftp that touches user files.
//
// Clients name files by virtual paths, in which the home is "/" (for example
// "/docs/2024/a.txt"). The session turns every client path into a virtual
// path with Resolve and passes only that to a Jail, which re-validates it and
// opens it through an os.Root, so that neither ".." nor a symlink can leave
// the home. Every error a Jail returns is an *fs.PathError carrying the
// virtual path, never a host path.
package fsjail

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"
)

var (
	// ErrInvalidPath means a path was refused before any file system access:
	// it is empty, longer than 4096 bytes, not valid UTF-8, contains a NUL
	// byte or a backslash, has a component longer than 255 bytes or starting
	// with ReservedPrefix, or (for Jail methods) is not a resolved virtual
	// path. errors.Is(err, fs.ErrInvalid) also holds.
	ErrInvalidPath error = &jailError{"invalid path", []error{fs.ErrInvalid}}

	// ErrEscapes means a path would leave the home directory, by ".." or
	// through a symlink that points outside (or a symlink loop). It satisfies
	// errors.Is(err, fs.ErrPermission).
	ErrEscapes error = &jailError{"path escapes home directory", []error{fs.ErrPermission}}

	// ErrNotRegular means Jail.Open was asked for something other than a
	// regular file. For a directory the error also matches syscall.EISDIR.
	ErrNotRegular = errors.New("not a regular file")
)

var (
	// errHomeDir refuses removing or moving the home directory itself.
	errHomeDir = &jailError{"not permitted on the home directory", []error{fs.ErrPermission}}
	// errIntoSelf refuses moving a directory below itself.
	errIntoSelf = &jailError{"cannot move a directory into itself", []error{fs.ErrInvalid, syscall.EINVAL}}
	// errIsDir is Open's error for a directory.
	errIsDir = &jailError{"is a directory", []error{ErrNotRegular, syscall.EISDIR}}
)

// jailError is an error that also matches the errors in is, so callers can
// branch on either the package's sentinel or the generic one.
type jailError struct {
	msg string
	is  []error
}

func (e *jailError) Error() string { return e.msg }

func (e *jailError) Is(target error) bool { return slices.Contains(e.is, target) }

// escapeMsg is the text of os.Root's unexported escape error. Matching by text
// is the only way to recognize it (SFTPGo does the same).
const escapeMsg = "path escapes from parent"

// pathError is the one place errors leave this package. It returns nil for
// nil, and otherwise an *fs.PathError with the virtual path and the innermost
// errno or sentinel: the host-relative names in os.Root's *PathError and
// *LinkError are dropped, and os.Root's escape error and ELOOP become
// ErrEscapes.
func pathError(op, vpath string, err error) error {
	if err == nil {
		return nil
	}
	err = innermost(err)
	if err.Error() == escapeMsg || errors.Is(err, syscall.ELOOP) {
		err = ErrEscapes
	}
	return &fs.PathError{Op: op, Path: printable(vpath), Err: err}
}

// innermost strips the *PathError, *LinkError and *SyscallError layers that
// carry host-relative names, leaving the errno or sentinel below them.
func innermost(err error) error {
	for {
		var pe *fs.PathError
		var le *os.LinkError
		var se *os.SyscallError
		switch {
		case errors.As(err, &pe):
			err = pe.Err
		case errors.As(err, &le):
			err = le.Err
		case errors.As(err, &se):
			err = se.Err
		default:
			return err
		}
	}
}

// Jail gives access to the files below one home directory. All methods take
// resolved virtual paths (outputs of Resolve) and refuse anything else with
// ErrInvalidPath. Relative symlinks are followed only while they stay inside
// the home; a path through one that leaves it, through any absolute symlink
// (os.Root never follows those) or through a symlink loop fails with
// ErrEscapes.
//
// A Jail is safe for concurrent use. Methods fail after Close.
type Jail struct {
	root *os.Root
}

// Open opens a jail on dir, the user's home directory, which must exist and
// be a directory. dir is trusted configuration; symlinks in it are followed.
// Errors name the host path and are meant for the server log. The caller
// closes the Jail.
func Open(dir string) (*Jail, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Jail{root: root}, nil
}

// Close releases the home directory. Files opened through the Jail stay
// usable; operations in flight complete.
func (j *Jail) Close() error {
	return j.root.Close()
}

// Stat returns information about the file at vpath, following symlinks that
// stay inside the home.
func (j *Jail) Stat(vpath string) (fs.FileInfo, error) {
	rel, err := rootRel(vpath)
	if err != nil {
		return nil, pathError("stat", vpath, err)
	}
	fi, err := j.root.Stat(rel)
	if err != nil {
		return nil, pathError("stat", vpath, err)
	}
	return fi, nil
}

// Lstat is Stat without following a symlink in the last component. Lstat on
// a symlink that points outside the home describes the link and succeeds.
func (j *Jail) Lstat(vpath string) (fs.FileInfo, error) {
	rel, err := rootRel(vpath)
	if err != nil {
		return nil, pathError("lstat", vpath, err)
	}
	fi, err := j.root.Lstat(rel)
	if err != nil {
		return nil, pathError("lstat", vpath, err)
	}
	return fi, nil
}

// ReadDir lists the directory at vpath, sorted by name. Each entry is
// described as by Lstat. Entries a client could not name are hidden: those
// starting with ReservedPrefix (temp files) and the rare names Resolve
// refuses, such as ones with a backslash or invalid UTF-8. A vpath that is
// not a directory fails with syscall.ENOTDIR.
func (j *Jail) ReadDir(vpath string) ([]fs.FileInfo, error) {
	infos, _, err := j.ListDir(vpath)
	return infos, err
}

// ListDir is ReadDir that also returns the names it hid that are not
// qftp's own (ReservedPrefix): files a client cannot name, and so cannot
// transfer, which a listing or a recursive get should mention.
func (j *Jail) ListDir(vpath string) (infos, unnamable []fs.FileInfo, err error) {
	const op = "readdir"
	rel, err := rootRel(vpath)
	if err != nil {
		return nil, nil, pathError(op, vpath, err)
	}
	f, err := j.root.OpenFile(rel, openDirFlags, 0)
	if err != nil {
		return nil, nil, pathError(op, vpath, err)
	}
	defer f.Close()
	// On Unix, Readdir stats entries relative to the open directory, so a
	// concurrent rename can't point it elsewhere.
	infos, err = f.Readdir(-1)
	if err != nil {
		return nil, nil, pathError(op, vpath, err)
	}
	infos = slices.DeleteFunc(infos, func(fi fs.FileInfo) bool {
		name := fi.Name()
		if clientVisible(name) {
			return false
		}
		if !strings.HasPrefix(name, ReservedPrefix) {
			unnamable = append(unnamable, fi)
		}
		return true
	})
	slices.SortFunc(infos, func(a, b fs.FileInfo) int { return strings.Compare(a.Name(), b.Name()) })
	return infos, unnamable, nil
}

// Mkdir creates the directory vpath with mode 0o755 (less the umask). With
// parents it behaves like mkdir -p: missing parents are created and an
// existing directory is not an error. Without parents an existing vpath fails
// with fs.ErrExist and a missing parent with fs.ErrNotExist.
func (j *Jail) Mkdir(vpath string, parents bool) error {
	const op = "mkdir"
	rel, err := rootRel(vpath)
	if err != nil {
		return pathError(op, vpath, err)
	}
	if parents {
		return pathError(op, vpath, j.root.MkdirAll(rel, 0o755))
	}
	return pathError(op, vpath, j.root.Mkdir(rel, 0o755))
}

// Chtimes sets the modification time of vpath (following symlinks inside
// the home); the access time is left alone.
func (j *Jail) Chtimes(vpath string, mtime time.Time) error {
	const op = "chtimes"
	rel, err := rootRel(vpath)
	if err != nil {
		return pathError(op, vpath, err)
	}
	return pathError(op, vpath, j.root.Chtimes(rel, time.Time{}, mtime))
}

// Remove removes the file or symlink at vpath (a symlink itself, never its
// target). A directory fails with syscall.EISDIR; use Rmdir.
func (j *Jail) Remove(vpath string) error {
	const op = "remove"
	rel, err := rootRel(vpath)
	if err != nil {
		return pathError(op, vpath, err)
	}
	fi, err := j.root.Lstat(rel)
	if err != nil {
		return pathError(op, vpath, err)
	}
	if fi.IsDir() {
		return pathError(op, vpath, syscall.EISDIR)
	}
	// os.Root has no files-only remove. If the file is swapped for an empty
	// directory right now, that directory goes, which Rmdir would allow anyway.
	return pathError(op, vpath, j.root.Remove(rel))
}

// Rmdir removes the empty directory at vpath. A file or symlink fails with
// syscall.ENOTDIR, a non-empty directory with syscall.ENOTEMPTY (leftover
// temp files count, although ReadDir hides them), and "/" with an error
// matching fs.ErrPermission.
func (j *Jail) Rmdir(vpath string) error {
	const op = "rmdir"
	rel, err := rootRel(vpath)
	if err != nil {
		return pathError(op, vpath, err)
	}
	if vpath == "/" {
		return pathError(op, vpath, errHomeDir)
	}
	fi, err := j.root.Lstat(rel)
	if err != nil {
		return pathError(op, vpath, err)
	}
	if !fi.IsDir() {
		return pathError(op, vpath, syscall.ENOTDIR)
	}
	// As in Remove, a concurrent swap can only remove something the user
	// could remove with Remove.
	err = j.root.Remove(rel)
	if errors.Is(err, syscall.EEXIST) {
		// POSIX lets rmdir say EEXIST for a non-empty directory, and
		// os.Root passes it on at times; say what it means.
		err = syscall.ENOTEMPTY
	}
	return pathError(op, vpath, err)
}

// Rename moves the file, symlink (the link itself) or directory from to to.
//
// Without overwrite an existing to fails with an error matching fs.ErrExist.
// For files and symlinks this is atomic (a hard link to the new name, then
// removal of the old one); for directories, and on file systems without hard
// links, it is a check followed by a rename, so a file created at to in
// between may be replaced. With overwrite an existing file or symlink at to
// is replaced atomically; a directory at to is never replaced and fails with
// fs.ErrExist.
//
// Moving "/" or onto "/" fails with an error matching fs.ErrPermission, and
// moving a directory below itself with one matching fs.ErrInvalid. Renaming a
// path to itself succeeds with overwrite and fails with fs.ErrExist without.
// Errors name from if they concern the source, else to.
func (j *Jail) Rename(from, to string, overwrite bool) error {
	const op = "rename"
	fromRel, err := rootRel(from)
	if err != nil {
		return pathError(op, from, err)
	}
	toRel, err := rootRel(to)
	if err != nil {
		return pathError(op, to, err)
	}
	switch {
	case from == "/":
		return pathError(op, from, errHomeDir)
	case to == "/":
		return pathError(op, to, errHomeDir)
	}
	fi, err := j.root.Lstat(fromRel)
	if err != nil {
		return pathError(op, from, err)
	}
	switch {
	case fi.IsDir() && strings.HasPrefix(to, from+"/"):
		// Both are resolved, so this compares whole components. It only
		// gives a clear error early (the kernel says EINVAL, also through
		// symlinks); containment is os.Root's job.
		return pathError(op, to, errIntoSelf)
	case from == to && overwrite:
		return nil
	case from == to:
		return pathError(op, to, syscall.EEXIST)
	case overwrite:
		return pathError(op, to, j.root.Rename(fromRel, toRel))
	}
	return j.moveNoClobber(op, from, fromRel, to, toRel, fi.IsDir())
}

// moveNoClobber moves fromRel to toRel unless toRel exists. For files it
// links and then unlinks, which fails atomically with EEXIST; directories,
// and file systems that refuse the link, get a check followed by a rename.
func (j *Jail) moveNoClobber(op, from, fromRel, to, toRel string, isDir bool) error {
	if !isDir {
		err := j.root.Link(fromRel, toRel)
		switch {
		case err == nil:
			if err := j.root.Remove(fromRel); err != nil {
				// Undo the link so that an error means nothing moved.
				_ = j.root.Remove(toRel)
				return pathError(op, from, err)
			}
			return nil
		case !linkUnsupported(err):
			return pathError(op, to, err)
		}
	}
	switch _, err := j.root.Lstat(toRel); {
	case err == nil:
		return pathError(op, to, syscall.EEXIST)
	case !errors.Is(err, fs.ErrNotExist):
		return pathError(op, to, err)
	}
	return pathError(op, to, j.root.Rename(fromRel, toRel))
}

// linkUnsupported reports whether a Link error means hard links can't be used
// here (directories, cross-device mounts, file systems without links, link
// count limits), as opposed to a real failure such as EEXIST.
func linkUnsupported(err error) bool {
	for _, e := range []error{syscall.EXDEV, syscall.EPERM, syscall.ENOTSUP, syscall.EOPNOTSUPP, syscall.EMLINK} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Open opens the regular file at vpath for reading and returns it with its
// information. The caller closes the file. A directory fails with an error
// matching both ErrNotRegular and syscall.EISDIR; FIFOs, devices and sockets
// with ErrNotRegular, without blocking. The returned file's Name is vpath, so
// errors from its methods carry the virtual path too (on Unix).
func (j *Jail) Open(vpath string) (*os.File, fs.FileInfo, error) {
	const op = "open"
	rel, err := rootRel(vpath)
	if err != nil {
		return nil, nil, pathError(op, vpath, err)
	}
	// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
	f, err := j.root.OpenFile(rel, openFileFlags, 0)
	if err != nil {
		return nil, nil, pathError(op, vpath, err)
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
	case fi.IsDir():
		err = errIsDir
	case !fi.Mode().IsRegular():
		err = ErrNotRegular
	}
	if err != nil {
		f.Close()
		return nil, nil, pathError(op, vpath, err)
	}
	if f, err = withName(f, vpath); err != nil {
		return nil, nil, pathError(op, vpath, err)
	}
	return f, fi, nil
}

// CreateTemp creates a new empty file, mode 0o600, in the directory dirVpath,
// named ReservedPrefix+"tmp-" and 16 random hex digits, and opens it for
// reading and writing. It returns the file, whose Name is tmpVpath (on Unix),
// and its virtual path for Commit or RemoveTemp. The caller closes the file
// and, unless Commit succeeds, removes it with RemoveTemp.
func (j *Jail) CreateTemp(dirVpath string) (f *os.File, tmpVpath string, err error) {
	const op = "createtemp"
	if _, err := rootRel(dirVpath); err != nil {
		return nil, "", pathError(op, dirVpath, err)
	}
	// A clash needs equal 64-bit random names; retry a few times anyway.
	for range 3 {
		var b [tempHexLen / 2]byte
		_, _ = rand.Read(b[:]) // never fails: it crashes the program instead
		tmpVpath = childVpath(dirVpath, tempPrefix+hex.EncodeToString(b[:]))
		rel, err := tempRel(tmpVpath)
		if err != nil {
			return nil, "", pathError(op, dirVpath, err)
		}
		f, err := j.root.OpenFile(rel, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", pathError(op, dirVpath, err)
		}
		if f, err = withName(f, tmpVpath); err != nil {
			_ = j.root.Remove(rel)
			return nil, "", pathError(op, dirVpath, err)
		}
		return f, tmpVpath, nil
	}
	return nil, "", pathError(op, dirVpath, syscall.EEXIST)
}

// Commit publishes the temp file tmpVpath from CreateTemp at vpath: it sets
// the modification time to mtime unless mtime is zero, sets FileMode(0), and
// moves the file into place. With overwrite an existing file or symlink at
// vpath is replaced atomically, and a directory fails with syscall.EISDIR.
// Without overwrite an existing vpath fails with fs.ErrExist, atomically as
// in Rename. The caller closes the file first (after Sync). On error the temp
// file is left in place for RemoveTemp.
func (j *Jail) Commit(tmpVpath, vpath string, overwrite bool, mtime time.Time) error {
	const op = "commit"
	tmpRel, err := tempRel(tmpVpath)
	if err != nil {
		return pathError(op, tmpVpath, err)
	}
	return j.publish(op, tmpVpath, tmpRel, vpath, overwrite, mtime, FileMode(0))
}

// publish moves the server's own file srcRel (a temp file or a partial
// upload) to vpath with mode, as Commit describes.
func (j *Jail) publish(op, srcVpath, srcRel, vpath string, overwrite bool, mtime time.Time, mode fs.FileMode) error {
	if _, err := rootRel(vpath); err != nil {
		return pathError(op, vpath, err)
	}
	if !mtime.IsZero() {
		// A zero atime leaves the access time alone.
		if err := j.root.Chtimes(srcRel, time.Time{}, mtime); err != nil {
			return pathError(op, srcVpath, err)
		}
	}
	if err := j.root.Chmod(srcRel, mode); err != nil {
		return pathError(op, srcVpath, err)
	}
	return j.move(op, srcVpath, srcRel, vpath, overwrite)
}

// move is the last step of publish: the server's own file srcRel goes to
// vpath, atomically replacing a file only with overwrite.
func (j *Jail) move(op, srcVpath, srcRel, vpath string, overwrite bool) error {
	rel, err := rootRel(vpath)
	if err != nil {
		return pathError(op, vpath, err)
	}
	if !overwrite {
		return j.moveNoClobber(op, srcVpath, srcRel, vpath, rel, false)
	}
	switch fi, err := j.root.Lstat(rel); {
	case err == nil && fi.IsDir():
		return pathError(op, vpath, syscall.EISDIR)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return pathError(op, vpath, err)
	}
	err = j.root.Rename(srcRel, rel)
	if errors.Is(err, syscall.EEXIST) {
		// os.Root refuses to replace a directory, which appeared since Lstat.
		err = syscall.EISDIR
	}
	return pathError(op, vpath, err)
}

// RemoveTemp removes a temp file created by CreateTemp. It is the only method
// that accepts a reserved name, and only one of CreateTemp's form as the last
// component of tmpVpath.
func (j *Jail) RemoveTemp(tmpVpath string) error {
	const op = "removetemp"
	rel, err := tempRel(tmpVpath)
	if err != nil {
		return pathError(op, tmpVpath, err)
	}
	fi, err := j.root.Lstat(rel)
	if err != nil {
		return pathError(op, tmpVpath, err)
	}
	if !fi.Mode().IsRegular() {
		return pathError(op, tmpVpath, ErrNotRegular)
	}
	return pathError(op, tmpVpath, j.root.Remove(rel))
}

// Usage returns the total size in bytes of all regular files below the home,
// including temp files, for quota checks. Symlinks are not followed; a file
// with several hard links counts each time. Directories removed or replaced
// during the walk are skipped.
func (j *Jail) Usage() (int64, error) {
	const op = "usage"
	var total int64
	dirs := []string{"."} // root-relative names still to list
	for len(dirs) > 0 {
		dir := dirs[len(dirs)-1]
		dirs = dirs[:len(dirs)-1]
		sub, size, err := j.dirUsage(dir)
		if err != nil {
			err = pathError(op, relVpath(dir), err)
			// A directory removed or replaced during the walk is no longer
			// part of the tree.
			if dir != "." && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, ErrEscapes)) {
				continue
			}
			return 0, err
		}
		total += size
		dirs = append(dirs, sub...)
	}
	return total, nil
}

// dirUsage lists the root-relative directory dir and returns its
// subdirectories and the total size of its regular files.
func (j *Jail) dirUsage(dir string) (subdirs []string, size int64, err error) {
	f, err := j.root.OpenFile(dir, openDirFlags, 0)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	for {
		infos, err := f.Readdir(1024)
		for _, fi := range infos {
			switch {
			case fi.Mode().IsRegular() && !strings.HasPrefix(fi.Name(), metaPrefix):
				// Partial-upload journals are the server's bookkeeping,
				// not the user's bytes.
				size += fi.Size()
			case fi.IsDir():
				subdirs = append(subdirs, joinRel(dir, fi.Name()))
			}
		}
		if err == io.EOF {
			return subdirs, size, nil
		}
		if err != nil {
			return nil, 0, err
		}
	}
}

// joinRel appends a directory entry name, as read from disk and so a single
// component, to a root-relative name. The result is only opened via os.Root.
func joinRel(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + string(os.PathSeparator) + name
}

// relVpath turns a root-relative name back into a virtual path for errors.
func relVpath(rel string) string {
	if rel == "." {
		return "/"
	}
	return "/" + strings.ReplaceAll(rel, string(os.PathSeparator), "/")
}
