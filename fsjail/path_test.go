package fsjail

import (
	"errors"
	"io/fs"
	"path"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	long255 := strings.Repeat("x", 255)
	tests := []struct {
		name    string
		cwd, p  string
		want    string
		wantErr error // nil, ErrInvalidPath or ErrEscapes
	}{
		{name: "root", cwd: "/", p: "/", want: "/"},
		{name: "dot at root", cwd: "/", p: ".", want: "/"},
		{name: "relative at root", cwd: "/", p: "a", want: "/a"},
		{name: "relative joins cwd", cwd: "/docs", p: "2024/a.txt", want: "/docs/2024/a.txt"},
		{name: "absolute ignores cwd", cwd: "/docs", p: "/etc/passwd", want: "/etc/passwd"},
		{name: "dot components", cwd: "/docs", p: "./a/./b/.", want: "/docs/a/b"},
		{name: "dotdot pops", cwd: "/docs/2024", p: "../2025/x", want: "/docs/2025/x"},
		{name: "dotdot to root", cwd: "/docs", p: "..", want: "/"},
		{name: "dotdot inside absolute", cwd: "/", p: "/a/b/../../c", want: "/c"},
		{name: "double slashes", cwd: "/", p: "//a//b/", want: "/a/b"},
		{name: "trailing slash", cwd: "/docs", p: "sub/", want: "/docs/sub"},
		{name: "only slashes", cwd: "/docs", p: "///", want: "/"},
		{name: "dots in names", cwd: "/", p: "...", want: "/..."},
		{name: "dotdot prefix name", cwd: "/", p: "..a/b..", want: "/..a/b.."},
		{name: "chinese", cwd: "/", p: "文档/报告.txt", want: "/文档/报告.txt"},
		{name: "emoji", cwd: "/📁", p: "😀 smile.png", want: "/📁/😀 smile.png"},
		{name: "spaces", cwd: "/", p: " my docs / a b.txt ", want: "/ my docs / a b.txt "},
		{name: "255 byte component", cwd: "/", p: long255, want: "/" + long255},
		{name: "near reserved prefix", cwd: "/", p: ".qftp", want: "/.qftp"},
		{name: "reserved in middle of name", cwd: "/", p: "a.qftp-tmp", want: "/a.qftp-tmp"},
		{name: "4096 bytes", cwd: "/", p: "/" + strings.Repeat("a/", 2047) + "b", want: "/" + strings.Repeat("a/", 2047) + "b"},

		{name: "dotdot above root", cwd: "/", p: "..", wantErr: ErrEscapes},
		{name: "dotdot slash", cwd: "/", p: "../", wantErr: ErrEscapes},
		{name: "dotdot above root from cwd", cwd: "/docs/2024", p: "../../../etc/passwd", wantErr: ErrEscapes},
		{name: "absolute dotdot", cwd: "/docs", p: "/../docs", wantErr: ErrEscapes},
		{name: "dotdot after pop", cwd: "/", p: "a/../../b", wantErr: ErrEscapes},

		{name: "empty", cwd: "/", p: "", wantErr: ErrInvalidPath},
		{name: "NUL", cwd: "/", p: "a\x00b", wantErr: ErrInvalidPath},
		{name: "backslash", cwd: "/", p: `a\b`, wantErr: ErrInvalidPath},
		{name: "backslash dotdot", cwd: "/", p: `..\..\etc`, wantErr: ErrInvalidPath},
		{name: "invalid UTF-8", cwd: "/", p: "a\xffb", wantErr: ErrInvalidPath},
		{name: "overlong UTF-8 slash", cwd: "/", p: "a\xc0\xafb", wantErr: ErrInvalidPath},
		{name: "4097 bytes", cwd: "/", p: "/" + strings.Repeat("a", 4096), wantErr: ErrInvalidPath},
		{name: "256 byte component", cwd: "/", p: strings.Repeat("x", 256), wantErr: ErrInvalidPath},
		{name: "result over 4096 bytes", cwd: "/" + strings.Repeat("c", 255), p: strings.Repeat("a/", 1920) + "b", wantErr: ErrInvalidPath},
		{name: "reserved name", cwd: "/", p: ".qftp-tmp-0123456789abcdef", wantErr: ErrInvalidPath},
		{name: "reserved prefix alone", cwd: "/", p: "/docs/.qftp-", wantErr: ErrInvalidPath},
		{name: "reserved then popped", cwd: "/", p: ".qftp-x/../a", wantErr: ErrInvalidPath},
		{name: "reserved dir", cwd: "/", p: "/.qftp-state/a", wantErr: ErrInvalidPath},
		{name: "cwd not resolved", cwd: "docs", p: "a", wantErr: ErrInvalidPath},
		{name: "cwd trailing slash", cwd: "/docs/", p: "a", wantErr: ErrInvalidPath},
		{name: "cwd with dotdot", cwd: "/docs/..", p: "a", wantErr: ErrInvalidPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Resolve(tt.cwd, tt.p)
			if tt.wantErr == nil {
				if err != nil || got != tt.want {
					t.Fatalf("Resolve(%q, %q) = %q, %v; want %q", tt.cwd, tt.p, got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Resolve(%q, %q) = %q, %v; want %v", tt.cwd, tt.p, got, err, tt.wantErr)
			}
			var pe *fs.PathError
			if !errors.As(err, &pe) || pe.Op != "resolve" {
				t.Errorf("error %v is not an *fs.PathError with Op resolve", err)
			}
			if got != "" {
				t.Errorf("got %q with an error", got)
			}
		})
	}
}

func TestResolveErrorKinds(t *testing.T) {
	t.Parallel()
	_, err := Resolve("/", "../x")
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("escape error %v does not match fs.ErrPermission", err)
	}
	_, err = Resolve("/", "a\x00")
	if !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("invalid path error %v does not match fs.ErrInvalid", err)
	}
	if strings.ContainsRune(err.Error(), 0) {
		t.Errorf("error %q contains a NUL byte", err)
	}
	_, err = Resolve("/", "/"+strings.Repeat("\xff", 5000))
	if msg := err.Error(); len(msg) > 2000 || !strings.Contains(msg, "invalid path") {
		t.Errorf("error for long junk not bounded or unclear: %d bytes: %.100q", len(msg), msg)
	}
}

