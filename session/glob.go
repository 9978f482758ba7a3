package session

import (
	"errors"
	"io/fs"
	"path"
	"sort"
	"strings"
	"syscall"

	"github.com/qftp/qftp/fsjail"
	"github.com/qftp/qftp/transport"
)

// maxGlobMatches bounds what one glob may return (and the work it does).
const maxGlobMatches = 100_000

// hasMeta reports whether a path component has glob metacharacters.
func hasMeta(s string) bool { return strings.ContainsAny(s, "*?[") }

// glob expands pattern (already resolved to a virtual path, so without
// "." or "..") component by component inside the jail, as a shell does:
// "*" and "?" do not match a leading dot. It returns the sorted virtual
// paths that exist; none is not an error. It also counts the matches that
// no client can name (see fsjail.Jail.ListDir): files at the end, and
// directories before it, each of which may hold matches (glob cannot look
// inside: no virtual path leads there). dirsOnly (a pattern that ended
// in a slash) makes the last component match directories only, and links
// that may lead to one (the caller follows them).
func glob(j *fsjail.Jail, pattern string, dirsOnly bool) (matches []string, unnamable int, err error) {
	comps := strings.Split(strings.TrimPrefix(pattern, "/"), "/")
	cur := []string{"/"}
	for i, comp := range comps {
		if comp == "" {
			continue
		}
		last := i == len(comps)-1
		var next []string
		for _, dir := range cur {
			if !hasMeta(comp) {
				p := path.Join(dir, comp)
				if _, err := j.Lstat(p); err == nil {
					next = append(next, p)
				}
				continue
			}
			if _, err := path.Match(comp, ""); err != nil {
				return nil, 0, userError(transport.CodeInvalid, pattern, "bad pattern: "+err.Error())
			}
			infos, hidden, err := j.ListDir(dir)
			if err != nil {
				// Not a directory, gone, or outside: nothing matches there.
				if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, fsjail.ErrEscapes) || isNotDir(err) {
					continue
				}
				return nil, 0, err
			}
			// What a match must be: a directory (or a link, maybe to
			// one) to go on from; a file (or a link) at the end.
			matches := func(fi fs.FileInfo, forMatch bool) bool {
				name := fi.Name()
				if strings.HasPrefix(name, ".") && !strings.HasPrefix(comp, ".") {
					return false
				}
				if ok, _ := path.Match(comp, name); !ok {
					return false
				}
				if !last || dirsOnly {
					return fi.IsDir() || fi.Mode()&fs.ModeSymlink != 0
				}
				return forMatch || !fi.IsDir()
			}
			for _, fi := range hidden {
				if matches(fi, false) {
					unnamable++
				}
			}
			for _, fi := range infos {
				name := fi.Name()
				if !matches(fi, true) {
					continue
				}
				next = append(next, path.Join(dir, name))
				if len(next) > maxGlobMatches {
					return nil, 0, userError(transport.CodeInvalid, pattern, "pattern matches too many files")
				}
			}
		}
		cur = next
		if len(cur) == 0 {
			break
		}
	}
	if len(cur) == 1 && cur[0] == "/" && strings.Trim(pattern, "/") != "" {
		return nil, unnamable, nil
	}
	sort.Strings(cur)
	return cur, unnamable, nil
}

func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }
