package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// binaries builds qftpd and qftp once per test run and returns their
// directory.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "qftp-bin-")
		if buildErr == nil {
			buildErr = buildBinaries(buildDir)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

// buildBinaries compiles qftpd and qftp into dir.
func buildBinaries(dir string) error {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	cmd := exec.Command(goBin, "build", "-o", dir+string(filepath.Separator), "github.com/qftp/qftp/cmd/qftpd", "github.com/qftp/qftp/cmd/qftp")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

type result struct {
	code   int
	stdout string
	stderr string
}

func runBin(t *testing.T, env []string, stdin string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return result{code, out.String(), errb.String()}
}

// TestBinaries builds qftpd and qftp and drives them as a user would.
func TestBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	t.Parallel()
	tmp := t.TempDir()
	bin := binaries(t)
	qftpd, qftp := filepath.Join(bin, "qftpd"), filepath.Join(bin, "qftp")
	data := filepath.Join(tmp, "data")

	if r := runBin(t, nil, "s3cret\n", qftpd, "--data", data, "user", "add", "alice", "--password-stdin", "--quota", "10MiB"); r.code != 0 {
		t.Fatalf("user add: %+v", r)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	srv := exec.CommandContext(ctx, qftpd, "--data", data, "serve", "--listen", "127.0.0.1:0", "--grace", "5s")
	stderr, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	// The server logs its address and fingerprint once it listens.
	listening := regexp.MustCompile(`msg=listening addr=(\S+) fingerprint=(\S+)`)
	sc := bufio.NewScanner(stderr)
	var addr, fp string
	var logTail []string
	for sc.Scan() {
		logTail = append(logTail, sc.Text())
		if m := listening.FindStringSubmatch(sc.Text()); m != nil {
			addr, fp = m[1], m[2]
			break
		}
	}
	if addr == "" {
		t.Fatalf("server did not report its address: %q", logTail)
	}
	logs := make(chan string, 1)
	go func() {
		var b strings.Builder
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
		}
		logs <- b.String()
	}()

	local := t.TempDir()
	src := filepath.Join(local, "report 2024.pdf")
	if err := os.WriteFile(src, bytes.Repeat([]byte("qftp"), 300_000), 0o644); err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(tmp, "known_hosts")
	env := []string{"QFTP_PASSWORD=s3cret"}
	q := func(stdin string, args ...string) result {
		t.Helper()
		return runBin(t, env, stdin, qftp, append([]string{"--known-hosts", kh}, args...)...)
	}
	target := "alice@" + addr

	if r := q("", target, "pwd"); r.code != 4 || !strings.Contains(r.stderr, fp) {
		t.Fatalf("unknown host: %+v", r)
	}
	if r := q("", "--accept-new-host", target, "put", src); r.code != 0 || !strings.Contains(r.stderr, "put ") {
		t.Fatalf("put: %+v", r)
	}
	if r := q("", target, "ls", "-l"); r.code != 0 || !strings.Contains(r.stdout, "report 2024.pdf") || !strings.Contains(r.stdout, "1200000") {
		t.Fatalf("ls: %+v", r)
	}
	dst := filepath.Join(local, "copy.pdf")
	if r := q("", target, "get", "report 2024.pdf", dst); r.code != 0 {
		t.Fatalf("get: %+v", r)
	}
	a, _ := os.ReadFile(src)
	b, _ := os.ReadFile(dst)
	if !bytes.Equal(a, b) {
		t.Fatal("round trip differs")
	}
	if r := q("mkdir d\ncd d\npwd\ncd /nope\npwd\n", target); r.code != 1 || r.stdout != "/d\n" || !strings.Contains(r.stderr, "cd /nope: no such file or directory") {
		t.Fatalf("script: %+v", r)
	}
	if r := q("", target, "df"); r.code != 0 || !strings.Contains(r.stdout, "10 MiB") {
		t.Fatalf("df: %+v", r)
	}
	if r := q("", target, "bogus"); r.code != 2 {
		t.Fatalf("bad command: %+v", r)
	}
	if r := runBin(t, []string{"QFTP_PASSWORD=wrong"}, "", qftp, "--known-hosts", kh, target, "pwd"); r.code != 3 {
		t.Fatalf("wrong password: %+v", r)
	}
	// A user added while the server runs can log in at once.
	if r := runBin(t, nil, "pw2\n", qftpd, "--data", data, "user", "add", "bob", "--password-stdin"); r.code != 0 {
		t.Fatalf("user add bob: %+v", r)
	}
	if r := runBin(t, []string{"QFTP_PASSWORD=pw2"}, "", qftp, "--known-hosts", kh, "bob@"+addr, "pwd"); r.code != 0 || r.stdout != "/\n" {
		t.Fatalf("bob: %+v", r)
	}

	// A get killed outright leaves nothing that stops the next one.
	killed := filepath.Join(local, "killed.pdf")
	get := exec.Command(qftp, "--known-hosts", kh, "--limit-rate", "100KiB", target, "get", "report 2024.pdf", killed)
	get.Env = append(os.Environ(), env...)
	if err := get.Start(); err != nil {
		t.Fatal(err)
	}
	if !waitOpenUnder(get.Process.Pid, local+string(filepath.Separator), 20*time.Second) {
		_ = get.Process.Kill()
		_ = get.Wait()
		t.Fatal("the get never opened its download")
	}
	_ = get.Process.Kill()
	_ = get.Wait()
	if r := q("", target, "get", "report 2024.pdf", killed); r.code != 0 {
		t.Fatalf("get after a killed get: %+v", r)
	}
	if b, _ := os.ReadFile(killed); !bytes.Equal(a, b) {
		t.Fatal("get after a killed get: copy differs")
	}

	// SIGHUP (as SIGTERM) stops the server cleanly, once a running get has
	// finished (--grace); a client connecting meanwhile is told why it
	// cannot.
	slow := exec.Command(qftp, "--known-hosts", kh, "--limit-rate", "250KiB", target, "get", "-f", "report 2024.pdf", killed)
	slow.Env = append(os.Environ(), env...)
	if err := slow.Start(); err != nil {
		t.Fatal(err)
	}
	if !waitOpenUnder(slow.Process.Pid, local+string(filepath.Separator), 20*time.Second) {
		_ = slow.Process.Kill()
		_ = slow.Wait()
		t.Fatal("the slow get never opened its download")
	}
	slowDone := make(chan error, 1)
	go func() { slowDone <- slow.Wait() }()
	if err := srv.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var late result
	for range 20 { // until the server has seen the signal; bounded
		if late = q("", "--retries", "1", "--connect-timeout", "5s", target, "pwd"); late.code != 0 {
			break
		}
	}
	if late.code == 0 || !strings.Contains(late.stderr, "shutting down") {
		t.Errorf("login while the server drains: %+v", late)
	}
	var slowErr error
	select {
	case slowErr = <-slowDone:
		t.Error("the login was answered only once the drain was over")
	default:
		slowErr = <-slowDone
	}
	if slowErr != nil {
		t.Errorf("get during the drain: %v", slowErr)
	}
	if b, _ := os.ReadFile(killed); !bytes.Equal(a, b) {
		t.Error("get during the drain: copy differs")
	}
	// All of the log first: Wait closes the pipe once the process is gone.
	out := <-logs
	if err := srv.Wait(); err != nil {
		t.Fatalf("server exit: %v", err)
	}
	for _, want := range []string{"msg=login remote=", "user=alice", "msg=\"login failed\"", "msg=put remote=", "vpath=\"/report 2024.pdf\" bytes=1200000", "msg=\"shutting down\" on=hangup", "msg=stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("server log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3cret") {
		t.Error("server log contains a password")
	}
}

// waitOpenUnder waits until process pid has a file open under dir (its
// download, named or not), looking every 10 ms up to limit.
func waitOpenUnder(pid int, dir string, limit time.Duration) bool {
	fds := fmt.Sprintf("/proc/%d/fd", pid)
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		ents, _ := os.ReadDir(fds)
		for _, e := range ents {
			if l, err := os.Readlink(filepath.Join(fds, e.Name())); err == nil && strings.HasPrefix(l, dir) {
				return true
			}
		}
	}
	return false
}
