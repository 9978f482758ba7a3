package fsjail

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// jailWithD opens a jail on a new directory holding an empty directory d.
func jailWithD(t *testing.T) (j *Jail, dir string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	j, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j, dir
}

func TestPartialLifecycle(t *testing.T) {
	t.Parallel()
	j, dir := jailWithD(t)
	p, created, err := j.OpenPartial("/d/big.iso", true)
	if err != nil || !created {
		t.Fatalf("open: %v created=%v", err, created)
	}
	if strings.Contains(p.Data.Name(), dir) || !strings.HasPrefix(p.Data.Name(), "/d/"+partPrefix) {
		t.Fatalf("data name %q", p.Data.Name())
	}
	if _, err := p.Data.WriteAt([]byte("hello"), 3); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Meta.Write([]byte("journal")); err != nil {
		t.Fatal(err)
	}
	_ = p.Close()
	// Hidden from listings; data counts toward usage, the journal does not.
	infos, err := j.ReadDir("/d")
	if err != nil || len(infos) != 0 {
		t.Fatalf("ReadDir = %v, %v", infos, err)
	}
	if n, err := j.Usage(); err != nil || n != 8 {
		t.Fatalf("usage %d, %v", n, err)
	}
	if n, err := j.PartialSize("/d/big.iso"); err != nil || n != 8 {
		t.Fatalf("partial size %d, %v", n, err)
	}
	// Reopening finds it.
	p, created, err = j.OpenPartial("/d/big.iso", true)
	if err != nil || created {
		t.Fatalf("reopen: %v created=%v", err, created)
	}
	_ = p.Close()
	// Another destination has its own.
	if _, err := j.PartialSize("/d/other"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("other: %v", err)
	}
	mt := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := j.CommitPartial("/d/big.iso", false, false, true, mt, 0o750); err != nil {
		t.Fatal(err)
	}
	fi, err := j.Stat("/d/big.iso")
	if err != nil || fi.Size() != 8 || !fi.ModTime().Equal(mt) || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o750) {
		t.Fatalf("committed %v, %v", fi, err)
	}
	left, _ := os.ReadDir(filepath.Join(dir, "d"))
	if len(left) != 1 {
		t.Fatalf("left behind: %v", left)
	}
	// No clobbering without overwrite.
	p, _, _ = j.OpenPartial("/d/big.iso", true)
	_ = p.Close()
	if err := j.CommitPartial("/d/big.iso", false, false, true, time.Time{}, FileMode(0)); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("clobber: %v", err)
	}
	// A small upload to the name (no journal) starts from empty: the
	// journal of the big one goes, so that nothing is left once it is
	// committed or removed.
	p, created, err = j.OpenPartial("/d/big.iso", false)
	if err != nil || created || p.Meta != nil {
		t.Fatalf("reopen without journal: %v created=%v", err, created)
	}
	_ = p.Close()
	if left, _ := os.ReadDir(filepath.Join(dir, "d")); len(left) != 2 { // the file and the partial's data
		t.Fatalf("a small upload over a big one left %v", left)
	}
	if n, err := j.RemovePartial("/d/big.iso"); err != nil || n != 0 {
		t.Fatalf("remove: %d %v", n, err)
	}
	if n, err := j.RemovePartial("/d/big.iso"); err != nil || n != 0 {
		t.Fatalf("remove twice: %d %v", n, err)
	}
	// Bad destinations.
	for _, vp := range []string{"/", "/../x", "/nodir/x"} {
		if _, _, err := j.OpenPartial(vp, true); err == nil {
			t.Fatalf("OpenPartial(%q) succeeded", vp)
		}
	}
}

func TestSweep(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, vp := range []string{"/old", "/sub/old", "/new"} {
		p, _, err := j.OpenPartial(vp, true)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = p.Data.Write(make([]byte, 100))
		_ = p.Close()
	}
	if err := os.WriteFile(filepath.Join(dir, "keep"), []byte("user file"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-8 * 24 * time.Hour)
	des, _ := os.ReadDir(dir)
	sub, _ := os.ReadDir(filepath.Join(dir, "sub"))
	// Age everything but /new's files.
	newData, _, newMeta, _, _ := partialPaths("/new")
	for _, list := range []struct {
		dir string
		des []os.DirEntry
	}{{dir, des}, {filepath.Join(dir, "sub"), sub}} {
		for _, d := range list.des {
			if d.IsDir() || d.Name() == "keep" || "/"+d.Name() == newData || "/"+d.Name() == newMeta {
				continue
			}
			if err := os.Chtimes(filepath.Join(list.dir, d.Name()), old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	freed, err := j.Sweep(time.Now().Add(-7 * 24 * time.Hour))
	if err != nil || freed != 200 {
		t.Fatalf("sweep freed %d, %v", freed, err)
	}
	if n, err := j.PartialSize("/new"); err != nil || n != 100 {
		t.Fatalf("recent partial: %d %v", n, err)
	}
	if _, err := j.PartialSize("/old"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("old partial kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "keep")); err != nil {
		t.Fatal("user file swept")
	}
}

// TestStartWriteback checks that the writeback hint leaves the data as
// written and is harmless on a closed partial (a striped upload's stream
// may give it after another stream closed the files).
func TestStartWriteback(t *testing.T) {
	t.Parallel()
	j, _ := jailWithD(t)
	p, _, err := j.OpenPartial("/d/f", false)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(strings.Repeat("qftp", 4096))
	if _, err := p.Data.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	p.StartWriteback(0, int64(len(data)))
	got := make([]byte, len(data))
	if _, err := p.Data.ReadAt(got, 0); err != nil || string(got) != string(data) {
		t.Fatalf("after writeback: %v, data changed: %v", err, string(got) != string(data))
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p.StartWriteback(0, int64(len(data)))
}

// RemoveLeftovers drops the partial uploads of a directory that no upload
// holds, with their journals, and leaves a held one and everything else.
func TestRemoveLeftovers(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("TryLock holds nothing there")
	}
	j, dir := jailWithD(t)
	idle, _, err := j.OpenPartial("/d/idle", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := idle.Data.WriteAt([]byte("12345"), 0); err != nil {
		t.Fatal(err)
	}
	_ = idle.Close()
	held, _, err := j.OpenPartial("/d/held", true)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := held.Data.WriteAt([]byte("123"), 0); err != nil {
		t.Fatal(err)
	}
	// Written to a moment ago: maybe an upload between its pieces.
	if freed, err := j.RemoveLeftovers("/d", time.Hour); err != nil || freed != 0 {
		t.Fatalf("RemoveLeftovers of fresh partials = %d, %v; want 0", freed, err)
	}
	if freed, err := j.RemoveLeftovers("/d", 0); err != nil || freed != 5 {
		t.Fatalf("RemoveLeftovers = %d, %v; want 5", freed, err)
	}
	if _, err := j.PartialSize("/d/idle"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("idle partial: %v", err)
	}
	if n, err := j.PartialSize("/d/held"); err != nil || n != 3 {
		t.Fatalf("held partial: %d, %v", n, err)
	}
	left, _ := os.ReadDir(filepath.Join(dir, "d"))
	if len(left) != 2 { // the held partial and its journal
		t.Fatalf("left %v", left)
	}
	_ = held.Close()
	if freed, err := j.RemoveLeftovers("/d", 0); err != nil || freed != 3 {
		t.Fatalf("RemoveLeftovers after the upload = %d, %v; want 3", freed, err)
	}
	if err := j.Rmdir("/d"); err != nil {
		t.Fatal(err)
	}
}
