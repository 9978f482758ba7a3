//go:build unix

package session_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/sessiontest"
)

// An upload preallocates its file a chunk at a time as its writes reach
// it, not the whole announced size at once: a client that announces a
// big file and sends little holds little of the server's disk.
func TestUploadPreallocatesAsItGoes(t *testing.T) {
	t.Parallel()
	var home string
	checked := make(chan int64, 1)
	ts := sessiontest.Start(t, func(s *session.Server) {
		session.SetPaceHook(s, func(vp string, off int64) {
			if off != 256<<10 { // the second block: the first is stored
				return
			}
			var alloc int64 = -1
			des, _ := os.ReadDir(home)
			for _, de := range des {
				if strings.HasPrefix(de.Name(), ".qftp-part-") {
					var st syscall.Stat_t
					if err := syscall.Stat(filepath.Join(home, de.Name()), &st); err == nil {
						alloc = st.Blocks * 512
					}
				}
			}
			checked <- alloc
		})
	})
	var c *session.Client
	c, home = ts.User(t, "pre")
	if err := ts.Users.SetRate(t.Context(), "pre", 1<<30); err != nil { // only for the hook
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src")
	sessiontest.WriteFile(t, src, randomBytes(t, 48*mib))
	if _, err := c.Put(t.Context(), src, "f", session.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	if alloc := <-checked; alloc < 0 || alloc > 16*mib {
		t.Fatalf("after one block of 48 MiB, the partial held %d bytes of disk", alloc)
	}
}
