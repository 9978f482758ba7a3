//go:build unix

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/qftp/qftp/session/sessiontest"
)

// Commands piped into qftp started from a terminal: the password is asked
// on the terminal (as ssh and sftp do), and the commands still come from
// standard input.
func TestPasswordFromTTY(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	t.Parallel()
	ts := sessiontest.Start(t)
	ts.AddUser("pia", "pw")
	state := t.TempDir()
	cmd := exec.Command(filepath.Join(binaries(t), "qftp"), "--known-hosts", filepath.Join(state, "kh"), "--fingerprint", ts.FP, "pia@"+ts.Addr)
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+state, "TERM=xterm")
	cmd.Env = slices.DeleteFunc(cmd.Env, func(e string) bool { return strings.HasPrefix(e, "QFTP_PASSWORD=") })
	cmd.Stdin = strings.NewReader("pwd\n")
	// The terminal is the controlling one, on the child's stdout (fd 1).
	cmd.SysProcAttr = &syscall.SysProcAttr{Ctty: 1}
	tm := startTerm(t, cmd)
	tm.expect("pia@127.0.0.1's password: ")
	tm.send("pw\r")
	tm.expect("/\r\n")
	<-tm.done
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}
