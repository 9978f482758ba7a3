package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/qftp/qftp/session/sessiontest"
)

// term is a program running on a pseudo-terminal, with its output
// collected for expectations.
type term struct {
	t    *testing.T
	f    *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	more chan struct{} // signaled when output arrives
	done chan struct{}
}

func startTerm(t *testing.T, cmd *exec.Cmd) *term {
	t.Helper()
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 140})
	if err != nil {
		t.Fatal(err)
	}
	tm := &term{t: t, f: f, more: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(tm.done)
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			if n > 0 {
				tm.mu.Lock()
				tm.out.Write(buf[:n])
				tm.mu.Unlock()
				select {
				case tm.more <- struct{}{}:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = f.Close()
		<-tm.done
	})
	return tm
}

// expect waits until the output since the last expectation contains s.
func (tm *term) expect(s string) {
	tm.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		tm.mu.Lock()
		i := strings.Index(tm.out.String(), s)
		if i >= 0 {
			tm.out.Next(i + len(s))
			tm.mu.Unlock()
			return
		}
		tail := tm.out.String()
		tm.mu.Unlock()
		select {
		case <-tm.more:
		case <-tm.done:
			tm.t.Fatalf("program ended before %q; output:\n%s", s, tail)
		case <-deadline:
			tm.t.Fatalf("no %q within 30s; output:\n%s", s, tail)
		}
	}
}

func (tm *term) send(s string) {
	tm.t.Helper()
	if _, err := io.WriteString(tm.f, s); err != nil {
		tm.t.Fatal(err)
	}
}

// TestInteractiveShell drives the real shell on a terminal: prompt, Tab
// completion of remote paths, progress bars, Ctrl-C in the middle of a
// transfer without leaving the shell, resume, history, Ctrl-D.
func TestInteractiveShell(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	t.Parallel()
	ts := sessiontest.Start(t)
	home := ts.AddUser("alice", "pw")
	sessiontest.WriteFile(t, filepath.Join(home, "documents", "notes.txt"), []byte("notes"))
	big := make([]byte, 48<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	sessiontest.WriteFile(t, filepath.Join(home, "big.bin"), big)
	local, state := t.TempDir(), t.TempDir()

	qftp := filepath.Join(binaries(t), "qftp")
	cmd := exec.Command(qftp, "--known-hosts", filepath.Join(state, "kh"), "--fingerprint", ts.FP, "--limit-rate", "8MiB", "alice@"+ts.Addr)
	cmd.Dir = local
	cmd.Env = append(os.Environ(), "QFTP_PASSWORD=pw", "XDG_STATE_HOME="+state, "TERM=xterm")
	tm := startTerm(t, cmd)
	prompt := "alice@127.0.0.1:/> "
	tm.expect(prompt)

	// Tab completes a remote directory name.
	tm.send("ls doc\t")
	tm.expect("documents/")
	tm.send("\r")
	tm.expect("notes.txt")
	tm.expect(prompt)

	// A transfer shows a bar; Ctrl-C stops it and the shell stays.
	tm.send("get big.bin\r")
	tm.expect("MiB / 48 MiB")
	tm.send("\x03")
	tm.expect("canceled")
	tm.expect(prompt)
	if _, err := os.Stat(filepath.Join(local, "big.bin")); !os.IsNotExist(err) {
		t.Fatalf("canceled download visible: %v", err)
	}

	// The same command resumes.
	tm.send("get big.bin\r")
	tm.expect("resuming at")
	tm.expect("verified")
	tm.expect(prompt)
	got, err := os.ReadFile(filepath.Join(local, "big.bin"))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("downloaded file differs (%d bytes), %v", len(got), err)
	}

	// Ctrl-C at the prompt gives a fresh prompt at the start of a line.
	tm.send("\x03")
	tm.expect("^C\r\n" + prompt)

	// Unknown commands get a hint, not a crash; Ctrl-D ends the shell.
	tm.send("frobnicate\r")
	tm.expect(`unknown command "frobnicate"`)
	tm.expect(prompt)
	tm.send("\x04")
	<-tm.done
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	hist, err := os.ReadFile(filepath.Join(state, "qftp", "history"))
	if err != nil || !strings.Contains(string(hist), "get big.bin") {
		t.Fatalf("history %q, %v", hist, err)
	}
}

// SIGTERM ends the shell at its prompt, with the status a shell reports.
func TestInteractiveShellSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	t.Parallel()
	ts := sessiontest.Start(t)
	ts.AddUser("tom", "pw")
	state := t.TempDir()
	cmd := exec.Command(filepath.Join(binaries(t), "qftp"), "--known-hosts", filepath.Join(state, "kh"), "--fingerprint", ts.FP, "tom@"+ts.Addr)
	cmd.Env = append(os.Environ(), "QFTP_PASSWORD=pw", "XDG_STATE_HOME="+state, "TERM=xterm")
	tm := startTerm(t, cmd)
	tm.expect("tom@127.0.0.1:/> ")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-tm.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the shell is still running 30 s after SIGTERM")
	}
	var ee *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 143 {
		t.Fatalf("shell after SIGTERM: %v, want exit status 143", err)
	}
}
