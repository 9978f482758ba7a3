package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// Every server, relay and transfer goroutine must be gone when the tests
// end: each has an owner that stops it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func runBench(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestTiny runs both scenarios twice with tiny sizes and checks that
// every row is there with a rate, that the blackout happened, and that the
// work directory is gone.
func TestTiny(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	code, out, errOut := runBench(t, "--size", "2M", "--files", "20", "--file-size", "4K", "--jobs", "8",
		"--delay", "1ms", "--loss", "0", "--blackout", "50ms", "--runs", "2", "--timeout", "1m", "--dir", dir)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Logf("table:\n%s", out)
	rows := []string{
		`loopback +bare quic-go stream +1 +[0-9.]+ +- +- +- `,
		`loopback +qftp put +[0-9]+ +[0-9.]+ +- +[0-9.]+x `,
		`loopback +qftp get +[0-9]+ +[0-9.]+ +- +[0-9.]+x `,
		`loopback +qftp put -r 20 files, -j 8 +- +[0-9.]+ +[0-9]+ `,
		`lossy +bare quic-go stream +1 +[0-9.]+ `,
		`lossy +qftp put +[0-9]+ +[0-9.]+ +- +[0-9.]+x `,
		`lossy +qftp get +[0-9]+ .*50ms blackout at 1/3`,
		`lossy +qftp put -r 20 files, -j 8 +- +[0-9.]+ +[0-9]+ `,
		`(?m)^# qftp-bench .*, [0-9]+ CPUs, go.*; median of 2 runs;`,
		`(?m)^# lossy: in-process relay, each direction 1ms delay, 0% loss`,
	}
	for _, re := range rows {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("no line matches %q in\n%s", re, out)
		}
	}
	if strings.Contains(out, "INCOMPLETE") {
		t.Errorf("table marked incomplete:\n%s", out)
	}
	if left, err := os.ReadDir(dir); err != nil || len(left) > 0 {
		t.Errorf("work directory left behind: %v %v", left, err)
	}
}

// TestFlags checks that bad flags fail before any work, with exit 2.
func TestFlags(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		args    []string
		errPart string
	}{
		{"zero size", []string{"--size", "0"}, "--size"},
		{"bad size", []string{"--size", "lots"}, "want a size"},
		{"zero connections", []string{"--connections", "0"}, "--connections"},
		{"unknown link", []string{"--links", "loopback,wan"}, `unknown scenario "wan"`},
		{"certain loss", []string{"--loss", "1"}, "--loss"},
		{"no runs", []string{"--runs", "0"}, "--runs"},
		{"long blackout", []string{"--blackout", "10m"}, "--blackout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runBench(t, c.args...)
			if code != exitUsage || !strings.Contains(errOut, c.errPart) || out != "" && !strings.HasPrefix(out, "Usage") {
				t.Fatalf("exit %d (want %d), stderr %q (want %q), stdout %q", code, exitUsage, errOut, c.errPart, out)
			}
		})
	}
}
