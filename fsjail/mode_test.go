package fsjail

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestFileMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		perm  uint32
		umask fs.FileMode
		want  fs.FileMode
	}{
		{0, 0o022, 0o644},          // not known: as a new file
		{0, 0o077, 0o600},          // a private umask
		{0o755, 0o022, 0o755},      // a script stays executable
		{0o755, 0o077, 0o700},      // but the umask still counts
		{0o600, 0o022, 0o600},      // a private file stays private
		{0o444, 0o022, 0o644},      // the owner may always write
		{0o000, 0o000, 0o666},      // 0 means not known
		{0o100, 0o022, 0o700},      // and read
		{0o4755, 0o022, 0o755},     // no set-id bits (they are not perm bits)
		{0xffffffff, 0o002, 0o775}, // only permission bits
	} {
		if got := fileMode(tc.perm, tc.umask); got != tc.want {
			t.Errorf("fileMode(%#o, umask %#o) = %#o, want %#o", tc.perm, tc.umask, got, tc.want)
		}
	}
}

func TestUploadMode(t *testing.T) {
	t.Parallel()
	for _, perm := range []uint32{0, 0o777, 0o666, 0o755, 0o600} {
		if m := UploadMode(perm); m&0o022 != 0 || m != FileMode(perm)&^0o022 {
			t.Errorf("UploadMode(%#o) = %#o", perm, m)
		}
	}
}

// The process's umask is what a file created now gets.
func TestUmask(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("no umask")
	}
	p := filepath.Join(t.TempDir(), "f")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o777)
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := 0o777 &^ umask; fi.Mode().Perm() != want {
		t.Fatalf("umask %#o: a new file got %#o, want %#o", umask, fi.Mode().Perm(), want)
	}
}
