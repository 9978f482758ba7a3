//go:build unix

package fsjail

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fixture is a jail on a fresh home directory below base.
type fixture struct {
	t    *testing.T
	j    *Jail
	base string // host directory holding home and, in escape tests, outside
	home string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	base := t.TempDir()
	home := filepath.Join(base, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	j, err := Open(home)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return &fixture{t: t, j: j, base: base, home: home}
}

// host returns the host path of the home-relative slash path rel.
func (fx *fixture) host(rel string) string {
	return filepath.Join(fx.home, filepath.FromSlash(rel))
}

func (fx *fixture) write(rel, content string) {
	fx.t.Helper()
	p := fx.host(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		fx.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		fx.t.Fatal(err)
	}
}

func (fx *fixture) mkdir(rel string) {
	fx.t.Helper()
	if err := os.MkdirAll(fx.host(rel), 0o755); err != nil {
		fx.t.Fatal(err)
	}
}

func (fx *fixture) symlink(target, rel string) {
	fx.t.Helper()
	if err := os.Symlink(target, fx.host(rel)); err != nil {
		fx.t.Fatal(err)
	}
}

func (fx *fixture) read(rel string) string {
	fx.t.Helper()
	b, err := os.ReadFile(fx.host(rel))
	if err != nil {
		fx.t.Fatal(err)
	}
	return string(b)
}

func (fx *fixture) exists(rel string) bool {
	_, err := os.Lstat(fx.host(rel))
	return err == nil
}

// check fails the test unless err matches want (nil: no error). Every error
// must be an *fs.PathError that does not mention the host directory.
func (fx *fixture) check(err, want error) {
	fx.t.Helper()
	checkErr(fx.t, fx.base, err, want)
}

// checkErr is fixture.check for subtests.
func checkErr(t *testing.T, base string, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
	noHostPath(t, err, base)
}

// noHostPath fails the test if err is not an *fs.PathError or leaks base.
func noHostPath(t *testing.T, err error, base string) {
	t.Helper()
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		t.Errorf("error %v (%T) is not an *fs.PathError", err, err)
	}
	if strings.Contains(err.Error(), base) {
		t.Errorf("error %q contains the host path %s", err, base)
	}
}

func TestOpenJail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "missing"), file} {
		if j, err := Open(p); err == nil {
			j.Close()
			t.Errorf("Open(%s) succeeded", p)
		}
	}
}

func TestClosedJail(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("a", "x")
	if err := fx.j.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := fx.j.Stat("/a")
	fx.check(err, fs.ErrClosed)
}

