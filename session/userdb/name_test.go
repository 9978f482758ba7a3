package userdb

import (
	"errors"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"simple", "alice", true},
		{"single letter", "a", true},
		{"leading underscore", "_svc", true},
		{"lone underscore", "_", true},
		{"digits after first", "user01", true},
		{"dot dash underscore", "a.b-c_d", true},
		{"trailing dot", "alice.", true},
		{"max length", strings.Repeat("a", MaxNameLen), true},
		{"empty", "", false},
		{"too long", strings.Repeat("a", MaxNameLen+1), false},
		{"dot", ".", false},
		{"dotdot", "..", false},
		{"leading dot", ".alice", false},
		{"leading dash", "-alice", false},
		{"leading digit", "1alice", false},
		{"upper case", "Alice", false},
		{"slash", "a/b", false},
		{"traversal", "../etc", false},
		{"backslash", `a\b`, false},
		{"space", "a b", false},
		{"NUL", "a\x00", false},
		{"newline", "a\n", false},
		{"dollar", "a$", false},
		{"at", "a@b", false},
		{"colon", "a:b", false},
		{"non-ASCII", "àlice", false},
		{"percent", "a%2e", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidName(tt.in)
			if tt.ok {
				if err != nil {
					t.Fatalf("ValidName(%q) = %v, want nil", tt.in, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidName) {
				t.Fatalf("ValidName(%q) = %v, want ErrInvalidName", tt.in, err)
			}
		})
	}
}

func TestValidNameDoesNotEchoLongInput(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 10000)
	err := ValidName(long)
	if err == nil || len(err.Error()) > 100 {
		t.Fatalf("ValidName(10000 bytes) = %v, want a short error", err)
	}
}
