package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/transport"
)

func TestPrintEntries(t *testing.T) {
	t.Parallel()
	mt := time.Date(2024, 5, 1, 12, 30, 0, 0, time.Local).UnixNano()
	entries := []transport.Entry{
		{Name: "docs", Type: transport.TypeDir, Mode: 0o755, Mtime: mt},
		{Name: "a b.txt", Type: transport.TypeFile, Size: 123456, Mode: 0o644, Mtime: mt},
		{Name: "link", Type: transport.TypeSymlink, Size: 4, Mode: 0o777, Mtime: mt},
		{Name: "two\nlines\x1b[2J", Type: transport.TypeFile, Size: 1, Mode: 0o600, Mtime: mt},
		{Name: "evil\u202etxt.exe", Type: transport.TypeFile, Size: 1, Mode: 0o600, Mtime: mt},
		{Name: "fifo", Type: transport.TypeFIFO, Mode: 0o644, Mtime: mt},
		{Name: "odd", Type: transport.TypeOther, Mode: 0o644, Mtime: mt},
	}
	tests := []struct {
		name              string
		long, human, json bool
		want              string
	}{
		{"short", false, false, false, "docs\na b.txt\nlink\n\"two\\nlines\\x1b[2J\"\n\"evil\\u202etxt.exe\"\nfifo\nodd\n"},
		{"human", true, true, false, "" +
			"drwxr-xr-x       0 B 2024-05-01 12:30 docs\n" +
			"-rw-r--r-- 120.6 KiB 2024-05-01 12:30 a b.txt\n" +
			"lrwxrwxrwx       4 B 2024-05-01 12:30 link\n" +
			"-rw-------       1 B 2024-05-01 12:30 \"two\\nlines\\x1b[2J\"\n" +
			"-rw-------       1 B 2024-05-01 12:30 \"evil\\u202etxt.exe\"\n" +
			"prw-r--r--       0 B 2024-05-01 12:30 fifo\n" +
			"?rw-r--r--       0 B 2024-05-01 12:30 odd\n"},
		{"long", true, false, false, "" +
			"drwxr-xr-x      0 2024-05-01 12:30 docs\n" +
			"-rw-r--r-- 123456 2024-05-01 12:30 a b.txt\n" +
			"lrwxrwxrwx      4 2024-05-01 12:30 link\n" +
			"-rw-------      1 2024-05-01 12:30 \"two\\nlines\\x1b[2J\"\n" +
			"-rw-------      1 2024-05-01 12:30 \"evil\\u202etxt.exe\"\n" +
			"prw-r--r--      0 2024-05-01 12:30 fifo\n" +
			"?rw-r--r--      0 2024-05-01 12:30 odd\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := printEntries(&b, entries, listFlags{Long: tt.long, Human: tt.human, JSON: tt.json}); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", b.String(), tt.want)
			}
		})
	}
	var b bytes.Buffer
	if err := printEntries(&b, nil, listFlags{JSON: true}); err != nil || b.String() != "[]\n" {
		t.Fatalf("empty json = %q, %v", b.String(), err)
	}
}

// Names reach the terminal quoted where they would break a line or send
// it escape sequences; hash lines follow b3sum's escaping.
func TestNamesInOutput(t *testing.T) {
	t.Parallel()
	tests := []struct{ got, want string }{
		{summaryLine("get", "/a\nb", session.TransferResult{Same: true}), `get "/a\nb": already there (same size, time and BLAKE3)`},
		{summaryLine("get", "red\x1b[31m", session.TransferResult{Bytes: 1, Duration: time.Second}), `get "red\x1b[31m" 1 B in 1s, 1 B/s, verified`},
		{failureLine(session.Failure{Path: "x\ty", Err: errors.New("boom")}), `x\ty: boom`},
		{failureLine(session.Failure{Path: "/a\x1b[31m", Err: &session.OpError{Op: "get", Path: "/a\x1b[31m", Err: errors.New("boom")}}), `get /a\x1b[31m: boom`},
		{sumLine("ab", "plain name", false), "ab  plain name"},
		{sumLine("ab", "two\nlines", false), `\ab  two\nlines`},
		{sumLine("ab", `back\slash`, false), `\ab  back\\slash`},
		{sumLine("ab", "cr\rhere", false), "ab  cr\rhere"}, // as b3sum
		{sumLine("ab", "cr\rhere", true), `\ab  cr\rhere`}, // as sha256sum 9.1
		{sumLine("ab", "two\nlines\\", true), `\ab  two\nlines\\`},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got  %s\nwant %s", tt.got, tt.want)
		}
	}
}

// Tab after lcd offers directories only; after lls, everything.
func TestCompleteLocalDirs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := &completer{sh: &shell{localDir: dir}}
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"lcd d", []string{"docs" + string(filepath.Separator)}},
		{"lls d", []string{"data.txt ", "docs" + string(filepath.Separator)}},
	} {
		_, got, _ := c.complete(tc.line, len(tc.line))
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("complete(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}
