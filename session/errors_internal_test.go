package session

import (
	"fmt"
	"io/fs"
	"testing"

	"github.com/qftp/qftp/session/userdb"
	"github.com/qftp/qftp/transport"
)

func TestWireErrorPaths(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path, want string
	}{
		{"/docs/a.txt", "/docs/a.txt"},
		{"/docs/.qftp-part-0123abcd", ""}, // the server's own file: not named
	} {
		we := wireError(&fs.PathError{Op: "write", Path: tc.path, Err: fs.ErrNotExist})
		if we.Path != tc.want || we.Code != transport.CodeNotFound {
			t.Errorf("wireError(%s) = %+v, want path %q, code %s", tc.path, we, tc.want, transport.CodeNotFound)
		}
	}
	// A user deleted while logged in, as their transfer finds out.
	if we := wireError(fmt.Errorf("reserve bob: %w", userdb.ErrNotFound)); we.Code != transport.CodeAuth || we.Msg != "user no longer exists" {
		t.Errorf("wireError(deleted user) = %+v", we)
	}
}
