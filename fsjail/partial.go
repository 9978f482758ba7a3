package fsjail

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/zeebo/blake3"
)

// Names of a partial upload's files, in the destination's directory:
// partPrefix+key holds the data at its final offsets, metaPrefix+key the
// server's journal of verified blocks. key is derived from the destination
// name, so the next upload to the same path finds them.
const (
	partPrefix = ReservedPrefix + "part-"
	metaPrefix = ReservedPrefix + "meta-"
)

// ErrBusy is returned when another open holds a partial upload: one
// upload of a file at a time, whatever path leads to it.
var ErrBusy = errors.New("another upload to this file is running")

// Partial is an upload in progress, kept across connections so that it can
// resume: Data is the file being written (at its final offsets) and Meta,
// if asked for, a journal the caller keeps. Both are open for reading and
// writing; their Names are virtual paths. Close closes them.
type Partial struct {
	Data *os.File
	Meta *os.File // nil unless opened with a journal
}

// Close closes the files.
func (p *Partial) Close() error {
	err := p.Data.Close()
	if p.Meta != nil {
		err = errors.Join(err, p.Meta.Close())
	}
	return err
}

// partialPaths returns the virtual and root-relative names of the partial
// upload's data and journal files for the destination vpath.
func partialPaths(vpath string) (dataV, dataRel, metaV, metaRel string, err error) {
	if err := checkVpath(vpath); err != nil {
		return "", "", "", "", err
	}
	dir, name := splitVpath(vpath)
	if dir == "" || name == "" {
		return "", "", "", "", invalid("no file name")
	}
	sum := blake3.Sum256([]byte(name))
	key := hexString(sum[:16])
	dataV, metaV = childVpath(dir, partPrefix+key), childVpath(dir, metaPrefix+key)
	if dataRel, err = localize(dataV); err != nil {
		return "", "", "", "", err
	}
	if metaRel, err = localize(metaV); err != nil {
		return "", "", "", "", err
	}
	return dataV, dataRel, metaV, metaRel, nil
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

// OpenPartial opens the partial upload for destination vpath, creating its
// files (mode 0o600) if they do not exist; the journal only if journal is
// set (small uploads, never resumed, skip it: creating a file is most of
// their cost; such an upload starts from empty, so the journal of an
// earlier one to the same name goes). created reports whether the data
// file was new.
func (j *Jail) OpenPartial(vpath string, journal bool) (p *Partial, created bool, err error) {
	const op = "openpartial"
	dataV, dataRel, metaV, metaRel, err := partialPaths(vpath)
	if err != nil {
		return nil, false, pathError(op, vpath, err)
	}
	var df *os.File
	for try := 1; ; try++ {
		_, err := j.root.Lstat(dataRel)
		created = errors.Is(err, fs.ErrNotExist)
		if df, err = j.root.OpenFile(dataRel, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
			return nil, false, pathError(op, vpath, err)
		}
		if df, err = regularNamed(df, dataV); err != nil {
			return nil, false, pathError(op, vpath, err)
		}
		if err := TryLock(df); err != nil {
			_ = df.Close()
			return nil, false, pathError(op, vpath, err)
		}
		// An idle partial may be removed (RemoveLeftovers, Sweep) between
		// the open and the lock: then the lock is on a file that no name
		// leads to any more, and it is opened anew.
		if j.stillNamed(df, dataRel) {
			break
		}
		_ = df.Close()
		if try == 3 {
			return nil, false, pathError(op, vpath, ErrBusy)
		}
	}
	if !journal {
		if !created {
			_ = j.root.Remove(metaRel)
		}
		return &Partial{Data: df}, created, nil
	}
	mf, err := j.root.OpenFile(metaRel, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		_ = df.Close()
		return nil, false, pathError(op, vpath, err)
	}
	if mf, err = regularNamed(mf, metaV); err != nil {
		_ = df.Close()
		return nil, false, pathError(op, vpath, err)
	}
	return &Partial{Data: df, Meta: mf}, created, nil
}

// stillNamed reports whether rel names the open file f.
func (j *Jail) stillNamed(f *os.File, rel string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := j.root.Lstat(rel)
	return err == nil && os.SameFile(a, b)
}

// OpenExistingPartial opens the partial upload for vpath and its journal
// without creating anything; if either is missing the error matches
// fs.ErrNotExist.
func (j *Jail) OpenExistingPartial(vpath string) (*Partial, error) {
	const op = "openpartial"
	dataV, dataRel, metaV, metaRel, err := partialPaths(vpath)
	if err != nil {
		return nil, pathError(op, vpath, err)
	}
	df, err := j.root.OpenFile(dataRel, os.O_RDWR, 0)
	if err != nil {
		return nil, pathError(op, vpath, err)
	}
	if df, err = regularNamed(df, dataV); err != nil {
		return nil, pathError(op, vpath, err)
	}
	if err := TryLock(df); err != nil {
		_ = df.Close()
		return nil, pathError(op, vpath, err)
	}
	mf, err := j.root.OpenFile(metaRel, os.O_RDWR, 0)
	if err != nil {
		_ = df.Close()
		return nil, pathError(op, vpath, err)
	}
	if mf, err = regularNamed(mf, metaV); err != nil {
		_ = df.Close()
		return nil, pathError(op, vpath, err)
	}
	return &Partial{Data: df, Meta: mf}, nil
}

// regularNamed checks that f is a regular file (not a FIFO or device
// planted under a reserved name) and renames it to its virtual path.
func regularNamed(f *os.File, vpath string) (*os.File, error) {
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, ErrNotRegular
	}
	return withName(f, vpath)
}

