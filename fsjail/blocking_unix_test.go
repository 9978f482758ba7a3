//go:build unix

package fsjail

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestBlocking(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flags := func() int {
		n, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if flags()&unix.O_NONBLOCK == 0 {
		t.Skip("O_NONBLOCK did not stick here")
	}
	if err := Blocking(f); err != nil {
		t.Fatal(err)
	}
	if flags()&unix.O_NONBLOCK != 0 {
		t.Fatal("still O_NONBLOCK")
	}
}
