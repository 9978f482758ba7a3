package transport

import (
	"errors"
	"syscall"
)

// wsaeaddrinuse is Winsock's "address already in use" (WSAEADDRINUSE).
const wsaeaddrinuse = syscall.Errno(10048)

// addrInUse reports whether err says that an address is taken.
func addrInUse(err error) bool {
	return errors.Is(err, wsaeaddrinuse) || errors.Is(err, syscall.EADDRINUSE)
}
