//go:build unix

package fsjail

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const secret = "SECRET outside the home"

// escapeFixture is a home next to a directory "outside" holding secret.txt and
// sub/, with symlinks planted in the home that point out of it.
func escapeFixture(t *testing.T) (*fixture, string) {
	t.Helper()
	fx := newFixture(t)
	outside := filepath.Join(fx.base, "outside")
	if err := os.MkdirAll(filepath.Join(outside, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	fx.write("inside.txt", "inside")
	fx.write("docs/a.txt", "a")
	fx.symlink(outside, "abs")                          // absolute, to a dir outside
	fx.symlink("/etc", "etc")                           // absolute, system dir
	fx.symlink(filepath.Join(fx.home, "docs"), "absin") // absolute, even pointing inside
	fx.symlink("../outside", "rel")                     // relative, out by ..
	fx.symlink("../outside/secret.txt", "relfile")      // relative, to a file outside
	fx.symlink("../../outside", "docs/up")              // from a subdirectory
	fx.symlink("docs/../../outside", "detour")          // in, then out
	fx.symlink("chain2", "chain1")                      // chain1 -> chain2 -> chain3 -> outside
	fx.symlink("docs/chain3", "chain2")                 //
	fx.symlink("../../outside", "docs/chain3")          //
	fx.symlink("loop2", "loop1")                        // loop1 <-> loop2
	fx.symlink("loop1", "loop2")                        //
	fx.symlink("docs", "good")                          // inside: works
	return fx, outside
}

// outsideState lists the outside tree, to show nothing there changed.
func outsideState(t *testing.T, outside string) []string {
	t.Helper()
	var state []string
	err := filepath.WalkDir(outside, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		state = append(state, p)
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			state = append(state, string(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// TestEscapes calls every method on client paths that leave the home and
// expects ErrEscapes each time, either from Resolve or from the method.
func TestEscapes(t *testing.T) {
	t.Parallel()
	paths := []string{
		"../outside/secret.txt",
		"../../../../etc/passwd",
		"docs/../../outside",
		"/abs/secret.txt",
		"/abs/sub",
		"/abs/new",
		"/etc/passwd",
		"/absin/a.txt",
		"/rel/secret.txt",
		"/rel/sub/",
		"/docs/up/secret.txt",
		"/docs/up/sub/deeper",
		"/detour/secret.txt",
		"/chain1/secret.txt",
		"/loop1/x",
		// The link itself, for the methods that follow it (see below).
		"abs",
		"abs/",
		"rel/",
		"relfile",
		"docs/up/",
		"chain1",
		"loop1",
	}
	// Methods that act on a link itself rather than its target may succeed
	// on the link; they must still refuse paths through it.
	onLinkItself := []string{"Lstat", "Remove", "Rmdir", "Mkdir", "RenameFrom", "RenameFromOver", "RenameTo", "RenameToOver", "Commit", "CommitOverwrite"}

	for _, raw := range paths {
		t.Run(raw, func(t *testing.T) {
			t.Parallel()
			fx, outside := escapeFixture(t)
			before := outsideState(t, outside)
			vpath, err := Resolve("/", raw)
			if err != nil {
				checkErr(t, fx.base, err, ErrEscapes)
				return
			}
			fi, err := os.Lstat(fx.host(vpath))
			isLink := err == nil && fi.Mode().Type() == fs.ModeSymlink
			for name, call := range methodsOn("/inside.txt", vpath) {
				// RemoveTemp refuses non-temp names before any lookup;
				// RemoveTempInside covers it.
				if name == "RemoveTemp" || isLink && slices.Contains(onLinkItself, name) {
					continue
				}
				err := call(fx.j)
				if !errors.Is(err, ErrEscapes) || !errors.Is(err, fs.ErrPermission) {
					t.Errorf("%s(%q) = %v, want ErrEscapes", name, vpath, err)
					continue
				}
				noHostPath(t, err, fx.base)
			}
			if after := outsideState(t, outside); !slices.Equal(before, after) {
				t.Errorf("outside changed:\n%q\n%q", before, after)
			}
			if fx.read("inside.txt") != "inside" {
				t.Error("inside.txt changed")
			}
		})
	}
}

// TestEscapeLinkItself shows that the link itself can be inspected, renamed
// and removed, which touches nothing outside.
func TestEscapeLinkItself(t *testing.T) {
	t.Parallel()
	fx, outside := escapeFixture(t)
	before := outsideState(t, outside)
	fi, err := fx.j.Lstat("/abs")
	if err != nil || fi.Mode().Type() != fs.ModeSymlink {
		t.Fatalf("Lstat(/abs) = %v, %v", fi, err)
	}
	if err := fx.j.Rename("/relfile", "/relfile2", false); err != nil {
		t.Fatal(err)
	}
	_, err = fx.j.Stat("/relfile2")
	fx.check(err, ErrEscapes)
	fx.check(fx.j.Rmdir("/abs"), syscall.ENOTDIR)
	fx.check(fx.j.Mkdir("/abs", false), fs.ErrExist)
	for _, p := range []string{"/abs", "/relfile2", "/chain1", "/loop1"} {
		if err := fx.j.Remove(p); err != nil {
			t.Errorf("Remove(%s) = %v", p, err)
		}
	}
	if after := outsideState(t, outside); !slices.Equal(before, after) {
		t.Errorf("outside changed:\n%q\n%q", before, after)
	}
}

// TestInsideLinks checks that symlinks staying inside the home work.
func TestInsideLinks(t *testing.T) {
	t.Parallel()
	fx, _ := escapeFixture(t)
	f, _, err := fx.j.Open("/good/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if b, _ := io.ReadAll(f); string(b) != "a" {
		t.Errorf("read %q", b)
	}
	if _, err := fx.j.ReadDir("/good"); err != nil {
		t.Error(err)
	}
	tmp := fx.createTemp("/good", "new")
	if err := fx.j.Commit(tmp, "/good/new.txt", false, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if fx.read("docs/new.txt") != "new" {
		t.Error("commit through an inside link went elsewhere")
	}
}

// TestSwapRace replaces a directory with a symlink to outside while another
// goroutine reads through it. os.Root resolves each component from held
// descriptors, so no read may ever see the outside file.
func TestSwapRace(t *testing.T) {
	t.Parallel()
	fx, outside := escapeFixture(t)
	if err := os.WriteFile(filepath.Join(outside, "f"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "only-outside"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	before := outsideState(t, outside)
	fx.write("d/f", "INSIDE")
	d, parked := fx.host("d"), fx.host("d.parked")
	targets := []string{outside, "../outside"}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// Errors are ignored: the jail may hold d busy or be creating in it.
			_ = os.Rename(d, parked)
			_ = os.Symlink(targets[i%2], d)
			_ = os.Remove(d)
			_ = os.Rename(parked, d)
		}
	})

	// The paths are resolved already, as the session would; only the file
	// system changes underneath.
	const rounds = 200
	var opened, escapes int
	for range rounds {
		f, _, err := fx.j.Open("/d/f")
		if err == nil {
			opened++
			b, _ := io.ReadAll(f)
			f.Close()
			if strings.Contains(string(b), "SECRET") {
				t.Fatal("Open read the outside file")
			}
		} else if errors.Is(err, ErrEscapes) {
			escapes++
		}
		if infos, err := fx.j.ReadDir("/d"); err == nil {
			for _, fi := range infos {
				if fi.Name() == "only-outside" || fi.Name() == "secret.txt" {
					t.Fatalf("ReadDir listed outside entry %s", fi.Name())
				}
			}
		}
		if fi, err := fx.j.Stat("/d/secret.txt"); err == nil {
			t.Fatalf("Stat saw outside file: %v", fi.Name())
		}
		_ = fx.j.Mkdir("/d/made", false)
		_ = commitTo(fx.j, "/d/committed", true)
		_ = fx.j.Remove("/d/secret.txt")
	}
	close(stop)
	wg.Wait()
	// How often the race was hit, for judging whether the test still bites.
	t.Logf("%d rounds: %d opened inside, %d refused as escapes", rounds, opened, escapes)

	if after := outsideState(t, outside); !slices.Equal(before, after) {
		t.Errorf("outside changed:\n%q\n%q", before, after)
	}
}

// TestEscapeMsg pins the text of os.Root's unexported escape error, which
// pathError matches by message.
func TestEscapeMsg(t *testing.T) {
	t.Parallel()
	root, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	_, err = root.Stat("../x")
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Err.Error() != escapeMsg {
		t.Fatalf("os.Root escape error = %v, want text %q", err, escapeMsg)
	}
}