func TestStatLstat(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("docs/a.txt", "hello")
	fx.symlink("docs/a.txt", "link")
	fx.symlink("../docs", "docs/self") // relative, stays inside
	fx.symlink("missing", "dangling")

	tests := []struct {
		name     string
		lstat    bool
		vpath    string
		wantMode fs.FileMode // type bits
		wantSize int64
		wantErr  error
	}{
		{name: "file", vpath: "/docs/a.txt", wantSize: 5},
		{name: "dir", vpath: "/docs", wantMode: fs.ModeDir},
		{name: "root", vpath: "/", wantMode: fs.ModeDir},
		{name: "follows inside link", vpath: "/link", wantSize: 5},
		{name: "follows inside dir link", vpath: "/docs/self/self/a.txt", wantSize: 5},
		{name: "lstat link", lstat: true, vpath: "/link", wantMode: fs.ModeSymlink},
		{name: "lstat file", lstat: true, vpath: "/docs/a.txt", wantSize: 5},
		{name: "lstat dangling", lstat: true, vpath: "/dangling", wantMode: fs.ModeSymlink},
		{name: "missing", vpath: "/nope", wantErr: fs.ErrNotExist},
		{name: "dangling", vpath: "/dangling", wantErr: fs.ErrNotExist},
		{name: "below file", vpath: "/docs/a.txt/x", wantErr: syscall.ENOTDIR},
		{name: "lstat missing", lstat: true, vpath: "/nope", wantErr: fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stat := fx.j.Stat
			if tt.lstat {
				stat = fx.j.Lstat
			}
			fi, err := stat(tt.vpath)
			if tt.wantErr != nil {
				checkErr(t, fx.base, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != tt.wantMode {
				t.Errorf("mode = %v, want type %v", fi.Mode(), tt.wantMode)
			}
			if tt.wantSize != 0 && fi.Size() != tt.wantSize {
				t.Errorf("size = %d, want %d", fi.Size(), tt.wantSize)
			}
		})
	}
}

func TestReadDir(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("docs/b.txt", "bb")
	fx.write("docs/a.txt", "a")
	fx.write("docs/文档.txt", "")
	fx.write("docs/"+tempPrefix+"0123456789abcdef", "partial upload")
	fx.write("docs/.qftp-other", "")
	fx.write(`docs/back\slash`, "")
	fx.write("docs/bad\xffutf8", "")
	fx.write("docs/.hidden", "")
	fx.mkdir("docs/sub")
	fx.symlink("a.txt", "docs/link")
	fx.write("file", "")
	if err := syscall.Mkfifo(fx.host("fifo"), 0o644); err != nil {
		t.Fatal(err)
	}

	infos, err := fx.j.ReadDir("/docs")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fi := range infos {
		names = append(names, fi.Name())
	}
	want := []string{".hidden", "a.txt", "b.txt", "link", "sub", "文档.txt"}
	if !slices.Equal(names, want) {
		t.Errorf("names = %q, want %q", names, want)
	}
	for _, fi := range infos {
		switch fi.Name() {
		case "link":
			if fi.Mode().Type() != fs.ModeSymlink {
				t.Errorf("link mode = %v, want symlink (Lstat)", fi.Mode())
			}
		case "b.txt":
			if fi.Size() != 2 {
				t.Errorf("b.txt size = %d", fi.Size())
			}
		case "sub":
			if !fi.IsDir() {
				t.Errorf("sub mode = %v", fi.Mode())
			}
		}
	}

	root, err := fx.j.ReadDir("/")
	if err != nil {
		t.Fatal(err)
	}
	if len(root) != 3 {
		t.Errorf("ReadDir(/) = %d entries, want 3", len(root))
	}

	errTests := []struct {
		vpath string
		want  error
	}{
		{"/file", syscall.ENOTDIR},
		{"/fifo", syscall.ENOTDIR},
		{"/missing", fs.ErrNotExist},
		{"/docs/", ErrInvalidPath},
	}
	for _, tt := range errTests {
		_, err := fx.j.ReadDir(tt.vpath)
		fx.check(err, tt.want)
	}
}

func TestMkdir(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("file", "")
	fx.mkdir("dir")
	fx.symlink("dir", "dirlink")
	tests := []struct {
		vpath   string
		parents bool
		want    error
	}{
		{"/new", false, nil},
		{"/dir/新しい", false, nil},
		{"/dir", false, fs.ErrExist},
		{"/file", false, fs.ErrExist},
		{"/", false, fs.ErrExist},
		{"/a/b/c", false, fs.ErrNotExist},
		{"/file/x", false, syscall.ENOTDIR},
		{"/p/q/r", true, nil},
		{"/dir", true, nil},
		{"/dirlink", true, nil},
		{"/dirlink/via", true, nil},
		{"/", true, nil},
		{"/file", true, fs.ErrExist}, // as mkdir -p
		{"/file/x/y", true, syscall.ENOTDIR},
		{"/.qftp-x", true, ErrInvalidPath},
		{"relative", true, ErrInvalidPath},
	}
	for _, tt := range tests {
		err := fx.j.Mkdir(tt.vpath, tt.parents)
		if tt.want != nil {
			fx.check(err, tt.want)
			continue
		}
		if err != nil {
			t.Errorf("Mkdir(%q, %v) = %v", tt.vpath, tt.parents, err)
			continue
		}
		if fi, err := fx.j.Stat(tt.vpath); err != nil || !fi.IsDir() {
			t.Errorf("after Mkdir(%q): Stat = %v, %v", tt.vpath, fi, err)
		}
	}
	if !fx.exists("dir/via") {
		t.Error("Mkdir through an inside symlink did not create dir/via")
	}
}

func TestRemoveRmdir(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("file", "x")
	fx.write("target", "t")
	fx.symlink("target", "link")
	fx.symlink("full", "dirlink")
	fx.mkdir("empty")
	fx.write("full/f", "")
	fx.write("hasTemp/"+tempPrefix+"0123456789abcdef", "")

	tests := []struct {
		name  string
		rmdir bool
		vpath string
		want  error
		gone  string // host path gone afterwards
		kept  string // host path kept afterwards
	}{
		{name: "file", vpath: "/file", gone: "file"},
		{name: "symlink only", vpath: "/link", gone: "link", kept: "target"},
		{name: "dir link only", vpath: "/dirlink", gone: "dirlink", kept: "full/f"},
		{name: "dir", vpath: "/empty", want: syscall.EISDIR, kept: "empty"},
		{name: "root", vpath: "/", want: syscall.EISDIR},
		{name: "missing", vpath: "/missing", want: fs.ErrNotExist},
		{name: "trailing slash", vpath: "/target/", want: ErrInvalidPath, kept: "target"},
		{name: "rmdir empty", rmdir: true, vpath: "/empty", gone: "empty"},
		{name: "rmdir file", rmdir: true, vpath: "/target", want: syscall.ENOTDIR, kept: "target"},
		{name: "rmdir non-empty", rmdir: true, vpath: "/full", want: syscall.ENOTEMPTY, kept: "full/f"},
		{name: "rmdir hidden temp", rmdir: true, vpath: "/hasTemp", want: syscall.ENOTEMPTY},
		{name: "rmdir root", rmdir: true, vpath: "/", want: fs.ErrPermission},
		{name: "rmdir missing", rmdir: true, vpath: "/missing", want: fs.ErrNotExist},
	}
	// Sequential: cases share the tree.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			remove := fx.j.Remove
			if tt.rmdir {
				remove = fx.j.Rmdir
			}
			fx := &fixture{t: t, j: fx.j, base: fx.base, home: fx.home}
			err := remove(tt.vpath)
			if tt.want != nil {
				fx.check(err, tt.want)
			} else if err != nil {
				t.Fatal(err)
			}
			if tt.gone != "" && fx.exists(tt.gone) {
				t.Errorf("%s still exists", tt.gone)
			}
			if tt.kept != "" && !fx.exists(tt.kept) {
				t.Errorf("%s was removed", tt.kept)
			}
		})
	}
}

