package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/qftp/qftp/certs"
	"github.com/qftp/qftp/session/sessiontest"
	"github.com/qftp/qftp/transport"
)

// client runs qftp in-process against ts as user with the given args
// after the flags that log in; it returns the exit status and output.
type client struct {
	ts       *sessiontest.Server
	user     string
	pwFile   string
	known    string
	localDir string
	stateDir string
}

func newClient(t *testing.T, ts *sessiontest.Server, user, pw string) *client {
	t.Helper()
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	sessiontest.WriteFile(t, pwFile, []byte(pw+"\n"))
	return &client{ts: ts, user: user, pwFile: pwFile, known: filepath.Join(dir, "known_hosts"), localDir: t.TempDir(), stateDir: filepath.Join(dir, "state")}
}

func (c *client) run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	full := append([]string{"--known-hosts", c.known, "--password-file", c.pwFile, "--fingerprint", c.ts.FP, c.user + "@" + c.ts.Addr}, args...)
	return c.runRaw(t, stdin, full...)
}

func (c *client) runRaw(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runWithEnv(t.Context(), args, stdio{in: strings.NewReader(stdin), out: &out, err: &errb}, runEnv{localDir: c.localDir, stateDir: c.stateDir})
	return code, out.String(), errb.String()
}

func TestOneShotCommands(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	home := ts.AddUser("alice", "secret")
	c := newClient(t, ts, "alice", "secret")
	sessiontest.WriteFile(t, filepath.Join(c.localDir, "hello.txt"), []byte("hello world"))

	steps := []struct {
		args    []string
		code    int
		out     string // exact stdout, if not "*"
		errPart string // substring of stderr
	}{
		{[]string{"pwd"}, 0, "/\n", ""},
		{[]string{"mkdir", "-p", "docs/2024"}, 0, "", ""},
		{[]string{"put", "hello.txt", "docs/"}, 0, "", "put hello.txt 11 B"},
		{[]string{"put", "hello.txt", "docs/"}, 0, "", "put hello.txt: already there (same size, time and BLAKE3)"},
		{[]string{"put", "-f", "hello.txt", "docs/hello.txt"}, 0, "", ""},
		{[]string{"ls", "docs"}, 0, "2024\nhello.txt\n", ""},
		{[]string{"ls", "-l", "docs"}, 0, "*", ""},
		{[]string{"get", "docs/hello.txt", "copy.txt"}, 0, "", "get docs/hello.txt 11 B"},
		{[]string{"get", "docs/hello.txt", "copy.txt"}, 0, "", "get docs/hello.txt: already there"},
		{[]string{"mv", "docs/hello.txt", "docs/2024/"}, 0, "", ""},
		{[]string{"rm", "docs/2024/hello.txt"}, 0, "", ""},
		{[]string{"rmdir", "docs/2024"}, 0, "", ""},
		{[]string{"cd", "/nope"}, 1, "", "cd /nope: no such file or directory"},
		{[]string{"put", "missing.iso"}, 1, "", "missing.iso: no such file or directory"},
		{[]string{"df"}, 0, "*", ""},
		{[]string{"df", "-h"}, 0, "*", ""},      // -h is not --help: sizes are human anyway
		{[]string{"ls", "-lh"}, 0, "*", ""},     // as ls -lh
		{[]string{"ls", "-h"}, 0, "docs\n", ""}, // (only -l shows sizes)
		{[]string{"put", "-c", "hello.txt", "h2"}, 0, "", "verified"},
		{[]string{"hash", "h2"}, 0, "d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914e5aaf96b831a9e24  h2\n", ""},
		{[]string{"hash", "--sha256", "h2"}, 0, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9  h2\n", ""},
		{[]string{"rm", "h2"}, 0, "", ""},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"ls", "-z"}, 2, "", "ls:"},
		{[]string{"get"}, 2, "", "get:"},
		{[]string{"help"}, 0, "*", ""},
		{[]string{"lpwd"}, 0, c.localDir + "\n", ""},
		{[]string{"lls"}, 0, "copy.txt\nhello.txt\n", ""},
		{[]string{"lls", "c*.txt"}, 0, "copy.txt\n", ""},
		{[]string{"lls", "*.none"}, 1, "", "lls *.none: no match"},
	}
	for _, s := range steps {
		code, out, errOut := c.run(t, "", s.args...)
		if code != s.code {
			t.Fatalf("%v: exit %d, want %d; stderr: %s", s.args, code, s.code, errOut)
		}
		if s.out != "*" && out != s.out {
			t.Fatalf("%v: stdout %q, want %q", s.args, out, s.out)
		}
		if !strings.Contains(errOut, s.errPart) {
			t.Fatalf("%v: stderr %q, want it to contain %q", s.args, errOut, s.errPart)
		}
	}
	if _, out, _ := c.run(t, "", "help", "get"); !strings.HasPrefix(out, "Usage: get <remote> [<local>] [flags]\n") {
		t.Fatalf("help get: %q", out)
	}
	if got := sessiontest.ReadFile(t, filepath.Join(c.localDir, "copy.txt")); string(got) != "hello world" {
		t.Fatalf("downloaded %q", got)
	}
	if _, err := os.Stat(filepath.Join(home, "docs", "2024")); !os.IsNotExist(err) {
		t.Fatalf("rmdir did not remove: %v", err)
	}
}

