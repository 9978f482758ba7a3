package session

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"syscall"
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

// report logs at the level the failure deserves, with the virtual path the
// error names even where the client is not told it.
func TestReportLogs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	c := &conn{ulog: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&fs.PathError{Op: "write", Path: "/d/.qftp-part-00ff", Err: syscall.EIO}, `level=ERROR msg="put failed" vpath=/d/.qftp-part-00ff`},
		{fmt.Errorf("get user bob: %w", context.Canceled), `level=DEBUG msg="put canceled"`},
		{userError(transport.CodeQuota, "/f", "quota exceeded: need 2 MiB, 1 MiB free"), `level=INFO msg="put refused" vpath=/f`},
		{&fs.PathError{Op: "open", Path: "/nope", Err: fs.ErrNotExist}, `level=DEBUG msg="put refused" vpath=/nope`},
		// Another stream of the upload said it already.
		{alreadyReported{userError(transport.CodeQuota, "/f", "quota exceeded: need 2 MiB, 1 MiB free")}, `level=DEBUG msg="put refused with its upload" vpath=/f`},
	} {
		buf.Reset()
		we := c.report("put", tc.err)
		if !strings.Contains(buf.String(), tc.want) {
			t.Errorf("%v: logged %q, want %q", tc.err, buf.String(), tc.want)
		}
		if strings.Contains(we.Path, ".qftp-") {
			t.Errorf("%v: the client is told %q", tc.err, we.Path)
		}
	}
}
