//go:build unix

package session_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/sessiontest"
)

// A FIFO is refused at once by put, put -r and mput's PutAs, not opened:
// opening one without a writer would block past any Ctrl-C.
func TestPutFIFO(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, _ := ts.User(t, "fifi")
	fifo := filepath.Join(t.TempDir(), "ff")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	for name, put := range map[string]func() error{
		"put":   func() error { _, err := c.Put(t.Context(), fifo, "", session.TransferOptions{}); return err },
		"putas": func() error { _, err := c.PutAs(t.Context(), fifo, "/ff", session.TransferOptions{}); return err },
	} {
		done := make(chan error, 1)
		go func() { done <- put() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("%s of a FIFO: %v", name, err)
			}
		case <-time.After(20 * time.Second):
			// Stuck opening it: a writer lets it go.
			if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				_ = w.Close()
			}
			t.Fatalf("%s of a FIFO is stuck", name)
		}
	}
}