func TestScriptFromStdin(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	ts.AddUser("bob", "pw")
	c := newClient(t, ts, "bob", "pw")
	sessiontest.WriteFile(t, filepath.Join(c.localDir, "my file.txt"), []byte("x"))
	script := `# comment
mkdir dir
cd dir
put "my file.txt"
pwd
-rm nothing-here
ls
cd /missing
pwd
`
	code, out, errOut := c.run(t, script)
	if code != exitFail {
		t.Fatalf("exit %d, want %d; stderr %s", code, exitFail, errOut)
	}
	if out != "/dir\nmy file.txt\n" {
		t.Fatalf("stdout %q", out)
	}
	if !strings.Contains(errOut, "line 6: rm /dir/nothing-here: no such file") || !strings.Contains(errOut, "line 8: cd /missing: no such file") {
		t.Fatalf("stderr %q", errOut)
	}
	// A script with a syntax error stops with a usage status.
	code, _, errOut = c.run(t, "pwd\nput 'unterminated\npwd\n")
	if code != exitUsage || !strings.Contains(errOut, "line 2: unterminated") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = c.run(t, "pwd\n\nfrobnicate x\npwd\n")
	if code != exitUsage || !strings.Contains(errOut, `line 3: unknown command "frobnicate"`) {
		t.Fatalf("unknown command: exit %d, stderr %q", code, errOut)
	}
}

func TestExitStatuses(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	ts.AddUser("carol", "right")
	good := newClient(t, ts, "carol", "right")
	bad := newClient(t, ts, "carol", "wrong")

	if code, _, errOut := bad.run(t, "", "pwd"); code != exitAuth || !strings.Contains(errOut, "authentication failed") {
		t.Fatalf("wrong password: exit %d, %q", code, errOut)
	}
	if code, _, _ := good.runRaw(t, "", "--no-such-flag", "x"); code != exitUsage {
		t.Fatalf("bad flag: exit %d", code)
	}
	if code, _, _ := good.runRaw(t, ""); code != exitUsage {
		t.Fatalf("no host: exit %d", code)
	}
	if code, out, _ := good.runRaw(t, "", "--help"); code != exitOK || !strings.Contains(out, "Exit status") {
		t.Fatalf("--help: exit %d, %q", code, out)
	}
	if code, out, _ := good.runRaw(t, "", "--version"); code != exitOK || !strings.HasPrefix(out, "qftp ") {
		t.Fatalf("--version: exit %d, %q", code, out)
	}
	for _, bad := range []string{"fast", "0.4"} {
		if code, _, errOut := good.run(t, "", "--limit-rate", bad, "pwd"); code != exitUsage || !strings.Contains(errOut, "--limit-rate: want a rate such as 10MiB") {
			t.Fatalf("--limit-rate %s: exit %d, %q", bad, code, errOut)
		}
	}
	if code, out, _ := good.run(t, "", "--limit-rate", "unlimited", "pwd"); code != exitOK || out != "/\n" {
		t.Fatalf("--limit-rate unlimited: exit %d, %q", code, out)
	}
	if code, _, errOut := good.runRaw(t, "", "--fingerprint", "SHA256:nope", "carol@"+ts.Addr, "pwd"); code != exitUsage || !strings.Contains(errOut, "--fingerprint") {
		t.Fatalf("bad fingerprint: exit %d, %q", code, errOut)
	}
	// Nothing listens on UDP port 1.
	if code, _, _ := good.runRaw(t, "", "--known-hosts", good.known, "--password-file", good.pwFile, "--accept-new-host", "--connect-timeout", "1s", "carol@127.0.0.1:1", "pwd"); code != exitConnect {
		t.Fatalf("no server: exit %d", code)
	}
	// A server that never answers: the timeout says so, and Ctrl-C while
	// connecting gives up at once, with the status a shell gives (130).
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	args := []string{"--known-hosts", good.known, "--password-file", good.pwFile, "--accept-new-host", "carol@" + silent.LocalAddr().String(), "pwd"}
	if code, _, errOut := good.runRaw(t, "", append([]string{"--connect-timeout", "500ms"}, args...)...); code != exitConnect || !strings.Contains(errOut, "no answer from the server in 500ms (is qftpd running") || strings.Contains(errOut, "context") {
		t.Fatalf("silent server: exit %d, %q", code, errOut)
	}
	intr := make(chan os.Signal, 1)
	intr <- os.Interrupt
	var errb bytes.Buffer
	if code := runWithEnv(t.Context(), append([]string{"--connect-timeout", "1m"}, args...), stdio{in: strings.NewReader(""), out: io.Discard, err: &errb, intr: intr}, runEnv{localDir: good.localDir, stateDir: good.stateDir}); code != 130 || errb.String() != "qftp: interrupted\n" {
		t.Fatalf("Ctrl-C while connecting: exit %d, %q", code, errb.String())
	}
}

func TestHostPinning(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	ts.AddUser("dave", "pw")
	c := newClient(t, ts, "dave", "pw")
	target := "dave@" + ts.Addr
	base := []string{"--known-hosts", c.known, "--password-file", c.pwFile}

	// Unknown host, no terminal, no flag: refused with the fingerprint shown.
	code, _, errOut := c.runRaw(t, "", append(base, target, "pwd")...)
	if code != exitConnect || !strings.Contains(errOut, "unknown host") || !strings.Contains(errOut, ts.FP) {
		t.Fatalf("unknown host: exit %d, %q", code, errOut)
	}
	// Pin on first use.
	if code, _, errOut := c.runRaw(t, "", append(base, "--accept-new-host", target, "pwd")...); code != exitOK {
		t.Fatalf("accept-new-host: exit %d, %q", code, errOut)
	}
	kh := string(sessiontest.ReadFile(t, c.known))
	if !strings.Contains(kh, ts.FP) {
		t.Fatalf("known_hosts = %q", kh)
	}
	// Pinned: no flag needed.
	if code, out, errOut := c.runRaw(t, "", append(base, target, "pwd")...); code != exitOK || out != "/\n" {
		t.Fatalf("pinned: exit %d, %q %q", code, out, errOut)
	}
	// Changed key: a hard failure even with --accept-new-host.
	other := filepath.Join(t.TempDir(), "known_hosts")
	host := certs.HostKey("127.0.0.1", portOf(t, ts.Addr))
	sessiontest.WriteFile(t, other, []byte(host+" SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"))
	code, _, errOut = c.runRaw(t, "", "--known-hosts", other, "--password-file", c.pwFile, "--accept-new-host", target, "pwd")
	if code != exitConnect || !strings.Contains(errOut, "CHANGED") {
		t.Fatalf("changed key: exit %d, %q", code, errOut)
	}
	// A wrong --fingerprint for an unknown host is refused.
	code, _, errOut = c.runRaw(t, "", "--known-hosts", filepath.Join(t.TempDir(), "kh"), "--password-file", c.pwFile, "--fingerprint", "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", target, "pwd")
	if code != exitConnect || !strings.Contains(errOut, "fingerprint") {
		t.Fatalf("wrong fingerprint: exit %d, %q", code, errOut)
	}
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := transport.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBatchAndConfig(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	ts.AddUser("erin", "pw")
	c := newClient(t, ts, "erin", "pw")
	_, port, _ := transport.SplitHostPort(ts.Addr)
	cfg := filepath.Join(t.TempDir(), "config")
	sessiontest.WriteFile(t, cfg, []byte(fmt.Sprintf("Host myserver\n  HostName 127.0.0.1\n  Port %d\n  User erin\n  Fingerprint %s\n  Jobs 3\n", port, ts.FP)))
	batch := filepath.Join(t.TempDir(), "cmds")
	sessiontest.WriteFile(t, batch, []byte("mkdir b\n-rm nothing\ncd b\npwd\nrm missing\npwd\n"))
	base := []string{"--known-hosts", c.known, "--password-file", c.pwFile, "--config", cfg}

	// The alias resolves through the config: host, port, user, fingerprint.
	code, out, errOut := c.runRaw(t, "", append(base, "-b", batch, "myserver")...)
	if code != exitFail || out != "/b\n" || !strings.Contains(errOut, "rm /b/missing: no such file") {
		t.Fatalf("batch: exit %d, out %q, err %q", code, out, errOut)
	}
	// Flags override the config: a wrong fingerprint on the command line.
	// (A fresh known_hosts: a pinned host is trusted by its pin.)
	code, _, errOut = c.runRaw(t, "", "--known-hosts", filepath.Join(t.TempDir(), "kh"), "--password-file", c.pwFile, "--config", cfg,
		"--fingerprint", "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "myserver", "pwd")
	if code != exitConnect {
		t.Fatalf("override: exit %d, %q", code, errOut)
	}
	// A broken config file is a usage error naming the line.
	bad := filepath.Join(t.TempDir(), "bad")
	sessiontest.WriteFile(t, bad, []byte("Host x\n  Colour blue\n"))
	if code, _, errOut := c.runRaw(t, "", "--config", bad, "x", "pwd"); code != exitUsage || !strings.Contains(errOut, "line 2") {
		t.Fatalf("bad config: exit %d, %q", code, errOut)
	}
	if code, _, _ := c.runRaw(t, "", append(base, "-b", batch, "myserver", "pwd")...); code != exitUsage {
		t.Fatal("batch and command together accepted")
	}
}

func TestCompletionScripts(t *testing.T) {
	t.Parallel()
	c := &client{}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out, _ := c.runRaw(t, "", "completion", sh)
		if code != 0 || !strings.Contains(out, "qftp") || !strings.Contains(out, "mget") {
			t.Fatalf("completion %s: exit %d, %q", sh, code, out)
		}
		if sh == "bash" {
			if bash, err := exec.LookPath("bash"); err == nil {
				cmd := exec.Command(bash, "-n")
				cmd.Stdin = strings.NewReader(out)
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("bash -n: %v\n%s", err, b)
				}
			}
		}
	}
	if code, _, _ := c.runRaw(t, "", "completion", "tcsh"); code != exitUsage {
		t.Fatal("unknown shell accepted")
	}
	// The completion list names every shell command.
	var cmds commands
	p, err := (&shell{}).parser(&cmds, io.Discard, new(bool))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range p.Model.Children {
		if n.Name != "exit" && !slices.Contains(shellCommands, n.Name) {
			t.Errorf("shellCommands lacks %q", n.Name)
		}
	}
}

// A batch that leaves out a file the user asked for (here a second file
// of the same name) copies the rest but fails, like rsync's exit 23; what
// it skips by rule (a symbolic link) does not make it fail.
func TestBatchLeftOutFails(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	ts.AddUser("lena", "pw")
	c := newClient(t, ts, "lena", "pw")
	for _, p := range []string{"d1/x", "d2/x", "d3/y"} {
		sessiontest.WriteFile(t, filepath.Join(c.localDir, p), []byte(p))
	}
	code, _, errOut := c.run(t, "", "mput", "d1/x", "d2/x")
	if code == exitOK || !strings.Contains(errOut, "left out") || !strings.Contains(errOut, "1 left out") {
		t.Fatalf("mput of two files named x: exit %d, %q", code, errOut)
	}
	if got := sessiontest.ReadFile(t, filepath.Join(ts.HomeDir, "lena", "x")); string(got) != "d1/x" {
		t.Fatalf("x holds %q", got)
	}
	if err := os.Symlink("y", filepath.Join(c.localDir, "d3", "link")); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := c.run(t, "", "put", "-r", "d3"); code != exitOK || !strings.Contains(errOut, "skipped") {
		t.Fatalf("put -r of a tree with a symbolic link: exit %d, %q", code, errOut)
	}
	// Run again, the tree is already there.
	if code, _, errOut := c.run(t, "", "put", "-r", "d3"); code != exitOK || !strings.Contains(errOut, "put: 1 of 1 files (1 already there)") {
		t.Fatalf("put -r again: exit %d, %q", code, errOut)
	}

	// Remote names a client cannot name (made on the server itself) are
	// not listed; ls says so, and a get that should copy them fails.
	remote := filepath.Join(ts.HomeDir, "lena", "odd")
	for _, name := range []string{"ok.txt", `back\slash.txt`, "caf\xe9.txt"} {
		sessiontest.WriteFile(t, filepath.Join(remote, name), []byte(name))
	}
	code, out, errOut := c.run(t, "", "ls", "odd")
	if code != exitOK || out != "ok.txt\n" || !strings.Contains(errOut, `ls: 2 not shown (names that are not valid UTF-8 or contain a backslash, which qftp cannot use): "back\\slash.txt", "caf\xe9.txt"`) {
		t.Fatalf("ls odd: exit %d, %q, %q", code, out, errOut)
	}
	for _, args := range [][]string{{"get", "-r", "odd"}, {"mget", "odd/*.txt"}} {
		code, _, errOut = c.run(t, "", args...)
		if code == exitOK || !strings.Contains(errOut, "left out 2 entries") || !strings.Contains(errOut, ": 2 left out") {
			t.Fatalf("%v: exit %d, %q", args, code, errOut)
		}
	}
	if code, _, errOut = c.run(t, "", "mget", "odd/caf*"); code == exitOK || !strings.Contains(errOut, "mget odd/caf*: no match qftp can transfer: 1 with names that are not valid UTF-8") {
		t.Fatalf("mget of an unnamable file only: exit %d, %q", code, errOut)
	}
}

// "get FILE newdir/" with no directory newdir fails instead of making a
// file called newdir.
func TestGetIntoMissingDirectory(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	home := ts.AddUser("nils", "pw")
	sessiontest.WriteFile(t, filepath.Join(home, "f"), []byte("data"))
	c := newClient(t, ts, "nils", "pw")
	if code, _, errOut := c.run(t, "", "get", "f", "newdir/"); code == exitOK || !strings.Contains(errOut, "local directory") {
		t.Fatalf("get f newdir/: exit %d, %q", code, errOut)
	}
	if _, err := os.Lstat(filepath.Join(c.localDir, "newdir")); err == nil {
		t.Fatal("newdir was made")
	}
}

// A command ended by Ctrl-C (or SIGTERM) says how to go on, not "context
// canceled".
func TestStatusInterrupted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("put big: %w", context.Canceled), "put big: interrupted; run the same command again to resume\n"},
		{context.Canceled, "interrupted; run the same command again to resume\n"},
		{errors.New("put big: file exists"), "put big: file exists\n"},
	} {
		var errb bytes.Buffer
		sh := &shell{io: stdio{err: &errb}}
		if code := sh.status(tc.err); code != exitFail || errb.String() != tc.want {
			t.Errorf("status(%v) = %d, %q; want %d, %q", tc.err, code, errb.String(), exitFail, tc.want)
		}
	}
}

// interruptOn is a stderr that sends Ctrl-C on intr once its text contains
// want.
type interruptOn struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	intr chan os.Signal
	sent bool
}

func (w *interruptOn) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, _ := w.buf.Write(p)
	if !w.sent && strings.Contains(w.buf.String(), w.want) {
		w.sent = true
		w.intr <- os.Interrupt // buffered
	}
	return n, nil
}

func (w *interruptOn) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// An interrupted get -r or put -r that created its destination, run again,
// resumes in that destination: cp's rule would copy into it (DEST/DIR)
// now that it exists. Once the copy is complete, the rule holds again.
func TestTreeResumesInPlace(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	home := ts.AddUser("tess", "pw")
	c := newClient(t, ts, "tess", "pw")
	big := bytes.Repeat([]byte("0123456789abcdef"), 4<<16) // 4 MiB: held back by the rate limit
	for _, dir := range []string{filepath.Join(home, "photos"), filepath.Join(c.localDir, "album")} {
		sessiontest.WriteFile(t, filepath.Join(dir, "a.txt"), []byte("first"))
		sessiontest.WriteFile(t, filepath.Join(dir, "z.bin"), big)
	}
	for _, tc := range []struct {
		op, src, dest string
		destDir       string // where dest is, on this machine
	}{
		{"get", "photos", "backup", c.localDir},
		{"put", "album", "gallery", home},
	} {
		// The first run stops after a.txt, while z.bin is on its way.
		w := &interruptOn{want: "a.txt 5 B", intr: make(chan os.Signal, 1)}
		args := append([]string{"--no-progress", "--limit-rate", "1MiB", "--known-hosts", c.known, "--password-file", c.pwFile, "--fingerprint", c.ts.FP, c.user + "@" + c.ts.Addr},
			tc.op, "-r", "-j", "1", tc.src, tc.dest)
		code := runWithEnv(t.Context(), args, stdio{in: strings.NewReader(""), out: io.Discard, err: w, intr: w.intr}, runEnv{localDir: c.localDir, stateDir: c.stateDir})
		if code != 130 || !strings.Contains(w.String(), "run the same command again") {
			t.Fatalf("%s interrupted: exit %d, %s", tc.op, code, w)
		}
		dest := filepath.Join(tc.destDir, tc.dest)
		if got := sessiontest.ReadFile(t, filepath.Join(dest, "a.txt")); string(got) != "first" {
			t.Fatalf("%s interrupted: a.txt %q", tc.op, got)
		}
		// Again, as Tab completion would write it: trailing slashes.
		code, _, errOut := c.run(t, "", "--no-progress", tc.op, "-r", tc.src+"/", tc.dest+"/")
		if code != exitOK || !strings.Contains(errOut, "resuming the unfinished copy in") || !strings.Contains(errOut, "2 of 2 files (1 already there)") {
			t.Fatalf("%s again: exit %d, %s", tc.op, code, errOut)
		}
		if got := sessiontest.ReadFile(t, filepath.Join(dest, "z.bin")); !bytes.Equal(got, big) {
			t.Fatalf("%s again: z.bin differs", tc.op)
		}
		if _, err := os.Lstat(filepath.Join(dest, tc.src)); err == nil {
			t.Fatalf("%s again copied into %s", tc.op, filepath.Join(tc.dest, tc.src))
		}
		// Complete now: a destination that exists receives the tree.
		code, _, errOut = c.run(t, "", "--no-progress", tc.op, "-r", tc.src, tc.dest)
		if code != exitOK || strings.Contains(errOut, "resuming") {
			t.Fatalf("%s a third time: exit %d, %s", tc.op, code, errOut)
		}
		if _, err := os.Stat(filepath.Join(dest, tc.src, "z.bin")); err != nil {
			t.Fatalf("%s a third time: %v", tc.op, err)
		}
	}
}

