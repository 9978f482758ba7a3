package session_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/qftp/qftp/fsjail"
	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/sessiontest"
	"github.com/qftp/qftp/transport"
)

func names(entries []transport.Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name)
	}
	return out
}

func TestCommands(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "alice")
	ctx := t.Context()

	if p, err := c.Pwd(ctx); err != nil || p != "/" {
		t.Fatalf("pwd = %q, %v", p, err)
	}
	if err := c.Mkdir(ctx, "docs", false); err != nil {
		t.Fatal(err)
	}
	if err := c.Mkdir(ctx, "docs", false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("mkdir existing: %v, want exists", err)
	}
	if err := c.Mkdir(ctx, "docs/2024/q1", true); err != nil {
		t.Fatal(err)
	}
	if err := c.Mkdir(ctx, "docs/2024/q1", true); err != nil {
		t.Fatalf("mkdir -p existing: %v", err)
	}
	if err := c.Mkdir(ctx, "x/y", false); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("mkdir without parent: %v", err)
	}
	if p, err := c.Cd(ctx, "docs/2024"); err != nil || p != "/docs/2024" {
		t.Fatalf("cd = %q, %v", p, err)
	}
	if p, err := c.Pwd(ctx); err != nil || p != "/docs/2024" {
		t.Fatalf("pwd after cd = %q, %v", p, err)
	}
	if p, err := c.Cd(ctx, ".."); err != nil || p != "/docs" {
		t.Fatalf("cd .. = %q, %v", p, err)
	}
	if p, err := c.Cd(ctx, "/"); err != nil || p != "/" {
		t.Fatalf("cd / = %q, %v", p, err)
	}
	if p, err := c.Cd(ctx, ".."); err != nil || p != "/" {
		t.Fatalf("cd .. at / = %q, %v", p, err)
	}
	if p, err := c.Cd(ctx, "../../.."); err != nil || p != "/" {
		t.Fatalf("cd ../../.. at / = %q, %v", p, err)
	}
	// A refused path says why.
	for p, why := range map[string]string{
		".qftp-notes":              `names starting with ".qftp-" are reserved`,
		`a\b`:                      "contains a backslash",
		strings.Repeat("n", 256):   "a name longer than 255 bytes",
		"docs/" + ".qftp-x" + "/y": `".qftp-x": names starting`,
	} {
		if err := c.Mkdir(ctx, p, false); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("mkdir %.20s: %v, want it to say %q", p, err, why)
		}
	}
	// ls agrees with cd: ".." at "/" is "/"; a name after it climbs out.
	if es, _, err := c.List(ctx, "../.."); err != nil || len(es) != 1 || es[0].Name != "docs" {
		t.Fatalf("ls ../.. at / = %v, %v", es, err)
	}
	if _, _, err := c.List(ctx, "../docs"); !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "escapes home") {
		t.Fatalf("ls ../docs at / = %v", err)
	}

	local := t.TempDir()
	sessiontest.WriteFile(t, filepath.Join(local, "a.txt"), []byte("hello"))
	if _, err := c.Put(ctx, filepath.Join(local, "a.txt"), "docs/", session.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := sessiontest.ReadFile(t, filepath.Join(home, "docs", "a.txt")); string(got) != "hello" {
		t.Fatalf("server file = %q", got)
	}
	// cd into a file.
	_, err := c.Cd(ctx, "/docs/a.txt")
	if !errors.Is(err, syscall.ENOTDIR) || err.Error() != "cd /docs/a.txt: not a directory" {
		t.Fatalf("cd file: %v", err)
	}
	if _, err := c.Cd(ctx, "/nope"); err == nil || err.Error() != "cd /nope: no such file or directory" {
		t.Fatalf("cd missing: %v", err)
	}

	entries, _, err := c.List(ctx, "/docs")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(entries); !slices.Equal(got, []string{"2024", "a.txt"}) {
		t.Fatalf("ls /docs = %q", got)
	}
	if entries[0].Type != transport.TypeDir || entries[1].Type != transport.TypeFile || entries[1].Size != 5 {
		t.Fatalf("ls /docs entries = %+v", entries)
	}
	entries, _, err = c.List(ctx, "/docs/a.txt")
	if err != nil || len(entries) != 1 || entries[0].Name != "/docs/a.txt" { // as named (TestListFileAsNamed)
		t.Fatalf("ls file = %+v, %v", entries, err)
	}
	e, vp, err := c.Stat(ctx, "docs/a.txt")
	if err != nil || vp != "/docs/a.txt" || e.Size != 5 {
		t.Fatalf("stat = %+v %q %v", e, vp, err)
	}

	// mv: rename, into a directory, refuse to clobber without force.
	if err := c.Rename(ctx, "docs/a.txt", "docs/b.txt", false); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename(ctx, "docs/b.txt", "docs/2024", false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Stat(ctx, "docs/2024/b.txt"); err != nil {
		t.Fatalf("mv into dir: %v", err)
	}
	sessiontest.WriteFile(t, filepath.Join(local, "c.txt"), []byte("c"))
	if _, err := c.Put(ctx, filepath.Join(local, "c.txt"), "/docs/2024/c.txt", session.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename(ctx, "docs/2024/c.txt", "docs/2024/b.txt", false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("mv onto existing: %v", err)
	}
	if err := c.Rename(ctx, "docs/2024/c.txt", "docs/2024/b.txt", true); err != nil {
		t.Fatalf("mv -f: %v", err)
	}
	if got := sessiontest.ReadFile(t, filepath.Join(home, "docs", "2024", "b.txt")); string(got) != "c" {
		t.Fatalf("after mv -f: %q", got)
	}
	if err := c.Rename(ctx, "nope", "x", false); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("mv missing: %v", err)
	}
	for _, tc := range []struct{ from, to, want string }{
		{"docs", "docs/2024/inner", "cannot move a directory into itself"},
		{"docs", "docs/2024", "cannot move a directory into itself"}, // into docs/2024/docs
		{"/", "x", "mv /: permission denied: cannot move the home directory"},
		{"docs", "docs", "source and destination are the same"},
		{"docs/2024/b.txt", "docs/2024/b.txt", "source and destination are the same"},
	} {
		if err := c.Rename(ctx, tc.from, tc.to, true); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("mv %s %s: %v, want %q", tc.from, tc.to, err, tc.want)
		}
	}

	// rm and rmdir.
	if err := c.Rmdir(ctx, "docs/2024"); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Fatalf("rmdir non-empty: %v", err)
	}
	if err := c.Remove(ctx, "docs/2024"); !errors.Is(err, syscall.EISDIR) {
		t.Fatalf("rm dir: %v", err)
	}
	if err := c.Rmdir(ctx, "docs/2024/b.txt"); !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("rmdir file: %v", err)
	}
	if err := c.Remove(ctx, "docs/2024/b.txt"); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(ctx, "docs/2024/b.txt"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("rm twice: %v", err)
	}
	if err := c.Rmdir(ctx, "docs/2024/q1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rmdir(ctx, "/"); err == nil {
		t.Fatal("rmdir / succeeded")
	}

	u, err := c.Df(ctx)
	if err != nil || u.Used != 0 {
		t.Fatalf("df = %+v, %v", u, err)
	}
}

