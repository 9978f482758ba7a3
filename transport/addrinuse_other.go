//go:build !windows

package transport

import (
	"errors"
	"syscall"
)

// addrInUse reports whether err says that an address is taken.
func addrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }
