package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/qftp/qftp/cmd/internal/sigctx"
)

func runQftpd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), args, stdio{in: strings.NewReader(stdin), out: &out, err: &errb})
	return code, out.String(), errb.String()
}

func TestUserCommands(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	d := []string{"--data", data}
	steps := []struct {
		stdin   string
		args    []string
		code    int
		errPart string
	}{
		{"pw1\n", []string{"user", "add", "alice", "--password-stdin"}, 0, "added user alice (quota 100 MiB)"},
		{"pw1\n", []string{"user", "add", "alice", "--password-stdin"}, 1, "already exists"},
		{"pw\n", []string{"user", "add", "Bad/Name", "--password-stdin"}, 2, ""},
		{"pw\n", []string{"user", "add", "bob", "--quota", "lots", "--password-stdin"}, 2, "--quota"},
		{"", []string{"user", "add", "bob", "--password-stdin"}, 1, "no input"},
		{"", []string{"user", "add", "bob"}, 2, "--password-stdin"},
		{"\n", []string{"user", "add", "bob", "--password-stdin"}, 2, "invalid password: empty"},
		{"pw2\n", []string{"user", "add", "bob", "--quota", "1.5GB", "--password-stdin"}, 0, ""},
		{"", []string{"user", "quota", "bob", "unlimited"}, 0, "quota of bob set to unlimited"},
		{"", []string{"user", "quota", "bob", "-5"}, 2, ""},
		{"", []string{"user", "quota", "bob", "0"}, 2, `quota "0": 0 is not a limit; say unlimited for no limit`},
		{"", []string{"user", "rate", "bob", "0KiB"}, 2, `rate "0KiB": 0 is not a limit`},
		{"", []string{"user", "quota", "nobody", "1G"}, 1, "no such user"},
		{"", []string{"user", "quota", "Bad!", "1G"}, 2, "invalid user name"},
		{"", []string{"user", "quota", "bob", "0.5"}, 2, "not a whole number of bytes"},
		{"", []string{"user", "rate", "bob", "10MiB"}, 0, "rate of bob set to 10 MiB/s"},
		{"", []string{"user", "rate", "bob", "fast"}, 2, ""},
		{"", []string{"user", "rate", "bob", "unlimited"}, 0, "unlimited"},
		{"", []string{"user", "conns", "bob", "8"}, 0, "connections per session of bob set to 8"},
		{"", []string{"user", "conns", "bob", "-1"}, 2, ""},
		{"new\n", []string{"user", "passwd", "alice", "--password-stdin"}, 0, "password of alice changed"},
		{"new\n", []string{"user", "passwd", "nobody", "--password-stdin"}, 1, "no such user"},
		{"", []string{"user", "del", "nobody"}, 1, "no such user"},
		{"", []string{"user", "frob"}, 2, ""},
	}
	for _, s := range steps {
		code, _, errOut := runQftpd(t, s.stdin, append(d, s.args...)...)
		if code != s.code || !strings.Contains(errOut, s.errPart) {
			t.Fatalf("%v: exit %d (want %d), stderr %q (want %q)", s.args, code, s.code, errOut, s.errPart)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "home", "alice")); err != nil {
		t.Fatalf("home not created: %v", err)
	}
	sessionFile := filepath.Join(data, "home", "alice", "f")
	if err := os.WriteFile(sessionFile, make([]byte, 2048), 0o600); err != nil {
		t.Fatal(err)
	}
	// Files written behind the server's back count after a rescan.
	if code, _, errOut := runQftpd(t, "", append(d, "user", "rescan", "alice")...); code != 0 || !strings.Contains(errOut, "usage of alice: 2 KiB (was 0 B)") {
		t.Fatalf("rescan: %d %q", code, errOut)
	}
	// A quota below what the user has is set, with a note.
	if code, _, errOut := runQftpd(t, "", append(d, "user", "quota", "alice", "1K")...); code != 0 || !strings.Contains(errOut, "note: alice uses 2 KiB, more than that") {
		t.Fatalf("quota below usage: %d %q", code, errOut)
	}
	code, out, _ := runQftpd(t, "", append(d, "user", "list", "--json")...)
	if code != 0 {
		t.Fatalf("list: exit %d", code)
	}
	var rows []userRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	want := []userRow{{Name: "alice", Quota: 1024, Used: 2048}, {Name: "bob", Quota: 0, Used: 0, Conns: 8}}
	if len(rows) != 2 || rows[0] != want[0] || rows[1] != want[1] {
		t.Fatalf("list = %+v, want %+v", rows, want)
	}
	code, out, _ = runQftpd(t, "", append(d, "user", "list")...)
	if code != 0 || !strings.Contains(out, "alice") || !strings.Contains(out, "2 KiB") || !strings.Contains(out, "unlimited") || !strings.Contains(out, "MAX CONNS") {
		t.Fatalf("list: %d %q", code, out)
	}
	if code, _, errOut := runQftpd(t, "", append(d, "user", "del", "alice", "--purge-home")...); code != 0 {
		t.Fatalf("del: %d %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "home", "alice")); !os.IsNotExist(err) {
		t.Fatalf("home not purged: %v", err)
	}
	if err := os.WriteFile(filepath.Join(data, "home", "bob", "old"), make([]byte, 3000), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runQftpd(t, "", append(d, "user", "del", "bob")...); code != 0 || !strings.Contains(errOut, "their files stay in") {
		t.Fatalf("del bob: %d %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "home", "bob")); err != nil {
		t.Fatalf("home removed without --purge-home: %v", err)
	}
	// A new bob gets the old one's files, counted, and is told.
	if code, _, errOut := runQftpd(t, "pw3\n", append(d, "user", "add", "bob", "--quota", "2KiB", "--password-stdin")...); code != 0 || !strings.Contains(errOut, "already holds 2.9 KiB") || !strings.Contains(errOut, "more than the quota of 2 KiB") {
		t.Fatalf("add bob again: %d %q", code, errOut)
	}
	code, out, _ = runQftpd(t, "", append(d, "user", "list", "--json")...)
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil || len(rows) != 1 || rows[0].Used != 3000 {
		t.Fatalf("list after adding bob again: %q, %v", out, err)
	}
}

// A mistyped --data is an error for commands about existing users, and
// creates nothing.
func TestMissingDataDir(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "typo")
	for _, args := range [][]string{{"user", "list"}, {"user", "quota", "bob", "1G"}, {"user", "del", "bob"}, {"user", "rescan", "bob"}} {
		code, _, errOut := runQftpd(t, "", append([]string{"--data", data}, args...)...)
		if code != 1 || !strings.Contains(errOut, "no user store at") {
			t.Errorf("%v: exit %d, %q", args, code, errOut)
		}
	}
	if code, _, errOut := runQftpd(t, "", "--data", data, "fingerprint"); code != 1 || !strings.Contains(errOut, "no data directory at") {
		t.Errorf("fingerprint: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("data directory created: %v", err)
	}
}

func TestServeValidation(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	tests := []struct {
		args []string
		part string
	}{
		{[]string{"serve", "--cert", "/nonexistent"}, "nonexistent"},
		{[]string{"serve", "--default-quota", "huge"}, "--default-quota"},
		{[]string{"serve", "--default-quota", "0"}, "--default-quota \"0\": 0 is not a limit"},
		{[]string{"serve", "--max-streams", "0"}, "--max-streams"},
		{[]string{"serve", "--user-connections", "0"}, "--user-connections must be between 1 and 65536"},
		{[]string{"serve", "--pending-logins", "0"}, "--pending-logins must be between 1 and 1048576"},
		{[]string{"serve", "--pending-logins", "10", "--pending-per-address", "11"}, "--pending-per-address must be between 1 and --pending-logins"},
		{[]string{"serve", "--listen", "not an address"}, "listen"},
		{[]string{"serve", "--listen", ""}, "--listen: want an address"},
		{[]string{"serve", "--grace=-5s"}, "--grace must not be negative"},
		{[]string{"serve", "--user-window", "1MiB"}, "--user-window: want a size of at least 16 MiB"},
		{[]string{"serve", "--user-buffers", "lots"}, "--user-buffers"},
		{[]string{"serve", "--user-buffers", "32MiB"}, "at least 33 MiB (two of the largest blocks)"},
		{[]string{"serve", "--total-window", "100MiB"}, "--total-window: want a size of at least the per-user one (512 MiB)"},
		{[]string{"serve", "--user-buffers", "1GiB", "--total-buffers", "600MiB"}, "--total-buffers"},
	}
	for _, tt := range tests {
		code, _, errOut := runQftpd(t, "", append([]string{"--data", data}, tt.args...)...)
		if code == 0 || !strings.Contains(errOut, tt.part) {
			t.Fatalf("%v: exit %d, stderr %q", tt.args, code, errOut)
		}
	}
}

func TestFingerprintCommand(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	code, out1, _ := runQftpd(t, "", "--data", data, "fingerprint")
	code2, out2, _ := runQftpd(t, "", "--data", data, "fingerprint", "--cert", filepath.Join(data, "server.crt"))
	if code != 0 || code2 != 0 || !strings.HasPrefix(out1, "SHA256:") || out1 != out2 {
		t.Fatalf("fingerprint: %d %q / %d %q", code, out1, code2, out2)
	}
	fi, err := os.Stat(filepath.Join(data, "server.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key: %v %v", fi.Mode(), err)
	}
}

// serve stores --default-quota; user add without --quota uses it.
func TestDefaultQuota(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	_, stop := serveUntil(t, data, "msg=listening", "--default-quota", "5MiB")
	// One serve at a time on a data directory (the lock is flock(2)'s).
	if runtime.GOOS != "windows" {
		if code, _, errOut := runQftpd(t, "", "--data", data, "serve", "--listen", "127.0.0.1:0"); code != 1 || !strings.Contains(errOut, "another qftpd serve is using") {
			t.Errorf("second serve: exit %d, %q", code, errOut)
		}
	}
	stop()
	if code, _, errOut := runQftpd(t, "pw\n", "--data", data, "user", "add", "carol", "--password-stdin"); code != 0 || !strings.Contains(errOut, "quota 5 MiB") {
		t.Fatalf("add: %d %q", code, errOut)
	}
}

// serve refuses a data directory anyone may write to.
func TestServeWorldWritableData(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	data := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(data, 0o777); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runQftpd(t, "", "--data", data, "serve", "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errOut, "is writable by anyone (mode 0777)") {
		t.Fatalf("exit %d, %q", code, errOut)
	}
	if des, err := os.ReadDir(data); err != nil || len(des) != 0 {
		t.Fatalf("wrote into the refused directory: %v, %v", des, err)
	}
}

// A user command that a signal stops fails with the signal's status (a
// script must not go on as if the user had been added); serve stopping
// on one is its normal end.
func TestUserCommandInterrupted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(sigctx.Error{Signal: syscall.SIGINT})
	var errb bytes.Buffer
	code := run(ctx, []string{"--data", t.TempDir(), "user", "add", "bob", "--password-stdin"}, stdio{in: strings.NewReader("pw\n"), out: io.Discard, err: &errb})
	if code != 130 || !strings.Contains(errb.String(), "interrupted") {
		t.Fatalf("exit %d, %q", code, errb.String())
	}
}

// serveUntil runs serve (with args) until it prints a line containing
// marker, and returns what it printed so far and a function that stops it
// and checks that it ended well.
func serveUntil(t *testing.T, data, marker string, args ...string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"--data", data, "serve", "--listen", "127.0.0.1:0"}, args...), stdio{in: strings.NewReader(""), out: io.Discard, err: pw})
		_ = pw.Close()
	}()
	var out strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), marker) {
			break
		}
	}
	return out.String(), func() {
		t.Helper()
		cancel()
		go func() { _, _ = io.Copy(io.Discard, pr) }()
		if code := <-done; code != 0 {
			t.Fatalf("serve: exit %d", code)
		}
	}
}

