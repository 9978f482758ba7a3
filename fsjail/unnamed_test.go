package fsjail_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/qftp/qftp/fsjail"
)

// An unnamed file has no name in its directory until Link gives it one,
// with the times Chtimes set; Link never replaces a file.
func TestUnnamed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f, err := fsjail.CreateUnnamed(dir, 0o600)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("no unnamed files here:", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("data"); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("directory holds %v before the link", ents)
	}
	mt := time.Unix(1_600_000_000, 123456789)
	if err := fsjail.Chtimes(f, mt, mt); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "named")
	if err := fsjail.Link(f, name); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(name); err != nil || string(b) != "data" {
		t.Fatalf("linked file: %q, %v", b, err)
	}
	if fi, err := os.Stat(name); err != nil || !fi.ModTime().Equal(mt) {
		t.Fatalf("mtime: %v, %v", fi, err)
	}
	if err := fsjail.Link(f, name); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("link over an existing file: %v", err)
	}
	if _, err := fsjail.CreateUnnamed(filepath.Join(dir, "missing"), 0o600); err == nil || errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("unnamed file in a missing directory: %v", err)
	}
}
