//go:build unix

package transport

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestEntryOf(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]Entry{
		".":    {Name: ".", Type: TypeDir},
		"fifo": {Name: "fifo", Type: TypeFIFO, Mode: 0o640},
		"f":    {Name: "f", Type: TypeFile, Size: 3, Mode: 0o600},
	} {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		got := EntryOf(name, fi)
		if got.Type != want.Type || got.Size != want.Size || name != "." && got.Mode != want.Mode || got.Mtime != fi.ModTime().UnixNano() {
			t.Errorf("EntryOf(%s) = %+v, want %+v", name, got, want)
		}
	}
}