func TestRename(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		from, to  string
		overwrite bool
		want      error
		check     map[string]string // host path -> content after; "" means must not exist, "dir" a directory
	}{
		{name: "file", from: "/a", to: "/new", check: map[string]string{"a": "", "new": "A"}},
		{name: "file into dir", from: "/a", to: "/d/a", check: map[string]string{"a": "", "d/a": "A"}},
		{name: "file exists", from: "/a", to: "/b", want: fs.ErrExist, check: map[string]string{"a": "A", "b": "B"}},
		{name: "file overwrite", from: "/a", to: "/b", overwrite: true, check: map[string]string{"a": "", "b": "A"}},
		{name: "file onto dir", from: "/a", to: "/d", want: fs.ErrExist, check: map[string]string{"a": "A"}},
		{name: "file onto dir overwrite", from: "/a", to: "/d", overwrite: true, want: fs.ErrExist, check: map[string]string{"a": "A", "d/x": "X"}},
		{name: "dir", from: "/d", to: "/e", check: map[string]string{"d": "", "e/x": "X"}},
		{name: "dir exists", from: "/d", to: "/empty", want: fs.ErrExist, check: map[string]string{"d/x": "X", "empty": "dir"}},
		{name: "dir onto file", from: "/d", to: "/a", want: fs.ErrExist, check: map[string]string{"d/x": "X", "a": "A"}},
		{name: "dir overwrite file", from: "/d", to: "/a", overwrite: true, want: syscall.ENOTDIR, check: map[string]string{"d/x": "X", "a": "A"}},
		{name: "dir into itself", from: "/d", to: "/d/sub", want: fs.ErrInvalid, check: map[string]string{"d/x": "X"}},
		{name: "dir into itself overwrite", from: "/d", to: "/d/sub/deeper", overwrite: true, want: syscall.EINVAL},
		{name: "dir into itself via link", from: "/d", to: "/dlink/sub", want: syscall.EINVAL, check: map[string]string{"d/x": "X"}},
		{name: "file into itself", from: "/a", to: "/a/b", want: syscall.ENOTDIR, check: map[string]string{"a": "A"}},
		{name: "dir to sibling prefix", from: "/d", to: "/dd", check: map[string]string{"dd/x": "X"}},
		{name: "symlink moves link", from: "/alink", to: "/blink", check: map[string]string{"alink": "", "blink": "A", "a": "A"}},
		{name: "same path", from: "/a", to: "/a", want: fs.ErrExist, check: map[string]string{"a": "A"}},
		{name: "same path overwrite", from: "/a", to: "/a", overwrite: true, check: map[string]string{"a": "A"}},
		{name: "missing source", from: "/missing", to: "/new", want: fs.ErrNotExist},
		{name: "missing target dir", from: "/a", to: "/nodir/a", want: fs.ErrNotExist, check: map[string]string{"a": "A"}},
		{name: "root", from: "/", to: "/x", want: fs.ErrPermission},
		{name: "onto root", from: "/a", to: "/", overwrite: true, want: fs.ErrPermission, check: map[string]string{"a": "A"}},
		{name: "to reserved", from: "/a", to: "/" + tempPrefix + "0123456789abcdef", overwrite: true, want: ErrInvalidPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t)
			fx.write("a", "A")
			fx.write("b", "B")
			fx.write("d/x", "X")
			fx.mkdir("empty")
			fx.symlink("a", "alink")
			fx.symlink("d", "dlink")
			err := fx.j.Rename(tt.from, tt.to, tt.overwrite)
			if tt.want != nil {
				fx.check(err, tt.want)
			} else if err != nil {
				t.Fatal(err)
			}
			for rel, want := range tt.check {
				switch {
				case want == "" && fx.exists(rel):
					t.Errorf("%s exists", rel)
				case want == "dir":
					if fi, err := os.Stat(fx.host(rel)); err != nil || !fi.IsDir() {
						t.Errorf("%s: not a directory: %v", rel, err)
					}
				case want != "":
					if got := fx.read(rel); got != want {
						t.Errorf("%s = %q, want %q", rel, got, want)
					}
				}
			}
		})
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("docs/a.txt", "hello")
	fx.symlink("docs/a.txt", "link")
	fx.mkdir("dir")

	f, fi, err := fx.j.Open("/docs/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil || string(b) != "hello" {
		t.Errorf("read %q, %v", b, err)
	}
	if fi.Name() != "a.txt" || fi.Size() != 5 || !fi.Mode().IsRegular() {
		t.Errorf("info = %s %d %v", fi.Name(), fi.Size(), fi.Mode())
	}
	if f.Name() != "/docs/a.txt" {
		t.Errorf("Name() = %q, want the virtual path", f.Name())
	}
	// Errors from the file itself must not name the host path either.
	_, err = f.Write([]byte("x"))
	if err == nil {
		t.Fatal("write to a read-only file succeeded")
	}
	noHostPath(t, err, fx.base)

	f2, _, err := fx.j.Open("/link")
	if err != nil {
		t.Fatal(err)
	}
	f2.Close()

	tests := []struct {
		vpath string
		want  error
	}{
		{"/dir", ErrNotRegular},
		{"/dir", syscall.EISDIR},
		{"/", syscall.EISDIR},
		{"/missing", fs.ErrNotExist},
		{"/docs/a.txt/x", syscall.ENOTDIR},
		{"/docs/../docs/a.txt", ErrInvalidPath},
	}
	for _, tt := range tests {
		f, _, err := fx.j.Open(tt.vpath)
		if f != nil {
			f.Close()
		}
		fx.check(err, tt.want)
	}
}