// PartialSize returns the size of the partial upload's data for vpath, or
// an error matching fs.ErrNotExist if there is none.
func (j *Jail) PartialSize(vpath string) (int64, error) {
	_, dataRel, _, _, err := partialPaths(vpath)
	if err != nil {
		return 0, pathError("partialsize", vpath, err)
	}
	fi, err := j.root.Lstat(dataRel)
	if err != nil {
		return 0, pathError("partialsize", vpath, err)
	}
	return fi.Size(), nil
}

// RemovePartial removes the partial upload for vpath, if any, and returns
// the size of the data removed.
func (j *Jail) RemovePartial(vpath string) (int64, error) {
	const op = "removepartial"
	_, dataRel, _, metaRel, err := partialPaths(vpath)
	if err != nil {
		return 0, pathError(op, vpath, err)
	}
	var size int64
	if fi, err := j.root.Lstat(dataRel); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	errData := j.root.Remove(dataRel)
	_ = j.root.Remove(metaRel) // a journal without data is never used
	switch {
	case errData == nil:
		return size, nil
	case errors.Is(errData, fs.ErrNotExist):
		return 0, nil
	}
	return 0, pathError(op, vpath, errData)
}

// Finish gives the partial's data its final mode through the open file,
// before CommitPartial. It reports whether it could (on Unix); if not,
// CommitPartial sets it.
func (p *Partial) Finish(mode fs.FileMode) (bool, error) {
	return finishFile(p.Data, mode)
}

// CommitPartial publishes the partial upload's data at vpath as Commit does
// for a temp file, with mode, then removes its journal if it had one.
// finished says Finish already set the mode. The caller closes the files
// first.
func (j *Jail) CommitPartial(vpath string, overwrite, finished, journal bool, mtime time.Time, mode fs.FileMode) error {
	const op = "commit"
	dataV, dataRel, _, metaRel, err := partialPaths(vpath)
	if err != nil {
		return pathError(op, vpath, err)
	}
	if finished {
		if !mtime.IsZero() {
			if err := j.root.Chtimes(dataRel, time.Time{}, mtime); err != nil {
				return pathError(op, dataV, err)
			}
		}
		err = j.move(op, dataV, dataRel, vpath, overwrite)
	} else {
		err = j.publish(op, dataV, dataRel, vpath, overwrite, mtime, mode)
	}
	if err != nil {
		return err
	}
	// The file is published; a journal left behind is only clutter, which
	// Sweep removes in time.
	if journal {
		_ = j.root.Remove(metaRel)
	}
	return nil
}