// serveOnce runs serve --demo (with args) until it prints how to connect,
// stops it and returns what it printed.
func serveOnce(t *testing.T, data string, args ...string) string {
	t.Helper()
	out, stop := serveUntil(t, data, "bin/qftp ", args...) // the line to connect with
	stop()
	return out
}

// --demo prints the demo user's password, and not once it was changed.
func TestServeDemo(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "d")
	if out := serveOnce(t, data, "--demo"); !strings.Contains(out, "Connect as user demo with:") || !strings.Contains(out, "QFTP_PASSWORD=") {
		t.Fatalf("first start:\n%s", out)
	}
	if out := serveOnce(t, data, "--demo"); !strings.Contains(out, "QFTP_PASSWORD=") {
		t.Fatalf("second start:\n%s", out)
	}
	if code, _, errOut := runQftpd(t, "new\n", "--data", data, "user", "passwd", "demo", "--password-stdin"); code != 0 {
		t.Fatalf("passwd: %d %q", code, errOut)
	}
	if out := serveOnce(t, data, "--demo"); strings.Contains(out, "QFTP_PASSWORD=") || !strings.Contains(out, "Users exist already") {
		t.Fatalf("after passwd:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(data, "demo-password")); !os.IsNotExist(err) {
		t.Fatalf("the old demo password stays: %v", err)
	}
}
