package userdb

import (
	"errors"
	"fmt"
)

// MaxNameLen is the longest user name, in bytes, that ValidName accepts.
const MaxNameLen = 32

// ErrInvalidName is returned (wrapped) for a user name that ValidName
// rejects.
var ErrInvalidName = errors.New("invalid user name")

// ValidName reports whether name is an acceptable user name: 1 to MaxNameLen
// bytes matching ^[a-z_][a-z0-9_.-]*$, like a portable Unix user name. Names
// may end up in paths (home directories) and logs, so the set is kept to
// characters that are inert in both; "." and ".." are never valid. The error
// wraps ErrInvalidName.
func ValidName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidName)
	case len(name) > MaxNameLen:
		// Don't echo an arbitrarily long string into an error message.
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidName, MaxNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("%w %q", ErrInvalidName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c == '_'
		if i > 0 {
			ok = ok || c >= '0' && c <= '9' || c == '.' || c == '-'
		}
		if !ok {
			return fmt.Errorf("%w %q: must match [a-z_][a-z0-9_.-]*", ErrInvalidName, name)
		}
	}
	return nil
}