// ls and rm take patterns, expanded by the server as sftp's do; rm goes
// on past a file it cannot remove and says which.
func TestPatternsInLsAndRm(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	home := ts.AddUser("pat", "pw")
	c := newClient(t, ts, "pat", "pw")
	for _, p := range []string{"logs/a.log", "logs/b.log", "logs/c.txt", "logs/sub/d.log", "keep.txt", "photo [1].jpg", "photo 1.jpg"} {
		sessiontest.WriteFile(t, filepath.Join(home, p), []byte(p))
	}
	steps := []struct {
		args    []string
		code    int
		out     string
		errPart string
	}{
		{[]string{"ls", "logs/*.log"}, 0, "logs/a.log\nlogs/b.log\n", ""},
		{[]string{"ls", "/logs/*/*.log"}, 0, "/logs/sub/d.log\n", ""},
		{[]string{"ls", "logs/*.nope"}, 1, "", "ls logs/*.nope: no match"},
		{[]string{"rm", "logs/*.log"}, 0, "", ""},
		{[]string{"ls", "logs"}, 0, "c.txt\nsub\n", ""},
		{[]string{"rm", "logs/*.log"}, 1, "", "rm logs/*.log: no match"},
		{[]string{"rm", "logs/c.txt", "logs/missing", "logs/sub"}, 1, "", "rm: 2 errors (3 tried)"},
		{[]string{"ls", "logs"}, 0, "sub\n", ""},
		// A name with pattern characters that exists is that file.
		{[]string{"ls", "photo [1].jpg"}, 0, "photo [1].jpg\n", ""},
		{[]string{"mget", "photo [1].jpg"}, 0, "", "1 of 1 files"},
		{[]string{"rm", "photo [1].jpg"}, 0, "", ""},
		{[]string{"ls", "photo*"}, 0, "photo 1.jpg\n", ""},
	}
	for _, s := range steps {
		code, out, errOut := c.run(t, "", s.args...)
		if code != s.code || out != s.out || !strings.Contains(errOut, s.errPart) {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q; want %d, %q, %q", s.args, code, out, errOut, s.code, s.out, s.errPart)
		}
	}
	if _, err := os.Stat(filepath.Join(home, "keep.txt")); err != nil {
		t.Fatal(err)
	}
	if got := sessiontest.ReadFile(t, filepath.Join(c.localDir, "photo [1].jpg")); string(got) != "photo [1].jpg" {
		t.Fatalf("mget of a name with brackets fetched %q", got)
	}

	// rm -r removes a tree; links in it go, what they lead to stays.
	for _, p := range []string{"tree/a", "tree/sub/b", "tree/sub/deeper/c"} {
		sessiontest.WriteFile(t, filepath.Join(home, p), []byte(p))
	}
	for link, to := range map[string]string{"tree/file-link": "../keep.txt", "tree/sub/dir-link": "../../logs"} {
		if err := os.Symlink(to, filepath.Join(home, link)); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []struct {
		args    []string
		code    int
		errPart string
	}{
		{[]string{"rm", "tree"}, 1, "is a directory"},
		{[]string{"rm", "tree/a/"}, 1, "rm /tree/a: not a directory"}, // the server says so (a trailing slash names a directory)
		{[]string{"rm", "-r", "/"}, 1, "that is the home directory"},
		{[]string{"rm", "-r", "tree/sub/.."}, 1, "refusing to remove . or .."},
		{[]string{"rm", "-r", "."}, 1, "that is the home directory"}, // at /
		{[]string{"rm", "-r", "tree"}, 0, ""},
		{[]string{"rm", "-r", "tree"}, 1, "no such file or directory"},
	} {
		if code, _, errOut := c.run(t, "", s.args...); code != s.code || !strings.Contains(errOut, s.errPart) {
			t.Fatalf("%v: exit %d, stderr %q", s.args, code, errOut)
		}
	}
	for _, p := range []string{"tree", "keep.txt", "logs/sub/d.log"} {
		if _, err := os.Lstat(filepath.Join(home, p)); (p == "tree") != os.IsNotExist(err) {
			t.Errorf("after rm -r tree, %s: %v", p, err)
		}
	}
}

// A one-shot command that does not parse, --help and help are answered
// without the server: here there is none (nothing listens on the port,
// and no password is given), which would otherwise fail after the connect
// timeout with another status.
func TestUsageBeforeConnecting(t *testing.T) {
	t.Parallel()
	c := &client{localDir: t.TempDir(), stateDir: t.TempDir()}
	for _, tc := range []struct {
		args    []string
		code    int
		outPart string
		errPart string
	}{
		{[]string{"lss", "-l"}, exitUsage, "", `unknown command "lss"`},
		{[]string{"ls", "-z"}, exitUsage, "", "ls: unknown flag -z"},
		{[]string{"get"}, exitUsage, "", "get: expected"},
		{[]string{"get", "--help"}, exitOK, "Usage: get <remote>", ""},
		{[]string{"help"}, exitOK, "Commands:", ""},
		{[]string{"help", "put"}, exitOK, "Usage: put <local>", ""},
	} {
		args := append([]string{"--known-hosts", filepath.Join(c.stateDir, "kh"), "--connect-timeout", "1m", "nobody@127.0.0.1:9"}, tc.args...)
		code, out, errOut := c.runRaw(t, "", args...)
		if code != tc.code || !strings.Contains(out, tc.outPart) || !strings.Contains(errOut, tc.errPart) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", tc.args, code, out, errOut)
		}
	}
}

