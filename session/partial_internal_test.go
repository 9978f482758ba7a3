package session

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"
)

// A small download keeps its journal in memory: no journal file is
// created, and a stale one from an earlier try is removed.
func TestLocalPartialWithoutJournal(t *testing.T) {
	t.Parallel()
	local := filepath.Join(t.TempDir(), "f")
	stale, err := os.Create(local + ".qftp-part.meta")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := resetJournal(stale, journalHeader{Path: "/f", Size: 100 << 20, BS: 256 << 10}); err != nil {
		t.Fatal(err)
	}
	_ = stale.Close()
	p := &localPartial{local: local}
	defer p.close()
	if err := p.start(journalHeader{Path: "/f", Size: 100, BS: 256 << 10}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(local + ".qftp-part.meta"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("journal file: %v", err)
	}
	// Where unnamed files work, the data has no name either.
	if _, err := os.Lstat(local + ".qftp-part"); p.unnamed != errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("unnamed %v, data file: %v", p.unnamed, err)
	}
	if err := p.j.add(0, [32]byte{1}); err != nil || len(p.j.have) != 1 {
		t.Fatalf("in-memory journal: %v %v", err, p.j.have)
	}
	// A journal file already open from an earlier try is dropped too.
	r := &localPartial{local: filepath.Join(filepath.Dir(local), "h")}
	defer r.close()
	if err := r.start(journalHeader{Path: "/h", Size: 100 << 20, BS: 256 << 10}, true); err != nil {
		t.Fatal(err)
	}
	if err := r.start(journalHeader{Path: "/h", Size: 100, BS: 256 << 10}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.local + ".qftp-part.meta"); !errors.Is(err, fs.ErrNotExist) || r.meta != nil {
		t.Fatalf("journal file after a small start: %v", err)
	}
	// With a journal, the file is there.
	q := &localPartial{local: filepath.Join(filepath.Dir(local), "g")}
	defer q.close()
	if err := q.start(journalHeader{Path: "/g", Size: 100 << 20, BS: 256 << 10}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(q.local + ".qftp-part.meta"); err != nil {
		t.Fatalf("journal file: %v", err)
	}
}

func TestPartialNames(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("some", "dir")
	for _, tc := range []struct {
		base string
		cut  bool
	}{
		{"f.txt", false},
		{strings.Repeat("a", 240), false}, // 240 + ".qftp-part.meta" = 255
		{strings.Repeat("a", 241), true},
		{strings.Repeat("a", 255), true},
		{strings.Repeat("é", 127), true}, // 254 bytes of 2-byte characters
	} {
		data, meta := partialNames(filepath.Join(dir, tc.base))
		if filepath.Dir(data) != dir || meta != data+".meta" || !strings.HasSuffix(data, ".qftp-part") {
			t.Errorf("%d bytes: %q, %q", len(tc.base), data, meta)
		}
		b := filepath.Base(meta)
		if len(b) > 255 || !utf8.ValidString(b) {
			t.Errorf("%d bytes: journal name %q (%d bytes)", len(tc.base), b, len(b))
		}
		if cut := !strings.HasPrefix(b, tc.base); cut != tc.cut {
			t.Errorf("%d bytes: cut %v, want %v", len(tc.base), cut, tc.cut)
		}
	}
	// Long names alike but for their ends have partials of their own.
	a, _ := partialNames(strings.Repeat("x", 250) + "1")
	b, _ := partialNames(strings.Repeat("x", 250) + "2")
	if a == b {
		t.Errorf("two names share the partial %q", a)
	}
}

// A file's mode travels with the owner's read and write: a mode of 000
// must not reach the other end as 0, which means "not known".
func TestWireMode(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ mode, want fs.FileMode }{{0o000, 0o600}, {0o755, 0o755}, {0o444, 0o644}, {0o640, 0o640}} {
		if err := os.Chmod(p, tc.mode); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := wireMode(fi); got != uint32(tc.want) {
			t.Errorf("wireMode(%#o) = %#o, want %#o", tc.mode, got, tc.want)
		}
	}
}
