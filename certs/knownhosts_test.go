package certs_test

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/qftp/qftp/certs"
)

// testFP returns a valid fingerprint derived from seed.
func testFP(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

func TestHostKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		host string
		port int
		want string
	}{
		{name: "name", host: "example.com", port: 7443, want: "example.com:7443"},
		{name: "uppercase name", host: "Example.COM", port: 7443, want: "example.com:7443"},
		{name: "trailing dot", host: "example.com.", port: 7443, want: "example.com:7443"},
		{name: "ipv4", host: "127.0.0.1", port: 7443, want: "127.0.0.1:7443"},
		{name: "ipv6", host: "::1", port: 7443, want: "[::1]:7443"},
		{name: "ipv6 bracketed", host: "[::1]", port: 7443, want: "[::1]:7443"},
		{name: "ipv6 long form", host: "0:0:0:0:0:0:0:1", port: 7443, want: "[::1]:7443"},
		{name: "ipv6 uppercase", host: "2001:DB8::A", port: 1, want: "[2001:db8::a]:1"},
		{name: "ipv4-mapped", host: "::ffff:192.0.2.1", port: 7443, want: "192.0.2.1:7443"},
		{name: "ipv6 zone", host: "fe80::1%eth0", port: 7443, want: "[fe80::1%eth0]:7443"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := certs.HostKey(tt.host, tt.port); got != tt.want {
				t.Errorf("HostKey(%q, %d) = %q, want %q", tt.host, tt.port, got, tt.want)
			}
		})
	}
}

func TestKnownHostsLookup(t *testing.T) {
	t.Parallel()
	fpA, fpB, fpC := testFP("a"), testFP("b"), testFP("c")
	tests := []struct {
		name     string
		content  *string // nil: file does not exist
		host     string
		wantFP   string
		wantLine int
		wantErr  string // substring; "FILE" is replaced by the path
	}{
		{name: "missing file", host: "a.example:7443"},
		{name: "empty file", content: ptr(""), host: "a.example:7443"},
		{
			name:     "found after comments",
			content:  ptr("# pinned by qftp\n\n   \n  # indented comment\na.example:7443 " + fpA + "\n"),
			host:     "a.example:7443",
			wantFP:   fpA,
			wantLine: 5,
		},
		{
			name:    "other port is another host",
			content: ptr("a.example:7443 " + fpA + "\n"),
			host:    "a.example:7444",
		},
		{
			name:     "first entry wins",
			content:  ptr("a.example:1 " + fpA + "\na.example:1 " + fpB + "\n"),
			host:     "a.example:1",
			wantFP:   fpA,
			wantLine: 1,
		},
		{
			name:     "hand-written entry normalized",
			content:  ptr("  A.Example.:7443\t" + fpB + "=  \r\n"),
			host:     "a.example:7443",
			wantFP:   fpB,
			wantLine: 1,
		},
		{
			name:     "no final newline",
			content:  ptr("x:1 " + fpA + "\na.example:7443 " + fpC),
			host:     "a.example:7443",
			wantFP:   fpC,
			wantLine: 2,
		},
		{
			name:     "ipv6",
			content:  ptr("[::1]:7443 " + fpA + "\n[2001:db8::1]:7443 " + fpB + "\n"),
			host:     "[2001:db8::1]:7443",
			wantFP:   fpB,
			wantLine: 2,
		},
		{
			name:     "ipv6 long form in file",
			content:  ptr("[0:0:0:0:0:0:0:1]:7443 " + fpA + "\n"),
			host:     certs.HostKey("::1", 7443),
			wantFP:   fpA,
			wantLine: 1,
		},
		{
			name:     "query normalized",
			content:  ptr("a.example:7443 " + fpA + "\n"),
			host:     "A.EXAMPLE:7443",
			wantFP:   fpA,
			wantLine: 1,
		},
		{
			name:    "one field",
			content: ptr("# ok\na.example:7443\n"),
			host:    "a.example:7443",
			wantErr: "FILE:2: malformed",
		},
		{
			name:    "three fields",
			content: ptr("a.example:7443 " + fpA + " extra\n"),
			host:    "a.example:7443",
			wantErr: "FILE:1: malformed",
		},
		{
			name:    "bad fingerprint",
			content: ptr("a.example:7443 " + fpA + "\nb.example:7443 MD5:abc\n"),
			host:    "a.example:7443",
			wantErr: "FILE:2: malformed",
		},
		{
			name:    "missing port",
			content: ptr("a.example " + fpA + "\n"),
			host:    "a.example:7443",
			wantErr: "FILE:1: malformed",
		},
		{
			name:    "unbracketed ipv6",
			content: ptr("\n\n::1:7443 " + fpA + "\n"),
			host:    "[::1]:7443",
			wantErr: "FILE:3: malformed",
		},
		{
			name:    "bad query",
			content: ptr(""),
			host:    "a.example",
			wantErr: "invalid host key",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "known_hosts")
			if tt.content != nil {
				mustWrite(t, path, *tt.content, 0o600)
			}
			kh := certs.OpenKnownHosts(path)
			if kh.Path() != path {
				t.Errorf("Path() = %q, want %q", kh.Path(), path)
			}

			fp, line, ok, err := kh.Lookup(tt.host)
			if tt.wantErr != "" {
				want := strings.ReplaceAll(tt.wantErr, "FILE", path)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("Lookup err = %v, want it to contain %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if ok != (tt.wantFP != "") || fp != tt.wantFP || line != tt.wantLine {
				t.Errorf("Lookup(%q) = %q, %d, %v; want %q, %d, %v", tt.host, fp, line, ok, tt.wantFP, tt.wantLine, tt.wantFP != "")
			}
		})
	}
}

