package fsjail_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/qftp/qftp/fsjail"
)

func TestPreallocate(t *testing.T) {
	t.Parallel()
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("head")); err != nil {
		t.Fatal(err)
	}
	allocated := func() int64 {
		var st syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks * 512
	}
	const n = 8 << 20
	if err := fsjail.Preallocate(f, 0, n); err != nil {
		t.Fatal(err)
	}
	if got := allocated(); got < n {
		t.Skipf("this file system did not preallocate (%d bytes allocated)", got)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != 4 {
		t.Fatalf("size after preallocating: %v, %v", fi, err)
	}
	// What close does with an upload's unused reservation.
	if err := f.Truncate(4); err != nil {
		t.Fatal(err)
	}
	if got := allocated(); got >= n {
		t.Fatalf("truncate kept %d bytes allocated", got)
	}
	if err := fsjail.Preallocate(f, 0, 0); err != nil {
		t.Fatal(err)
	}
}