// What users of shells and lftp type: cd - and lcd - go back (and say
// where), ~ is the remote home, rm -f is quiet about what is not there.
func TestShellHabits(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	home := ts.AddUser("hab", "pw")
	c := newClient(t, ts, "hab", "pw")
	if err := os.Mkdir(filepath.Join(c.localDir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "mkdir -p d/e\ncd d/e\ncd -\npwd\ncd ~/d\npwd\ncd ~\npwd\n" +
		"lcd sub\nlcd -\nrm -f nothere 'no*'\nrm -rf d\nls\n"
	code, out, errOut := c.run(t, script)
	want := "/\n/\n/d\n/\n" + c.localDir + "\n" // cd - says where it went
	if code != 0 || out != want || errOut != "" {
		t.Fatalf("exit %d, stdout %q (want %q), stderr %q", code, out, want, errOut)
	}
	if _, err := os.Stat(filepath.Join(home, "d")); !os.IsNotExist(err) {
		t.Fatalf("rm -rf d left %v", err)
	}
	code, _, errOut = c.run(t, "cd -\n")
	if code != exitFail || !strings.Contains(errOut, "cd -: no previous directory") {
		t.Fatalf("cd - first: exit %d, %q", code, errOut)
	}
	code, _, errOut = c.run(t, "rm nothere\n")
	if code != exitFail || !strings.Contains(errOut, "no such file") {
		t.Fatalf("rm without -f: exit %d, %q", code, errOut)
	}
}