func TestKnownHostsAdd(t *testing.T) {
	t.Parallel()
	fpA, fpB := testFP("a"), testFP("b")
	tests := []struct {
		name     string
		content  *string // nil: file does not exist
		host, fp string
		want     string // whole file afterwards
		wantErr  bool
	}{
		{
			name: "creates file",
			host: "a.example:7443", fp: fpA,
			want: "a.example:7443 " + fpA + "\n",
		},
		{
			name:    "keeps comments",
			content: ptr("# my hosts\n\nb.example:1 " + fpB + "\n"),
			host:    "a.example:7443", fp: fpA,
			want: "# my hosts\n\nb.example:1 " + fpB + "\na.example:7443 " + fpA + "\n",
		},
		{
			name:    "adds missing newline",
			content: ptr("# no newline"),
			host:    "a.example:7443", fp: fpA,
			want: "# no newline\na.example:7443 " + fpA + "\n",
		},
		{
			name: "normalizes",
			host: "[0:0::1]:7443", fp: " " + fpA + "=",
			want: "[::1]:7443 " + fpA + "\n",
		},
		{name: "bad host", host: "a.example", fp: fpA, wantErr: true},
		{name: "host with space", host: "a b:1", fp: fpA, wantErr: true},
		{name: "comment host", host: "#a:1", fp: fpA, wantErr: true},
		{name: "port zero", host: "a:0", fp: fpA, wantErr: true},
		{name: "bad fingerprint", host: "a.example:1", fp: "SHA256:nope", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "config", "qftp")
			path := filepath.Join(dir, "known_hosts")
			if tt.content != nil {
				mustMkdir(t, dir)
				mustWrite(t, path, *tt.content, 0o600)
			}
			kh := certs.OpenKnownHosts(path)

			err := kh.Add(tt.host, tt.fp)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Add(%q, %q) succeeded, want error", tt.host, tt.fp)
				}
				if _, statErr := os.Stat(path); statErr == nil {
					t.Errorf("rejected Add created %s", path)
				}
				return
			}
			if err != nil {
				t.Fatalf("Add: %v", err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("file = %q, want %q", got, tt.want)
			}
			if tt.content == nil {
				assertMode(t, dir, fs.ModeDir|0o700)
				assertMode(t, path, 0o600)
			}
			fp, _, ok, err := kh.Lookup(tt.host)
			if err != nil || !ok || fp != strings.TrimSuffix(strings.TrimSpace(tt.fp), "=") {
				t.Errorf("Lookup after Add = %q, %v, %v", fp, ok, err)
			}
		})
	}
}

func TestKnownHostsConcurrentAdd(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "known_hosts")
	kh := certs.OpenKnownHosts(path)
	const n = 50
	hostAt := func(i int) string { return certs.HostKey(fmt.Sprintf("h%d.example", i), 7443) }

	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			if err := kh.Add(hostAt(i), testFP(hostAt(i))); err != nil {
				errs <- err
			}
			// Lookups racing with other Adds must never see a torn line.
			if _, _, _, err := kh.Lookup(hostAt((i + 1) % n)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(data), "\n"); got != n {
		t.Errorf("file has %d lines, want %d", got, n)
	}
	for i := range n {
		fp, _, ok, err := kh.Lookup(hostAt(i))
		if err != nil || !ok || fp != testFP(hostAt(i)) {
			t.Errorf("Lookup(%s) = %q, %v, %v; want %s", hostAt(i), fp, ok, err, testFP(hostAt(i)))
		}
	}
}

func ptr[T any](v T) *T { return &v }
