//go:build linux

package session_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/qftp/qftp/fsjail"
	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/sessiontest"
)

// diskFullEnv names, in the child process of TestDiskFull, the directory
// under which it mounts its small file systems.
const diskFullEnv = "QFTP_TEST_DISKFULL"

// TestDiskFull fills the server's disk and then the client's, for real:
// the test runs again in a child process with a user and mount namespace
// of its own, where the server's data and the client's files live on small
// tmpfs mounts. It is skipped where the kernel allows no such namespace.
func TestDiskFull(t *testing.T) {
	if dir := os.Getenv(diskFullEnv); dir != "" {
		diskFull(t, dir)
		return
	}
	t.Parallel()
	dir := t.TempDir()
	for _, d := range []string{"srv", "cli"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestDiskFull$", "-test.count=1", "-test.v", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), diskFullEnv+"="+dir, "TMPDIR="+filepath.Join(dir, "srv"))
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	if err != nil && cmd.ProcessState == nil {
		t.Skipf("no user and mount namespace here: %v", err)
	}
	if i := bytes.Index(out, []byte("--- SKIP")); i >= 0 {
		t.Skipf("child skipped: %s", out[i:])
	}
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestDiskFull")) {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// diskFull is TestDiskFull in its namespace.
func diskFull(t *testing.T, dir string) {
	srvDir, cliDir := filepath.Join(dir, "srv"), filepath.Join(dir, "cli")
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		t.Skipf("make mounts private: %v", err)
	}
	for _, m := range []string{srvDir, cliDir} {
		if err := syscall.Mount("tmpfs", m, "tmpfs", 0, "size=32m"); err != nil {
			t.Skipf("mount tmpfs: %v", err)
		}
		// Registered first, so it runs after the server's and the
		// temp dirs' cleanups.
		t.Cleanup(func() { _ = syscall.Unmount(m, syscall.MNT_DETACH) })
	}
	const mib = 1 << 20
	ts := sessiontest.Start(t) // its data and homes are on srvDir (TMPDIR)
	c, home := ts.User(t, "ann")
	ctx := t.Context()
	src := filepath.Join(cliDir, "a")
	sessiontest.WriteFile(t, src, bytes.Repeat([]byte("0123456789abcdef"), 20*mib/16))

	// 20 of the server's 32 MiB taken: a second copy does not fit.
	if _, err := c.Put(ctx, src, "a", session.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Put(ctx, src, "b", session.TransferOptions{})
	if err == nil || !strings.Contains(err.Error(), "no space left on server") {
		t.Fatalf("put to a full disk: %v", err)
	}
	if _, _, err := c.Stat(ctx, "b"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat of the failed upload: %v", err)
	}
	// The ledger counts what is on disk: the file and the partial upload
	// kept for a resume (journals are not counted).
	var onDisk int64
	if err := filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), fsjail.ReservedPrefix+"meta-") {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			onDisk += fi.Size()
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if u, err := c.Df(ctx); err != nil || u.Used != onDisk {
		t.Fatalf("df = %+v, %v; %d bytes on disk", u, err, onDisk)
	}

	// 20 of the client's 32 MiB taken: a download of 20 more fails before
	// any data moves, and leaves nothing behind.
	var moved atomic.Int64
	_, err = c.Get(ctx, "a", filepath.Join(cliDir, "a2"), session.TransferOptions{
		Progress: func(done, total int64) { moved.Store(max(moved.Load(), done)) },
	})
	if err == nil || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no room for 20 MiB") {
		t.Fatalf("get to a full disk: %v", err)
	}
	if moved.Load() != 0 {
		t.Fatalf("the get moved %d bytes before it failed", moved.Load())
	}
	if ents, err := os.ReadDir(cliDir); err != nil || len(ents) != 1 {
		t.Fatalf("client dir after the failed get: %v, %v", ents, err)
	}
	// A file too small to preallocate fails as it writes.
	sessiontest.WriteFile(t, filepath.Join(home, "small"), bytes.Repeat([]byte("s"), 900<<10))
	fill, err := os.Create(filepath.Join(cliDir, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	for range 64 { // tmpfs: fill it to within a few pages
		if _, err := fill.Write(make([]byte, 256<<10)); err != nil {
			break
		}
	}
	for {
		if _, err := fill.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	_ = fill.Close()
	_, err = c.Get(ctx, "small", filepath.Join(cliDir, "small"), session.TransferOptions{})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("small get to a full disk: %v", err)
	}
	// It has no journal to resume from: nothing of it stays.
	if ents, err := os.ReadDir(cliDir); err != nil || len(ents) != 2 {
		t.Fatalf("client dir after the failed small get: %v, %v", ents, err)
	}
	if err := os.Remove(filepath.Join(cliDir, "fill")); err != nil {
		t.Fatal(err)
	}

	// The server serves on, and the space comes back with the partial.
	if err := c.Remove(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, src, "b", session.TransferOptions{}); err != nil {
		t.Fatalf("put after freeing space: %v", err)
	}
	if u, err := c.Df(ctx); err != nil || u.Used != 20*mib {
		t.Fatalf("df after the resumed upload = %+v, %v", u, err)
	}
}