// sweepOne removes one of the server's files found old by Sweep, unless
// an upload holds it, and returns the user bytes freed.
func (j *Jail) sweepOne(rel string, fi fs.FileInfo) int64 {
	if strings.HasPrefix(fi.Name(), metaPrefix) {
		_ = j.root.Remove(rel)
		return 0
	}
	n, _ := j.removeIdle(rel, fi)
	return n
}

// RemoveLeftovers removes the partial uploads (and their journals) found
// directly in the directory vpath that no upload holds and that nothing
// wrote to for idle, and returns the bytes of data it freed. A directory
// that looks empty to its user (ReadDir hides these files) can then be
// removed. (A striped upload holds its partial only while a piece runs,
// so a recent write is taken as an upload between pieces.) Temp files are
// left to Sweep: one may be a commit under way.
func (j *Jail) RemoveLeftovers(vpath string, idle time.Duration) (freed int64, err error) {
	const op = "removeleftovers"
	rel, err := rootRel(vpath)
	if err != nil {
		return 0, pathError(op, vpath, err)
	}
	f, err := j.root.OpenFile(rel, openDirFlags, 0)
	if err != nil {
		return 0, pathError(op, vpath, err)
	}
	infos, err := f.Readdir(-1)
	_ = f.Close()
	if err != nil {
		return 0, pathError(op, vpath, err)
	}
	held := map[string]bool{} // keys of partials an upload holds
	for _, fi := range infos {
		if key, ok := strings.CutPrefix(fi.Name(), partPrefix); ok {
			if time.Since(fi.ModTime()) < idle {
				held[key] = true
			} else if n, ok := j.removeIdle(joinRel(rel, fi.Name()), fi); ok {
				freed += n
			} else {
				held[key] = true
			}
		}
	}
	for _, fi := range infos {
		if key, ok := strings.CutPrefix(fi.Name(), metaPrefix); ok && !held[key] {
			if _, err := j.root.Lstat(joinRel(rel, partPrefix+key)); err == nil {
				continue // an upload began again meanwhile
			}
			_ = j.root.Remove(joinRel(rel, fi.Name()))
		}
	}
	return freed, nil
}

// removeIdle removes the partial data file rel (listed as fi) unless an
// upload holds it or it changed since listed; it reports whether it did,
// and the bytes freed.
func (j *Jail) removeIdle(rel string, fi fs.FileInfo) (int64, bool) {
	if !fi.Mode().IsRegular() {
		return 0, j.root.Remove(rel) == nil
	}
	f, err := j.root.OpenFile(rel, os.O_RDWR, 0)
	if err != nil {
		return 0, errors.Is(err, fs.ErrNotExist)
	}
	defer f.Close()
	// An upload resuming right now holds the lock: leave it.
	if TryLock(f) != nil {
		return 0, false
	}
	now, err := f.Stat()
	if err != nil || !now.ModTime().Before(fi.ModTime().Add(time.Second)) {
		return 0, false
	}
	if j.root.Remove(rel) != nil {
		return 0, false
	}
	return now.Size(), true
}

// Sweep removes the server's own files (temp files, partial uploads and
// their journals) last modified before t, and returns how many bytes of
// user data (temp and partial data, not journals) it freed.
func (j *Jail) Sweep(before time.Time) (freed int64, err error) {
	dirs := []string{"."}
	for len(dirs) > 0 {
		dir := dirs[len(dirs)-1]
		dirs = dirs[:len(dirs)-1]
		f, err := j.root.OpenFile(dir, openDirFlags, 0)
		if err != nil {
			if dir != "." {
				continue // gone or replaced during the sweep
			}
			return freed, pathError("sweep", "/", err)
		}
		for {
			infos, rerr := f.Readdir(1024)
			for _, fi := range infos {
				name := fi.Name()
				switch {
				case fi.IsDir():
					dirs = append(dirs, joinRel(dir, name))
				case strings.HasPrefix(name, ReservedPrefix) && fi.ModTime().Before(before):
					freed += j.sweepOne(joinRel(dir, name), fi)
				}
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				_ = f.Close()
				return freed, pathError("sweep", relVpath(dir), rerr)
			}
		}
		_ = f.Close()
	}
	return freed, nil
}
