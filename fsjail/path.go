package fsjail

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ReservedPrefix starts the names the server uses for its own files, such as
// upload temp files. Resolve refuses any path component with this prefix and
// ReadDir hides such entries, so clients can neither see nor touch them.
const ReservedPrefix = ".qftp-"

const (
	maxPathLen = 4096 // bytes, for a client path and for a resolved virtual path
	maxNameLen = 255  // bytes per component, the common file system limit

	tempPrefix  = ReservedPrefix + "tmp-"
	tempHexLen  = 16 // hex digits after tempPrefix, 64 random bits
	tempNameLen = len(tempPrefix) + tempHexLen
)

// Resolve joins the client path p to cwd and returns the cleaned absolute
// virtual path: "/" or "/a/b", never with a trailing slash. The home directory
// is "/". cwd must itself be a resolved virtual path (an output of Resolve).
//
// An absolute p starts from "/" and ignores cwd. Empty and "." components are
// skipped and ".." removes the previous one; a ".." above "/" fails with an
// error wrapping ErrEscapes. A p that is empty, longer than 4096 bytes, not
// valid UTF-8, contains a NUL byte or a backslash, or has a component longer
// than 255 bytes or starting with ReservedPrefix fails with an error wrapping
// ErrInvalidPath, as does a result longer than 4096 bytes.
//
// Errors are *fs.PathError with Op "resolve" and Path p (quoted if it is not
// printable). Resolve is a pure string function: it does no I/O, so the result
// may still name a symlink that leaves the home; Jail methods refuse those.
func Resolve(cwd, p string) (string, error) {
	if err := checkVpath(cwd); err != nil {
		return "", pathError("resolve", cwd, err)
	}
	out, err := resolve(cwd, p)
	if err != nil {
		return "", pathError("resolve", p, err)
	}
	return out, nil
}

// resolve is Resolve without the check of cwd and without the *fs.PathError.
func resolve(cwd, p string) (string, error) {
	if err := checkChars(p); err != nil {
		return "", err
	}
	var parts []string
	if !strings.HasPrefix(p, "/") {
		parts = strings.Split(cwd, "/")[1:]
		if cwd == "/" {
			parts = parts[:0]
		}
	}
	for elem := range strings.SplitSeq(p, "/") {
		switch elem {
		case "", ".":
			continue
		case "..":
			if len(parts) == 0 {
				return "", ErrEscapes
			}
			parts = parts[:len(parts)-1]
			continue
		}
		// Checked even if a later ".." drops elem, so a reserved or
		// oversized name is refused wherever it appears.
		if err := checkName(elem); err != nil {
			return "", err
		}
		parts = append(parts, elem)
	}
	out := "/" + strings.Join(parts, "/")
	if len(out) > maxPathLen {
		return "", invalid("resolved path longer than %d bytes", maxPathLen)
	}
	return out, nil
}

// checkChars applies the whole-path checks of Resolve.
func checkChars(p string) error {
	switch {
	case p == "":
		return invalid("empty")
	case len(p) > maxPathLen:
		return invalid("longer than %d bytes", maxPathLen)
	case strings.IndexByte(p, 0) >= 0:
		return invalid("contains a NUL byte")
	case strings.IndexByte(p, '\\') >= 0:
		return invalid("contains a backslash")
	case !utf8.ValidString(p):
		return invalid("not valid UTF-8")
	}
	return nil
}

// checkName applies the per-component checks of Resolve to name, which
// contains no slash.
func checkName(name string) error {
	switch {
	case len(name) > maxNameLen:
		return invalid("a name longer than %d bytes", maxNameLen)
	case strings.HasPrefix(name, ReservedPrefix):
		return invalid("%q: names starting with %q are reserved for qftp's own files", name, ReservedPrefix)
	}
	return nil
}

// clientVisible reports whether a directory entry name could be addressed by
// a client, i.e. whether Resolve accepts it as a component.
func clientVisible(name string) bool {
	return checkChars(name) == nil && checkName(name) == nil
}

// checkVpath re-validates a virtual path handed to a Jail method: it must be
// exactly what Resolve("/", vpath) returns. This is defense in depth; the
// session resolves every client path before calling the jail.
func checkVpath(vpath string) error {
	out, err := resolve("/", vpath)
	if err != nil {
		return err
	}
	if out != vpath {
		return invalid("not a resolved virtual path")
	}
	return nil
}

// rootRel checks vpath and maps it to the name os.Root expects: "." for the
// home, else the path without its leading slash in host syntax.
func rootRel(vpath string) (string, error) {
	if err := checkVpath(vpath); err != nil {
		return "", err
	}
	return localize(vpath)
}

// tempRel is rootRel for a temp file created by CreateTemp: the directory part
// must be a resolved virtual path and the last component a temp name.
func tempRel(tmpVpath string) (string, error) {
	dir, name := splitVpath(tmpVpath)
	if dir == "" || !isTempName(name) {
		return "", invalid("not a temp file path")
	}
	if err := checkVpath(dir); err != nil {
		return "", err
	}
	return localize(tmpVpath)
}

// localize turns a checked virtual path into a root-relative host name.
func localize(vpath string) (string, error) {
	if vpath == "/" {
		return ".", nil
	}
	rel, err := filepath.Localize(vpath[1:])
	if err != nil {
		// For example a Windows reserved name such as "NUL".
		return "", invalid("not representable on the server")
	}
	return rel, nil
}

// splitVpath splits a virtual path into its parent and last component; dir is
// "" if vpath is not absolute.
func splitVpath(vpath string) (dir, name string) {
	i := strings.LastIndexByte(vpath, '/')
	switch {
	case i < 0:
		return "", vpath
	case i == 0:
		return "/", vpath[1:]
	}
	return vpath[:i], vpath[i+1:]
}

// childVpath returns the virtual path of name inside the resolved directory
// dir. name is generated by the server.
func childVpath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// isTempName reports whether name has the form CreateTemp generates.
func isTempName(name string) bool {
	if len(name) != tempNameLen || !strings.HasPrefix(name, tempPrefix) {
		return false
	}
	for _, c := range []byte(name[len(tempPrefix):]) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// invalid returns an error wrapping ErrInvalidPath with the reason.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidPath, fmt.Sprintf(format, args...))
}

// printable returns p for an error message: unchanged if it is short, valid
// UTF-8 and printable, else quoted and cut to a bounded length, so that hostile
// input can't put control characters or kilobytes of junk into logs and replies.
func printable(p string) string {
	const maxShown = 256
	if len(p) <= maxPathLen && utf8.ValidString(p) && !strings.ContainsFunc(p, isUnprintable) {
		return p
	}
	if len(p) > maxShown {
		return strconv.Quote(p[:maxShown]) + "..."
	}
	return strconv.Quote(p)
}

func isUnprintable(r rune) bool { return !unicode.IsGraphic(r) }