func TestUnicodeNames(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "bob")
	ctx := t.Context()
	local := t.TempDir()
	for _, name := range []string{"文件.txt", "my file (1).txt", "😀 emoji.bin", "Ünïcödé", "שלום", "-dash", "'quote\"", "#hash"} {
		t.Run(name, func(t *testing.T) {
			dir := "dir " + name
			if err := c.Mkdir(ctx, "/"+dir, false); err != nil {
				t.Fatal(err)
			}
			sessiontest.WriteFile(t, filepath.Join(local, name), []byte(name))
			if _, err := c.Put(ctx, filepath.Join(local, name), "/"+dir+"/"+name, session.TransferOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := sessiontest.ReadFile(t, filepath.Join(home, dir, name)); string(got) != name {
				t.Fatalf("server has %q", got)
			}
			entries, _, err := c.List(ctx, "/"+dir)
			if err != nil || len(entries) != 1 || entries[0].Name != name {
				t.Fatalf("ls = %+v, %v", entries, err)
			}
			out := filepath.Join(t.TempDir(), "x")
			if _, err := c.Get(ctx, "/"+dir+"/"+name, out, session.TransferOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := sessiontest.ReadFile(t, out); string(got) != name {
				t.Fatalf("got %q", got)
			}
		})
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTripSizes(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "carol")
	sizes := []int{0, 1, 4095, 256<<10 - 1, 256 << 10, 256<<10 + 1, 3<<20 + 17}
	if !testing.Short() {
		sizes = append(sizes, 64<<20)
	}
	local := t.TempDir()
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			data := randomBytes(t, n)
			src := filepath.Join(local, fmt.Sprintf("src-%d", n))
			sessiontest.WriteFile(t, src, data)
			res, err := c.Put(t.Context(), src, fmt.Sprintf("f-%d", n), session.TransferOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Bytes != int64(n) || res.Remote != fmt.Sprintf("/f-%d", n) {
				t.Fatalf("put result %+v", res)
			}
			if !bytes.Equal(sessiontest.ReadFile(t, filepath.Join(home, fmt.Sprintf("f-%d", n))), data) {
				t.Fatal("server copy differs")
			}
			dst := filepath.Join(local, fmt.Sprintf("dst-%d", n))
			var last int64
			res, err = c.Get(t.Context(), fmt.Sprintf("/f-%d", n), dst, session.TransferOptions{Progress: func(done, total int64) {
				if done < last || total != int64(n) {
					t.Errorf("progress %d/%d after %d", done, total, last)
				}
				last = done
			}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Bytes != int64(n) || last != int64(n) && n > 0 {
				t.Fatalf("get result %+v, progress %d", res, last)
			}
			if !bytes.Equal(sessiontest.ReadFile(t, dst), data) {
				t.Fatal("downloaded copy differs")
			}
			sfi, _ := os.Stat(src)
			dfi, _ := os.Stat(dst)
			if !sfi.ModTime().Equal(dfi.ModTime()) {
				t.Errorf("mtime not kept: %v vs %v", sfi.ModTime(), dfi.ModTime())
			}
		})
	}
	t.Cleanup(func() { sessiontest.NoTempFiles(t, home); sessiontest.NoTempFiles(t, local) })
}

// Files keep their permission bits both ways, less the receiver's umask,
// with reading and writing for the owner (fsjail.FileMode): small files,
// files with a journal, striped files.
func TestModesKept(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "mo")
	local := t.TempDir()
	for _, tc := range []struct {
		size  int
		conns int
	}{{1 << 10, 1}, {5 << 20, 1}, {17 << 20, 2}} {
		for _, mode := range []fs.FileMode{0o755, 0o600, 0o444, 0o777} { // (000: TestWireMode; not readable unless root)
			t.Run(fmt.Sprintf("%d-%o", tc.size, mode), func(t *testing.T) {
				t.Parallel()
				name := fmt.Sprintf("f-%d-%o", tc.size, mode)
				src := filepath.Join(local, name)
				sessiontest.WriteFile(t, src, randomBytes(t, tc.size))
				if err := os.Chmod(src, mode); err != nil {
					t.Fatal(err)
				}
				opt := session.TransferOptions{Connections: tc.conns}
				if _, err := c.Put(t.Context(), src, name, opt); err != nil {
					t.Fatal(err)
				}
				want := fsjail.UploadMode(uint32(mode | 0o600)) // as sent (0 would be "unknown"); never group- or world-writable there
				if fi, err := os.Stat(filepath.Join(home, name)); err != nil || fi.Mode().Perm() != want {
					t.Fatalf("uploaded file's mode %v (%v), want %v", fi.Mode(), err, want)
				}
				// The other way, from a mode the server's file has now.
				other := mode ^ 0o011
				if err := os.Chmod(filepath.Join(home, name), other); err != nil {
					t.Fatal(err)
				}
				dst := filepath.Join(local, "got-"+name)
				if _, err := c.Get(t.Context(), name, dst, opt); err != nil {
					t.Fatal(err)
				}
				want = fsjail.FileMode(uint32(other | 0o600))
				if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != want {
					t.Fatalf("downloaded file's mode %v (%v), want %v", fi.Mode(), err, want)
				}
			})
		}
	}
}

// TestRunAgain: a transfer run again after it finished finds its file
// already there and succeeds without copying; a file that differs in
// anything, even only in content, is still refused without -f.
func TestRunAgain(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "again")
	ctx := t.Context()
	local := t.TempDir()
	src := filepath.Join(local, "src")
	// Big enough to be resumable: such a put asks before sending data.
	data := bytes.Repeat([]byte("abcd"), 1<<20+1000)
	sessiontest.WriteFile(t, src, data)
	if _, err := c.Put(ctx, src, "f", session.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "f", filepath.Join(local, "copy"), session.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	var last int64
	opt := session.TransferOptions{Progress: func(done, total int64) { last = done }}
	res, err := c.Put(ctx, src, "f", opt)
	if err != nil || !res.Same || res.Sent != 0 || res.Bytes != int64(len(data)) || last != int64(len(data)) {
		t.Fatalf("put again: %+v, progress %d, %v", res, last, err)
	}
	last = 0
	res, err = c.Get(ctx, "f", filepath.Join(local, "copy"), opt)
	if err != nil || !res.Same || res.Sent != 0 || last != int64(len(data)) {
		t.Fatalf("get again: %+v, progress %d, %v", res, last, err)
	}

	// A cancel while comparing is a cancel, not "exists".
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Get(cctx, "f", filepath.Join(local, "copy"), session.TransferOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("get again, canceled: %v", err)
	}

	// Same size and time, other content: only the digest tells.
	mt := time.Unix(1_600_000_000, 0)
	for _, p := range []string{src, filepath.Join(home, "f")} {
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	other := filepath.Join(local, "other")
	otherData := bytes.Clone(data)
	otherData[len(otherData)-1] ^= 1
	sessiontest.WriteFile(t, other, otherData)
	if err := os.Chtimes(other, mt, mt); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, other, "f", session.TransferOptions{}); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("put of other content: %v", err)
	}
	if _, err := c.Get(ctx, "f", other, session.TransferOptions{}); err == nil || !strings.Contains(err.Error(), "exists (use -f") {
		t.Fatalf("get over other content: %v", err)
	}
	if got := sessiontest.ReadFile(t, other); !bytes.Equal(got, otherData) {
		t.Fatal("local file replaced")
	}
	if got := sessiontest.ReadFile(t, filepath.Join(home, "f")); !bytes.Equal(got, data) {
		t.Fatal("remote file replaced")
	}
	// Same content, other time: refused too, like a file that differs.
	// (Not a second or two off in whole seconds: a coarse file system's
	// rounding may have made that difference.)
	if err := os.Chtimes(src, mt.Add(time.Minute), mt.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, src, "f", session.TransferOptions{}); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("put with another time: %v", err)
	}
	// A file that appeared where a put left a partial is refused before
	// the put says it resumes.
	ictx, iopt, cancel := interrupt(1 << 20)
	_, err = c.Put(ictx, src, "g", iopt)
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted put: %v", err)
	}
	if err := ts.Srv.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	sessiontest.WriteFile(t, filepath.Join(home, "g"), []byte("made meanwhile"))
	var notes []string
	_, err = c.Put(ctx, src, "g", session.TransferOptions{Notify: func(m string) { notes = append(notes, m) }})
	if !errors.Is(err, fs.ErrExist) || len(notes) != 0 {
		t.Fatalf("put onto a new file with a partial: %v, notes %q", err, notes)
	}
	if _, err := c.Put(ctx, src, "g", session.TransferOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sessiontest.NoTempFiles(t, home); sessiontest.NoTempFiles(t, local) })
}