func TestOpenFIFO(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	if err := syscall.Mkfifo(fx.host("fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		f, _, err := fx.j.Open("/fifo")
		if f != nil {
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		fx.check(err, ErrNotRegular)
	case <-time.After(10 * time.Second):
		// The goroutine stays blocked in open; writing to the FIFO would
		// release it, but the test has failed either way.
		t.Fatal("Open on a FIFO blocked")
	}
}

var tempNameRE = regexp.MustCompile(`^(/[^/]+)*/\.qftp-tmp-[0-9a-f]{16}$`)

// createTemp makes a temp file in dir holding content and closes it.
func (fx *fixture) createTemp(dir, content string) string {
	fx.t.Helper()
	f, tmp, err := fx.j.CreateTemp(dir)
	if err != nil {
		fx.t.Fatal(err)
	}
	if !tempNameRE.MatchString(tmp) {
		fx.t.Errorf("temp path %q has the wrong form", tmp)
	}
	if f.Name() != tmp {
		fx.t.Errorf("temp file Name() = %q, want %q", f.Name(), tmp)
	}
	if _, err := f.WriteString(content); err != nil {
		fx.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		fx.t.Fatal(err)
	}
	return tmp
}

func TestCreateTemp(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.mkdir("docs")
	fx.write("file", "")
	tmp := fx.createTemp("/docs", "data")
	fi, err := os.Lstat(fx.host(tmp))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 {
		t.Errorf("temp mode = %v, want 0600", fi.Mode())
	}
	tmp2 := fx.createTemp("/docs", "")
	if tmp2 == tmp {
		t.Error("two temp files got the same name")
	}
	infos, err := fx.j.ReadDir("/docs")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 0 {
		t.Errorf("ReadDir shows temp files: %v", infos)
	}
	_, err = fx.j.Stat(tmp)
	fx.check(err, ErrInvalidPath)

	for _, tt := range []struct {
		dir  string
		want error
	}{
		{"/missing", fs.ErrNotExist},
		{"/file", syscall.ENOTDIR},
		{"docs", ErrInvalidPath},
	} {
		f, _, err := fx.j.CreateTemp(tt.dir)
		if f != nil {
			f.Close()
		}
		fx.check(err, tt.want)
	}
}

func TestCommit(t *testing.T) {
	t.Parallel()
	mtime := time.Date(2024, 2, 29, 12, 30, 0, 0, time.UTC)
	tests := []struct {
		name      string
		dst       string
		overwrite bool
		mtime     time.Time
		want      error
		wantDst   string // content at dst afterwards
	}{
		{name: "new", dst: "/docs/new.txt", wantDst: "NEW"},
		{name: "new with mtime", dst: "/docs/new.txt", mtime: mtime, wantDst: "NEW"},
		{name: "new overwrite", dst: "/docs/new.txt", overwrite: true, mtime: mtime, wantDst: "NEW"},
		{name: "other dir", dst: "/top.txt", wantDst: "NEW"},
		{name: "exists", dst: "/docs/old.txt", want: fs.ErrExist, wantDst: "OLD"},
		{name: "exists overwrite", dst: "/docs/old.txt", overwrite: true, wantDst: "NEW"},
		{name: "replaces symlink not target", dst: "/docs/link", overwrite: true, wantDst: "NEW"},
		{name: "dir overwrite", dst: "/docs/dir", overwrite: true, want: syscall.EISDIR},
		{name: "dir", dst: "/docs/dir", want: fs.ErrExist},
		{name: "missing dir", dst: "/nodir/x", want: fs.ErrNotExist},
		{name: "root", dst: "/", overwrite: true, want: syscall.EISDIR},
		{name: "reserved", dst: "/docs/.qftp-x", want: ErrInvalidPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t)
			fx.write("docs/old.txt", "OLD")
			fx.mkdir("docs/dir")
			fx.symlink("old.txt", "docs/link")
			tmp := fx.createTemp("/docs", "NEW")

			err := fx.j.Commit(tmp, tt.dst, tt.overwrite, tt.mtime)
			if tt.want != nil {
				fx.check(err, tt.want)
				if !fx.exists(tmp) {
					t.Fatal("failed Commit removed the temp file")
				}
				if err := fx.j.RemoveTemp(tmp); err != nil {
					t.Fatal(err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if fx.exists(tmp) {
				t.Error("temp file still exists")
			}
			if tt.wantDst != "" {
				if got := fx.read(tt.dst); got != tt.wantDst {
					t.Errorf("%s = %q, want %q", tt.dst, got, tt.wantDst)
				}
			}
			if fx.read("docs/old.txt") != "OLD" && tt.dst != "/docs/old.txt" {
				t.Error("Commit changed an unrelated file")
			}
			if tt.want != nil {
				return
			}
			fi, err := os.Lstat(fx.host(tt.dst))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != 0o644 {
				t.Errorf("mode = %v, want 0644", fi.Mode())
			}
			switch {
			case !tt.mtime.IsZero() && !fi.ModTime().Equal(tt.mtime):
				t.Errorf("mtime = %v, want %v", fi.ModTime(), tt.mtime)
			case tt.mtime.IsZero() && time.Since(fi.ModTime()) > time.Hour:
				t.Errorf("mtime = %v, want about now", fi.ModTime())
			}
		})
	}
}

func TestRemoveTemp(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("docs/a.txt", "")
	fx.mkdir("docs/" + tempPrefix + "00000000000000ff")
	tmp := fx.createTemp("/docs", "x")
	if err := fx.j.RemoveTemp(tmp); err != nil {
		t.Fatal(err)
	}
	if fx.exists(tmp) {
		t.Error("temp file still exists")
	}
	tests := []struct {
		vpath string
		want  error
	}{
		{tmp, fs.ErrNotExist},
		{"/docs/a.txt", ErrInvalidPath},
		{"/docs", ErrInvalidPath},
		{"/", ErrInvalidPath},
		{"/docs/.qftp-state", ErrInvalidPath},
		{"/docs/../" + tempPrefix + "0123456789abcdef", ErrInvalidPath},
		{"/docs/" + tempPrefix + "00000000000000ff", ErrNotRegular},
	}
	for _, tt := range tests {
		fx.check(fx.j.RemoveTemp(tt.vpath), tt.want)
	}
	if !fx.exists("docs/a.txt") {
		t.Error("RemoveTemp removed a user file")
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	if n, err := fx.j.Usage(); err != nil || n != 0 {
		t.Fatalf("empty home: Usage = %d, %v", n, err)
	}
	fx.write("a", "12345")
	fx.write("docs/b", "123")
	fx.write("docs/deep/er/c", "1234567890")
	fx.write("docs/"+tempPrefix+"0123456789abcdef", "12")
	fx.mkdir("empty")
	outside := filepath.Join(fx.base, "big")
	if err := os.WriteFile(outside, make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	fx.symlink(outside, "outlink")
	fx.symlink("docs", "dirlink") // not followed, or docs would count twice
	fx.symlink("a", "filelink")
	if err := syscall.Mkfifo(fx.host("fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := fx.j.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(5 + 3 + 10 + 2); n != want {
		t.Errorf("Usage = %d, want %d", n, want)
	}
}

// TestUnresolvedPathsRefused checks that every method re-validates its path.
func TestUnresolvedPathsRefused(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("a", "A")
	fx.write("docs/b", "B")
	_, err := fx.j.Stat("")
	fx.check(err, ErrInvalidPath)
	for _, p := range []string{"a", "/a/", "//a", "/./a", "/docs/../a", "/../a", "/a\x00", `/a\b`, "/\xff", "/" + ReservedPrefix + "x"} {
		for name, call := range methodsOn("/a", p) {
			err := call(fx.j)
			if !errors.Is(err, ErrInvalidPath) && !errors.Is(err, ErrEscapes) {
				t.Errorf("%s(%q) = %v, want ErrInvalidPath", name, p, err)
			}
			noHostPath(t, err, fx.base)
		}
	}
	if fx.read("a") != "A" || fx.read("docs/b") != "B" {
		t.Error("files changed")
	}
}

// methodsOn returns a call of every Jail method on p; methods with two paths
// use p for each side in turn, with src (an existing file) for the other.
func methodsOn(src, p string) map[string]func(*Jail) error {
	ignore := func(_ any, err error) error { return err }
	return map[string]func(*Jail) error{
		"Stat":             func(j *Jail) error { return ignore(j.Stat(p)) },
		"Lstat":            func(j *Jail) error { return ignore(j.Lstat(p)) },
		"ReadDir":          func(j *Jail) error { return ignore(j.ReadDir(p)) },
		"Mkdir":            func(j *Jail) error { return j.Mkdir(p, false) },
		"MkdirAll":         func(j *Jail) error { return j.Mkdir(p, true) },
		"Remove":           func(j *Jail) error { return j.Remove(p) },
		"Rmdir":            func(j *Jail) error { return j.Rmdir(p) },
		"RenameFrom":       func(j *Jail) error { return j.Rename(p, "/moved", false) },
		"RenameFromOver":   func(j *Jail) error { return j.Rename(p, "/moved", true) },
		"RenameTo":         func(j *Jail) error { return j.Rename(src, p, false) },
		"RenameToOver":     func(j *Jail) error { return j.Rename(src, p, true) },
		"Open":             func(j *Jail) error { return closeFile(j.Open(p)) },
		"CreateTemp":       func(j *Jail) error { return removeTemp(j)(j.CreateTemp(p)) },
		"Commit":           func(j *Jail) error { return commitTo(j, p, false) },
		"CommitOverwrite":  func(j *Jail) error { return commitTo(j, p, true) },
		"RemoveTemp":       func(j *Jail) error { return j.RemoveTemp(p) },
		"RemoveTempInside": func(j *Jail) error { return j.RemoveTemp(p + "/" + tempPrefix + "0123456789abcdef") },
	}
}

func closeFile(f *os.File, _ fs.FileInfo, err error) error {
	if f != nil {
		f.Close()
	}
	return err
}

// removeTemp returns a func that cleans up after a CreateTemp that should
// have failed.
func removeTemp(j *Jail) func(*os.File, string, error) error {
	return func(f *os.File, tmp string, err error) error {
		if f != nil {
			f.Close()
			_ = j.RemoveTemp(tmp)
		}
		return err
	}
}

// commitTo commits a fresh temp file in "/" to p and removes it on error.
func commitTo(j *Jail, p string, overwrite bool) error {
	f, tmp, err := j.CreateTemp("/")
	if err != nil {
		return err
	}
	f.Close()
	err = j.Commit(tmp, p, overwrite, time.Time{})
	if err != nil {
		if rmErr := j.RemoveTemp(tmp); rmErr != nil {
			return errors.Join(err, rmErr)
		}
	}
	return err
}
