package session

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"syscall"

	"github.com/qftp/qftp/fsjail"
	"github.com/qftp/qftp/session/userdb"
	"github.com/qftp/qftp/transport"
)

// wireError maps an error from fsjail, the user store or the session itself
// to the status sent to the client. It is the one place where that mapping
// happens. Messages name virtual paths only: errors from fsjail carry them,
// and any other cause is reduced to a generic text (and logged in full by
// the caller), so that a host path never reaches a client.
func wireError(err error) *transport.Error {
	if err == nil {
		return nil
	}
	var we *transport.Error
	if errors.As(err, &we) {
		return we
	}
	var path string
	var pe *fs.PathError
	if errors.As(err, &pe) && !strings.Contains(pe.Path, "/"+fsjail.ReservedPrefix) {
		// (Not the name of one of the server's own files, such as a
		// partial upload's: the client knows which file it meant.)
		path = pe.Path
	}
	e := &transport.Error{Path: path}
	switch {
	case errors.Is(err, userdb.ErrNotFound): // deleted while logged in
		e.Code, e.Msg = transport.CodeAuth, "user no longer exists"
	case errors.Is(err, fsjail.ErrBusy):
		e.Code, e.Msg = transport.CodeBusy, "another upload to this file is running"
	case errors.Is(err, fsjail.ErrEscapes):
		e.Code, e.Msg = transport.CodePermission, "permission denied: path escapes home directory"
	case errors.Is(err, fsjail.ErrInvalidPath):
		e.Code, e.Msg = transport.CodeInvalidPath, invalidPathMsg(err)
	case errors.Is(err, syscall.EISDIR): // before ErrNotRegular, which a directory also matches
		e.Code, e.Msg = transport.CodeIsDir, "is a directory"
	case errors.Is(err, fsjail.ErrNotRegular):
		e.Code, e.Msg = transport.CodeInvalid, "not a regular file"
	case errors.Is(err, syscall.ENOTEMPTY): // before ErrExist, which it matches
		e.Code, e.Msg = transport.CodeNotEmpty, "directory not empty"
	case errors.Is(err, fs.ErrNotExist):
		e.Code, e.Msg = transport.CodeNotFound, "no such file or directory"
	case errors.Is(err, fs.ErrExist):
		e.Code, e.Msg = transport.CodeExists, "file exists"
	case errors.Is(err, syscall.ENOTDIR):
		e.Code, e.Msg = transport.CodeNotDir, "not a directory"
	case errors.Is(err, syscall.ELOOP):
		e.Code, e.Msg = transport.CodePermission, "permission denied: too many levels of symbolic links"
	case errors.Is(err, fs.ErrPermission):
		e.Code, e.Msg = transport.CodePermission, "permission denied"
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		e.Code, e.Msg = transport.CodeIO, "no space left on server"
	case errors.Is(err, syscall.ENAMETOOLONG):
		e.Code, e.Msg = transport.CodeInvalidPath, "file name too long"
	case errors.Is(err, syscall.EINVAL):
		e.Code, e.Msg = transport.CodeInvalid, "invalid argument"
	case errors.Is(err, errShuttingDown):
		e.Code, e.Msg = transport.CodeShutdown, "server is shutting down"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		e.Code, e.Msg = transport.CodeIO, "operation canceled"
	default:
		e.Code, e.Msg = transport.CodeIO, "I/O error on server"
	}
	return e
}

// invalidPathMsg keeps fsjail's explanation of why a path is invalid
// ("invalid path: contains a NUL byte"); fsjail builds it from the virtual
// path alone, so it names no host path.
func invalidPathMsg(err error) string {
	// Paths can be wrapped twice (the jail's, then the session's).
	for range 4 {
		var pe *fs.PathError
		if !errors.As(err, &pe) {
			break
		}
		err = pe.Err
	}
	if msg := err.Error(); strings.HasPrefix(msg, "invalid path") && len(msg) < 400 {
		return msg
	}
	return "invalid path"
}

var errShuttingDown = errors.New("server is shutting down")

// userError builds a wire error for a bad request argument.
func userError(code, path, msg string) *transport.Error {
	return &transport.Error{Code: code, Path: path, Msg: msg}
}