func TestOverwrite(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "dave")
	ctx := t.Context()
	local := t.TempDir()
	sessiontest.WriteFile(t, filepath.Join(local, "a"), []byte("one"))
	sessiontest.WriteFile(t, filepath.Join(local, "b"), []byte("two"))
	if _, err := c.Put(ctx, filepath.Join(local, "a"), "f", session.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Put(ctx, filepath.Join(local, "b"), "f", session.TransferOptions{})
	if !errors.Is(err, fs.ErrExist) || err.Error() != "put /f: file exists (use -f to replace it)" {
		t.Fatalf("put over existing: %v", err)
	}
	if got := sessiontest.ReadFile(t, filepath.Join(home, "f")); string(got) != "one" {
		t.Fatalf("clobbered: %q", got)
	}
	if _, err := c.Put(ctx, filepath.Join(local, "b"), "f", session.TransferOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if got := sessiontest.ReadFile(t, filepath.Join(home, "f")); string(got) != "two" {
		t.Fatalf("put -f: %q", got)
	}
	// A directory named as the destination receives the file.
	if err := c.Mkdir(ctx, "d", false); err != nil {
		t.Fatal(err)
	}
	if err := c.Mkdir(ctx, "d/a", false); err != nil {
		t.Fatal(err)
	}
	if res, err := c.Put(ctx, filepath.Join(local, "a"), "d/a", session.TransferOptions{Force: true}); err != nil || res.Remote != "/d/a/a" {
		t.Fatalf("put into dir: %+v, %v", res, err)
	}
	// get refuses to replace a local file unless forced.
	if _, err := c.Get(ctx, "f", filepath.Join(local, "a"), session.TransferOptions{}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("get over local file: %v", err)
	}
	if got := sessiontest.ReadFile(t, filepath.Join(local, "a")); string(got) != "one" {
		t.Fatalf("local clobbered: %q", got)
	}
	if _, err := c.Get(ctx, "f", filepath.Join(local, "a"), session.TransferOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if got := sessiontest.ReadFile(t, filepath.Join(local, "a")); string(got) != "two" {
		t.Fatalf("get -f: %q", got)
	}
	// get into a directory keeps the name.
	if _, err := c.Get(ctx, "f", t.TempDir(), session.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	// Errors name the file and the cause.
	if _, err := c.Get(ctx, "missing", local, session.TransferOptions{}); err == nil || err.Error() != "get /missing: no such file or directory" {
		t.Fatalf("get missing: %v", err)
	}
	if _, err := c.Get(ctx, "d", local, session.TransferOptions{}); err == nil || err.Error() != "get /d: is a directory" {
		t.Fatalf("get dir: %v", err)
	}
	if _, err := c.Put(ctx, filepath.Join(local, "nope"), "", session.TransferOptions{}); err == nil || !strings.HasSuffix(err.Error(), "nope: no such file or directory") {
		t.Fatalf("put missing: %v", err)
	}
	if _, err := c.Put(ctx, local, "", session.TransferOptions{}); err == nil || !strings.HasSuffix(err.Error(), ": is a directory (use put -r for a tree)") {
		t.Fatalf("put dir: %v", err)
	}
	if _, err := c.Put(ctx, filepath.Join(local, "a"), "nodir/x", session.TransferOptions{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("put into missing dir: %v", err)
	}
	sessiontest.NoTempFiles(t, home)
}

func TestUsersIsolated(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	alice, aliceHome := ts.User(t, "alice")
	bob, bobHome := ts.User(t, "bob")
	ctx := t.Context()
	sessiontest.WriteFile(t, filepath.Join(aliceHome, "secret"), []byte("alice's"))
	sessiontest.WriteFile(t, filepath.Join(bobHome, "mine"), []byte("bob's"))
	for _, p := range []string{"/secret", "../alice/secret", "/../alice/secret"} {
		if _, err := bob.Get(ctx, p, t.TempDir(), session.TransferOptions{}); err == nil {
			t.Fatalf("bob read %s", p)
		}
	}
	entries, _, err := alice.List(ctx, "/")
	if err != nil || !slices.Equal(names(entries), []string{"secret"}) {
		t.Fatalf("alice sees %q, %v", names(entries), err)
	}
	entries, _, err = bob.List(ctx, "/")
	if err != nil || !slices.Equal(names(entries), []string{"mine"}) {
		t.Fatalf("bob sees %q, %v", names(entries), err)
	}
}

func TestJailEscapes(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "eve")
	ctx := t.Context()
	outside := t.TempDir()
	sessiontest.WriteFile(t, filepath.Join(outside, "loot"), []byte("outside"))
	if err := os.Mkdir(filepath.Join(home, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Planted by an admin or another process.
	for name, target := range map[string]string{
		"abs-file":   filepath.Join(outside, "loot"),
		"abs-dir":    outside,
		"etc":        "/etc",
		"rel-out":    "../../" + filepath.Base(outside),
		"sub/up-out": "../../..",
	} {
		if err := os.Symlink(target, filepath.Join(home, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("sub", filepath.Join(home, "inside")); err != nil {
		t.Fatal(err)
	}
	local := t.TempDir()
	sessiontest.WriteFile(t, filepath.Join(local, "up"), []byte("up"))

	type op func(p string) error
	get := func(p string) error {
		_, err := c.Get(ctx, p, filepath.Join(t.TempDir(), "x"), session.TransferOptions{})
		return err
	}
	put := func(p string) error {
		_, err := c.Put(ctx, filepath.Join(local, "up"), p, session.TransferOptions{})
		return err
	}
	ops := map[string]op{
		"get":   get,
		"put":   put,
		"ls":    func(p string) error { _, _, err := c.List(ctx, p); return err },
		"cd":    func(p string) error { _, err := c.Cd(ctx, p); return err },
		"mkdir": func(p string) error { return c.Mkdir(ctx, p, true) },
		"rm":    func(p string) error { return c.Remove(ctx, p) },
		"rmdir": func(p string) error { return c.Rmdir(ctx, p) },
		"mv":    func(p string) error { return c.Rename(ctx, "sub", p, false) },
	}
	// strict: the refusal must say why (permission or invalid path) for
	// every operation; otherwise any refusal will do for operations that do
	// not follow the final symlink (rm, rmdir, mv onto a link name).
	paths := []struct {
		path   string
		code   string
		strict bool
	}{
		{"../x", transport.CodePermission, true},
		{"../../etc/passwd", transport.CodePermission, true},
		{"/../../etc/passwd", transport.CodePermission, true},
		{"sub/../../x", transport.CodePermission, true},
		{"abs-file", transport.CodePermission, false},
		{"abs-dir/loot", transport.CodePermission, false},
		{"abs-dir/", transport.CodePermission, false},
		{"etc/passwd", transport.CodePermission, false},
		{"rel-out/loot", transport.CodePermission, false},
		{"sub/up-out/x", transport.CodePermission, false},
		{"bad\x00name", transport.CodeInvalidPath, true},
		{`back\slash`, transport.CodeInvalidPath, true},
		{".qftp-tmp-0123456789abcdef", transport.CodeInvalidPath, true},
		{strings.Repeat("n", 256), transport.CodeInvalidPath, true},
	}
	follows := map[string]bool{"get": true, "put": true, "ls": true, "cd": true, "mkdir": true}
	for opName, f := range ops {
		for _, p := range paths {
			if opName == "rm" && (p.path == "abs-file" || p.path == "abs-dir/") {
				continue // removing the planted link itself is allowed
			}
			t.Run(opName+" "+p.path, func(t *testing.T) {
				err := f(p.path)
				var we *transport.Error
				if !errors.As(err, &we) {
					t.Fatalf("%s %q: %v, want a refusal", opName, p.path, err)
				}
				if (p.strict || follows[opName]) && we.Code != p.code {
					t.Fatalf("%s %q: code %s (%v), want %s", opName, p.path, we.Code, err, p.code)
				}
				if strings.Contains(err.Error(), home) || strings.Contains(err.Error(), outside) {
					t.Fatalf("error leaks a host path: %v", err)
				}
			})
		}
	}
	if got := sessiontest.ReadFile(t, filepath.Join(outside, "loot")); string(got) != "outside" {
		t.Fatalf("outside file changed: %q", got)
	}
	des, _ := os.ReadDir(outside)
	if len(des) != 1 {
		t.Fatalf("outside dir gained files: %v", des)
	}
	// A symlink that stays inside works.
	if err := put("inside/ok"); err != nil {
		t.Fatalf("put through inner symlink: %v", err)
	}
	if _, err := c.Cd(ctx, "inside"); err != nil {
		t.Fatal(err)
	}
}

func TestAuthFailures(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	ts.AddUser("frank", "right")
	var msgs []string
	for _, tc := range []struct{ user, pw string }{
		{"frank", "wrong"},
		{"nobody", "right"},
		{"frank", ""},
		{"../frank", "right"},
		{"", ""},
	} {
		_, err := ts.Dial(t, tc.user, tc.pw)
		if !errors.Is(err, transport.ErrAuth) {
			t.Fatalf("login %q/%q: %v, want ErrAuth", tc.user, tc.pw, err)
		}
		msgs = append(msgs, strings.Replace(err.Error(), "login as "+tc.user+":", "login as USER:", 1))
	}
	for _, m := range msgs[1:] {
		if m != msgs[0] {
			t.Fatalf("failures differ, revealing which part was wrong: %q vs %q", m, msgs[0])
		}
	}
	// The right password still works afterwards.
	ts.Login(t, "frank", "right")
}

func TestManySessions(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	const users, perUser = 5, 10
	var wg sync.WaitGroup
	errs := make(chan error, users*perUser)
	for u := range users {
		name := fmt.Sprintf("user%d", u)
		ts.AddUser(name, "pw")
		for s := range perUser {
			wg.Go(func() {
				errs <- func() error {
					c, err := ts.Dial(t, name, "pw")
					if err != nil {
						return err
					}
					defer c.Close()
					ctx := t.Context()
					dir := t.TempDir()
					n, _ := rand.Int(rand.Reader, big.NewInt(200<<10))
					data := make([]byte, n.Int64())
					_, _ = rand.Read(data)
					src := filepath.Join(dir, "src")
					if err := os.WriteFile(src, data, 0o644); err != nil {
						return err
					}
					remote := fmt.Sprintf("/s%d", s)
					if _, err := c.Put(ctx, src, remote, session.TransferOptions{}); err != nil {
						return err
					}
					if _, err := c.Get(ctx, remote, filepath.Join(dir, "dst"), session.TransferOptions{}); err != nil {
						return err
					}
					got, err := os.ReadFile(filepath.Join(dir, "dst"))
					if err != nil {
						return err
					}
					if !bytes.Equal(got, data) {
						return fmt.Errorf("%s %s: round trip differs", name, remote)
					}
					return nil
				}()
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestConcurrentTransfersOneSession(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "grace")
	local := t.TempDir()
	const n = 16
	data := make([][]byte, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		data[i] = randomBytes(t, mrand.IntN(1<<20))
		src := filepath.Join(local, fmt.Sprint(i))
		sessiontest.WriteFile(t, src, data[i])
		wg.Go(func() {
			_, err := c.Put(t.Context(), src, fmt.Sprintf("/f%d", i), session.TransferOptions{})
			errs <- err
		})
	}
	// The control stream stays responsive while transfers run.
	if _, err := c.Pwd(t.Context()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if !bytes.Equal(sessiontest.ReadFile(t, filepath.Join(home, fmt.Sprintf("f%d", i))), data[i]) {
			t.Fatalf("file %d differs", i)
		}
	}
}

func TestLargeListing(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "henry")
	const n = 1000
	for i := range n {
		sessiontest.WriteFile(t, filepath.Join(home, fmt.Sprintf("file-%04d-%s", i, strings.Repeat("x", 200))), nil)
	}
	entries, _, err := c.List(t.Context(), "/")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n || !slices.IsSortedFunc(entries, func(a, b transport.Entry) int { return strings.Compare(a.Name, b.Name) }) {
		t.Fatalf("got %d entries, sorted=%v", len(entries), slices.IsSortedFunc(entries, func(a, b transport.Entry) int { return strings.Compare(a.Name, b.Name) }))
	}
}

func TestCanceledPutLeavesNothing(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "ivan")
	local := t.TempDir()
	src := filepath.Join(local, "big")
	sessiontest.WriteFile(t, src, randomBytes(t, 32<<20))
	ctx, cancel := context.WithCancel(t.Context())
	_, err := c.Put(ctx, src, "big", session.TransferOptions{Progress: func(done, total int64) {
		if done > 1<<20 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled put: %v", err)
	}
	// The session survives a canceled transfer.
	if _, err := c.Pwd(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Shutdown waits for every transfer handler, so afterwards the server
	// is done with the upload: nothing visible, a hidden partial kept for
	// resume.
	if err := ts.Stop(10 * 1e9); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(home, "big")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("partial upload visible: %v", err)
	}
	des, _ := os.ReadDir(home)
	if len(des) != 2 || !strings.HasPrefix(des[0].Name(), ".qftp-") {
		t.Fatalf("home holds %v, want only the hidden partial and its journal", des)
	}
}

func TestCanceledGetLeavesNothing(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "judy")
	sessiontest.WriteFile(t, filepath.Join(home, "big"), randomBytes(t, 32<<20))
	local := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	_, err := c.Get(ctx, "big", local, session.TransferOptions{Progress: func(done, total int64) {
		if done > 1<<20 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled get: %v", err)
	}
	// Only the partial download (for resume) is left, not the file.
	des, _ := os.ReadDir(local)
	if len(des) != 2 || des[0].Name() != "big.qftp-part" || des[1].Name() != "big.qftp-part.meta" {
		t.Fatalf("local dir has %v", des)
	}
	if _, err := c.Pwd(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// Too many failed logins from one address make it wait, even with the
// right password.
func TestLoginLockout(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t, func(s *session.Server) { s.MaxLoginFailures = 2 })
	ts.AddUser("lock", "right")
	for range 2 {
		if _, err := ts.Dial(t, "lock", "wrong"); !errors.Is(err, transport.ErrAuth) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	_, err := ts.Dial(t, "lock", "right")
	if !errors.Is(err, transport.ErrAuth) || !strings.Contains(err.Error(), "too many failed logins") {
		t.Fatalf("login during lockout: %v", err)
	}
}

// A server that crashed and came back on the same address with the same
// certificate answers the old connection's next packet with a stateless
// reset: the client reconnects at once instead of waiting out the 60 s
// idle timeout.
func TestReconnectAfterCrash(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, _ := ts.User(t, "cr")
	if err := c.Mkdir(t.Context(), "d", false); err != nil {
		t.Fatal(err)
	}
	if err := ts.Crash(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	// The request in flight when the connection turns out dead fails
	// (quickly); the next one reconnects.
	if _, _, err := c.Stat(ctx, "d"); err != nil && !strings.Contains(err.Error(), "server no longer knows") {
		t.Fatalf("first request after the crash: %v", err)
	}
	if _, _, err := c.Stat(ctx, "d"); err != nil {
		t.Fatalf("after the crash: %v", err)
	}
}

// unnamedFiles reports whether dir's file system gives unnamed files
// (fsjail.CreateUnnamed), which a download without journal then uses.
func unnamedFiles(t *testing.T, dir string) bool {
	f, err := fsjail.CreateUnnamed(dir, 0o600)
	if err != nil {
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Fatal(err)
		}
		return false
	}
	_ = f.Close()
	return true
}

// A get never takes a file of the user's for its partial download: one
// named LOCAL.qftp-part (or LOCAL.qftp-part.meta) that is not a partial of
// qftp's is left as it is. A download that needs the name (one with a
// journal, or any where unnamed files are missing) says what is in the
// way, also when it fails for another reason; one without journal does
// without it.
func TestGetLeavesUserFilesNamedLikePartials(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "pia")
	ctx := t.Context()
	small := randomBytes(t, 100<<10)
	sessiontest.WriteFile(t, filepath.Join(home, "small"), small)
	sessiontest.WriteFile(t, filepath.Join(home, "big"), randomBytes(t, 5<<20))
	dir := t.TempDir()
	unnamed := unnamedFiles(t, dir)
	precious := []byte("precious user data\n")
	for _, tc := range []struct {
		remote, theirs string // theirs: the user's file, under dir
	}{
		{"small", "small.qftp-part"},
		{"big", "big.qftp-part"},
		{"big", "big.qftp-part.meta"},
		{"missing", "missing.qftp-part"},
	} {
		theirs := filepath.Join(dir, tc.theirs)
		sessiontest.WriteFile(t, theirs, precious)
		local := filepath.Join(dir, tc.remote)
		_, err := c.Get(ctx, tc.remote, local, session.TransferOptions{Force: true})
		if tc.remote == "small" && unnamed {
			if err != nil || !bytes.Equal(sessiontest.ReadFile(t, local), small) {
				t.Fatalf("get small with %s there: %v", tc.theirs, err)
			}
			if got := sessiontest.ReadFile(t, theirs); !bytes.Equal(got, precious) {
				t.Fatalf("get small: %s now holds %q", tc.theirs, got)
			}
			if err := os.Remove(local); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(theirs); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err == nil {
			t.Fatalf("get %s with %s there: succeeded", tc.remote, tc.theirs)
		}
		if tc.remote != "missing" && !strings.Contains(err.Error(), "is in the way") {
			t.Errorf("get %s with %s there: %v, want it named in the way", tc.remote, tc.theirs, err)
		}
		if got := sessiontest.ReadFile(t, theirs); !bytes.Equal(got, precious) {
			t.Fatalf("get %s: %s now holds %q", tc.remote, tc.theirs, got)
		}
		if _, err := os.Lstat(local); err == nil {
			t.Fatalf("get %s: %s appeared", tc.remote, local)
		}
		if err := os.Remove(theirs); err != nil {
			t.Fatal(err)
		}
		// Out of the way, the same get works and leaves no partial.
		if tc.remote != "missing" {
			if _, err := c.Get(ctx, tc.remote, local, session.TransferOptions{}); err != nil {
				t.Fatalf("get %s once %s is gone: %v", tc.remote, tc.theirs, err)
			}
			if err := os.Remove(local); err != nil {
				t.Fatal(err)
			}
		}
		sessiontest.NoTempFiles(t, dir)
	}
}

// A get publishes its partial download by name, and only if the name
// still holds it: a file put there meanwhile is never published, nor
// removed, nor taken by the next get for a partial of its own.
func TestGetRefusesReplacedPartial(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "quin")
	for _, size := range []int{100 << 10, 5 << 20} { // without and with a journal
		data := randomBytes(t, size)
		sessiontest.WriteFile(t, filepath.Join(home, "f"), data)
		dir := t.TempDir()
		local := filepath.Join(dir, "f")
		unnamed := size < 4<<20 && unnamedFiles(t, dir)
		other := []byte("not the download")
		var once sync.Once
		opt := session.TransferOptions{Progress: func(done, total int64) {
			once.Do(func() {
				tmp := filepath.Join(dir, "other")
				sessiontest.WriteFile(t, tmp, other)
				if err := os.Rename(tmp, local+".qftp-part"); err != nil {
					t.Error(err)
				}
			})
		}}
		_, err := c.Get(t.Context(), "f", local, opt)
		if unnamed {
			// The download has no name for anyone to replace.
			if err != nil || !bytes.Equal(sessiontest.ReadFile(t, local), data) {
				t.Fatalf("%d bytes: get beside a file named like its partial: %v", size, err)
			}
			if got := sessiontest.ReadFile(t, local+".qftp-part"); !bytes.Equal(got, other) {
				t.Fatalf("%d bytes: the file named like the partial now holds %d bytes", size, len(got))
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "was replaced") {
			t.Fatalf("%d bytes: get with its partial replaced: %v", size, err)
		}
		if _, err := os.Lstat(local); err == nil {
			t.Fatalf("%d bytes: %s was published", size, local)
		}
		if _, err := c.Get(t.Context(), "f", local, session.TransferOptions{Force: true}); err == nil || !strings.Contains(err.Error(), "in the way") {
			t.Fatalf("%d bytes: the next get: %v, want the file in the way", size, err)
		}
		if got := sessiontest.ReadFile(t, local+".qftp-part"); !bytes.Equal(got, other) {
			t.Fatalf("%d bytes: the file put at the partial's name now holds %d bytes", size, len(got))
		}
	}
}

// A local destination with a trailing slash names a directory: get does
// not create a file of that name when there is none, as cp(1) does not.
func TestGetTrailingSlashNeedsDirectory(t *testing.T) {
	t.Parallel()
	c := remoteFile(t, "ivo", []byte("data"))
	dir := t.TempDir()
	sessiontest.WriteFile(t, filepath.Join(dir, "file"), []byte("mine"))
	for _, dst := range []string{"newdir/", "file/"} {
		_, err := c.Get(t.Context(), "f", filepath.Join(dir, dst)+"/", session.TransferOptions{})
		if err == nil || !strings.Contains(err.Error(), "local directory") {
			t.Errorf("get f %s: %v, want a local directory error", dst, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "newdir")); err == nil {
		t.Fatal("newdir was created")
	}
	if err := os.Mkdir(filepath.Join(dir, "newdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(t.Context(), "f", filepath.Join(dir, "newdir")+"/", session.TransferOptions{}); err != nil {
		t.Fatalf("get into an existing directory: %v", err)
	}
	if got := sessiontest.ReadFile(t, filepath.Join(dir, "newdir", "f")); string(got) != "data" {
		t.Fatalf("newdir/f holds %q", got)
	}
}

// A get that cannot create its local file names the local file, so that
// the error does not read as if the remote one were missing.
func TestGetLocalErrorNamesLocalFile(t *testing.T) {
	t.Parallel()
	c := remoteFile(t, "olga", []byte("data"))
	local := filepath.Join(t.TempDir(), "no", "such", "dir", "f")
	_, err := c.Get(t.Context(), "f", local, session.TransferOptions{})
	if err == nil || !strings.Contains(err.Error(), "local file "+local) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("get into a missing local directory: %v", err)
	}
}

// A second get to the same local file while the first runs says so,
// rather than calling the first one's partial a file in the way. Two
// downloads without journal, in unnamed files, both run, and the second
// to finish finds the file it would publish already there.
func TestGetSameLocalFileTwice(t *testing.T) {
	t.Parallel()
	small := randomBytes(t, 100<<10)
	cs := remoteFile(t, "rolfs", small)
	dir := t.TempDir()
	if unnamedFiles(t, dir) {
		local := filepath.Join(dir, "f")
		var once sync.Once
		var second error
		opt := session.TransferOptions{Progress: func(done, total int64) {
			once.Do(func() { _, second = cs.Get(t.Context(), "f", local, session.TransferOptions{}) })
		}}
		if _, err := cs.Get(t.Context(), "f", local, opt); err != nil || second != nil {
			t.Fatalf("two gets of a small file at once: %v and %v", err, second)
		}
		if !bytes.Equal(sessiontest.ReadFile(t, local), small) {
			t.Fatal("copy differs")
		}
		sessiontest.NoTempFiles(t, dir)
	}

	c := remoteFile(t, "rolf", randomBytes(t, 5<<20))
	local := filepath.Join(t.TempDir(), "f")
	var once sync.Once
	var second error
	opt := session.TransferOptions{Progress: func(done, total int64) {
		once.Do(func() { _, second = c.Get(t.Context(), "f", local, session.TransferOptions{}) })
	}}
	if _, err := c.Get(t.Context(), "f", local, opt); err != nil {
		t.Fatalf("first get: %v", err)
	}
	if second == nil || !strings.Contains(second.Error(), "another download") {
		t.Fatalf("second get meanwhile: %v, want another download running", second)
	}
}

// get -f replaces a file whose name is as long as its directory allows:
// the download's temporary name must fit too.
// A file with a name of 255 bytes, the most a name may have: its partial
// download's name is cut short to fit, and still found to resume.
func TestGetResumeLongName(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "lang")
	name := strings.Repeat("y", 249) + "é.bin" // 255 bytes
	data := randomBytes(t, 6*mib)
	sessiontest.WriteFile(t, filepath.Join(home, name), data)
	local := t.TempDir()
	ctx, opts, cancel := interrupt(2 * mib)
	_, err := c.Get(ctx, name, local, opts)
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted get: %v", err)
	}
	res, err := c.Get(t.Context(), name, local, session.TransferOptions{})
	if err != nil || res.Resumed == 0 {
		t.Fatalf("get again: resumed %d, %v", res.Resumed, err)
	}
	if !bytes.Equal(sessiontest.ReadFile(t, filepath.Join(local, name)), data) {
		t.Fatal("downloaded file differs")
	}
	sessiontest.NoTempFiles(t, local)
}

func TestGetForceLongName(t *testing.T) {
	t.Parallel()
	c := remoteFile(t, "lena", []byte("new"))
	local := filepath.Join(t.TempDir(), strings.Repeat("n", 250))
	sessiontest.WriteFile(t, local, []byte("old"))
	if _, err := c.Get(t.Context(), "f", local, session.TransferOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if got := sessiontest.ReadFile(t, local); string(got) != "new" {
		t.Fatalf("got %q", got)
	}
	sessiontest.NoTempFiles(t, filepath.Dir(local))
}

// remoteFile starts a server with user name, whose home holds f with
// data, and logs in as them.
func remoteFile(t *testing.T, name string, data []byte) *session.Client {
	t.Helper()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, name)
	sessiontest.WriteFile(t, filepath.Join(home, "f"), data)
	return c
}

// A reconnection that the login guard refuses (too many failures from this
// address, whoever made them) does not end the session for good, as a
// refused password does: once the address may try again, the same client
// logs in again.
func TestReconnectAfterLoginGuard(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	ts := sessiontest.Start(t, func(s *session.Server) {
		s.MaxLoginFailures = 2
		session.SetClock(s, func() time.Time { return time.Unix(0, now.Load()) })
	})
	ts.AddUser("gina", "right")
	c := ts.Login(t, "gina", "right")
	for range 2 {
		if _, err := ts.Dial(t, "gina", "wrong"); !errors.Is(err, transport.ErrAuth) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	session.BreakConnection(c)
	if _, err := c.Pwd(t.Context()); !errors.Is(err, transport.ErrAuth) || !strings.Contains(err.Error(), transport.MsgLoginThrottled) {
		t.Fatalf("reconnect during the lockout: %v", err)
	}
	now.Add(int64(time.Hour))
	if _, err := c.Pwd(t.Context()); err != nil {
		t.Fatalf("reconnect after the lockout: %v", err)
	}
}

// Messages of a get or put that cannot start name the real obstacle: the
// remote file missing (not the local one that exists), a local directory
// where the file would go, a remote file where a tree would go.
func TestTransferObstacles(t *testing.T) {
	t.Parallel()
	c := remoteFile(t, "obi", []byte("data"))
	local := t.TempDir()
	sessiontest.WriteFile(t, filepath.Join(local, "prec.txt"), []byte("mine"))
	if _, err := c.Get(t.Context(), "nonexist", filepath.Join(local, "prec.txt"), session.TransferOptions{}); !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "get /nonexist:") {
		t.Errorf("get of a missing file onto an existing one: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(local, "ldx", "f"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, force := range []bool{false, true} {
		_, err := c.Get(t.Context(), "f", filepath.Join(local, "ldx"), session.TransferOptions{Force: force})
		if err == nil || !strings.Contains(err.Error(), "ldx/f is a directory") || strings.Contains(err.Error(), ".qftp") {
			t.Errorf("get onto a directory (force %v): %v", force, err)
		}
	}
	sessiontest.NoTempFiles(t, filepath.Join(local, "ldx"))
	if _, err := c.PlanGetTree(t.Context(), "nonexist", local, session.TreeOptions{}); !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "get /nonexist:") {
		t.Errorf("get -r of a missing directory: %v", err)
	}
	if _, err := c.PlanPutTree(t.Context(), filepath.Join(local, "ldx"), "f", session.TreeOptions{}); err == nil || err.Error() != "put /f: exists and is not a directory" {
		t.Errorf("put -r onto a file: %v", err)
	}
}

// A trailing slash says "directory", as in POSIX: a file named so is
// ENOTDIR for every operation, and mv does not turn "newdir/" into a file.
func TestTrailingSlash(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "sly")
	sessiontest.WriteFile(t, filepath.Join(home, "f"), []byte("x"))
	if err := os.Mkdir(filepath.Join(home, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	local := filepath.Join(t.TempDir(), "got")
	for name, op := range map[string]func() error{
		"ls":   func() error { _, _, err := c.List(ctx, "f/"); return err },
		"stat": func() error { _, _, err := c.Stat(ctx, "f/"); return err },
		"cd":   func() error { _, err := c.Cd(ctx, "f/"); return err },
		"get":  func() error { _, err := c.Get(ctx, "f/", local, session.TransferOptions{}); return err },
		"mv":   func() error { return c.Rename(ctx, "f", "nodir/", false) },
	} {
		if err := op(); !errors.Is(err, syscall.ENOTDIR) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(home, "f")); err != nil {
		t.Fatalf("the file after mv to nodir/: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "nodir")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("mv to nodir/ made %v", err)
	}
	// Directories take one.
	if _, _, err := c.List(ctx, "d/"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mkdir(ctx, "new/", false); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename(ctx, "d", "d2/", false); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(home, "d2")); err != nil || !fi.IsDir() {
		t.Fatalf("mv d d2/: %v", err)
	}
}

// ls of a file names it as it was asked for, as ls(1) does.
func TestListFileAsNamed(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "lsf")
	sessiontest.WriteFile(t, filepath.Join(home, "pd", "prec.txt"), []byte("x"))
	for _, p := range []string{"pd/prec.txt", "/pd/prec.txt", "pd/../pd/prec.txt"} {
		entries, _, err := c.List(t.Context(), p)
		if err != nil || len(entries) != 1 || entries[0].Name != p || entries[0].Size != 1 {
			t.Errorf("ls %s: %+v, %v", p, entries, err)
		}
	}
	if entries, _, err := c.List(t.Context(), "pd"); err != nil || len(entries) != 1 || entries[0].Name != "prec.txt" {
		t.Errorf("ls pd: %+v, %v", entries, err)
	}
}

// logBuffer collects a server's log lines; the server writes them from
// many goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A failed login with something that is no user name (a password typed
// into the wrong field) does not put it in the server's log.
func TestLoginLogsNoInvalidName(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	ts := sessiontest.Start(t, func(s *session.Server) {
		s.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	ts.AddUser("ivy", "pw")
	if _, err := ts.Dial(t, "Hunter2 secret!", "pw"); !errors.Is(err, transport.ErrAuth) {
		t.Fatalf("login: %v", err)
	}
	if _, err := ts.Dial(t, "ivy", "wrong"); !errors.Is(err, transport.ErrAuth) {
		t.Fatalf("login: %v", err)
	}
	out := logs.String()
	if strings.Contains(out, "Hunter2") || !strings.Contains(out, `user="(not a valid user name, 15 bytes)"`) || !strings.Contains(out, "user=ivy") {
		t.Fatalf("log:\n%s", out)
	}
}