func TestPrintable(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"/docs/a b.txt", "/docs/a b.txt"},
		{"/文档", "/文档"},
		{"a\x00b", `"a\x00b"`},
		{"a\nb", `"a\nb"`},
		{"\xff", `"\xff"`},
		{strings.Repeat("\x01", 300), `"` + strings.Repeat(`\x01`, 256) + `"...`},
	}
	for _, tt := range tests {
		if got := printable(tt.in); got != tt.want {
			t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTempNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		vpath string
		ok    bool
	}{
		{"/.qftp-tmp-0123456789abcdef", true},
		{"/docs/.qftp-tmp-0123456789abcdef", true},
		{"/.qftp-tmp-0123456789ABCDEF", false},
		{"/.qftp-tmp-0123456789abcde", false},
		{"/.qftp-tmp-0123456789abcdef0", false},
		{"/.qftp-tmp-0123456789abcdeg", false},
		{"/.qftp-x-0123456789abcdef01", false},
		{"/docs/a.txt", false},
		{".qftp-tmp-0123456789abcdef", false},
		{"/../.qftp-tmp-0123456789abcdef", false},
		{"/.qftp-x/.qftp-tmp-0123456789abcdef", false},
		{"/docs//.qftp-tmp-0123456789abcdef", false},
	}
	for _, tt := range tests {
		_, err := tempRel(tt.vpath)
		if (err == nil) != tt.ok {
			t.Errorf("tempRel(%q) error = %v, want ok=%v", tt.vpath, err, tt.ok)
		}
	}
}

func FuzzResolve(f *testing.F) {
	for _, seed := range []struct{ cwd, p string }{
		{"/", "a/b/../c"},
		{"/docs", "../../x"},
		{"/docs/2024", "//a//b/"},
		{"/", "./.././a"},
		{"/a", "文档/😀 x"},
		{"/", "a\\b"},
		{"/", "a\x00b"},
		{"/", ".qftp-tmp-0123456789abcdef"},
		{"/x", "\xff"},
	} {
		f.Add(seed.cwd, seed.p)
	}
	f.Fuzz(func(t *testing.T, cwd, p string) {
		out, err := Resolve(cwd, p)
		if err != nil {
			if out != "" {
				t.Fatalf("Resolve(%q, %q) = %q with error %v", cwd, p, out, err)
			}
			if !errors.Is(err, ErrInvalidPath) && !errors.Is(err, ErrEscapes) {
				t.Fatalf("Resolve(%q, %q) error %v is neither ErrInvalidPath nor ErrEscapes", cwd, p, err)
			}
			return
		}
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("Resolve(%q, %q) = %q, not absolute", cwd, p, out)
		}
		if path.Clean(out) != out {
			t.Fatalf("Resolve(%q, %q) = %q, not clean", cwd, p, out)
		}
		if strings.ContainsAny(out, "\x00\\") {
			t.Fatalf("Resolve(%q, %q) = %q contains NUL or backslash", cwd, p, out)
		}
		if len(out) > maxPathLen {
			t.Fatalf("Resolve(%q, %q) = %d bytes", cwd, p, len(out))
		}
		for elem := range strings.SplitSeq(out[1:], "/") {
			if elem == ".." || strings.HasPrefix(elem, ReservedPrefix) || len(elem) > maxNameLen {
				t.Fatalf("Resolve(%q, %q) = %q has component %q", cwd, p, out, elem)
			}
		}
		if again, err := Resolve("/", out); err != nil || again != out {
			t.Fatalf("Resolve(/, %q) = %q, %v; not idempotent", out, again, err)
		}
		if _, err := rootRel(out); err != nil {
			t.Fatalf("rootRel(%q) = %v", out, err)
		}
	})
}
