package main

import (
	"slices"
	"testing"
)

func TestSplitLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []string
		err  bool
	}{
		{"empty", "", nil, false},
		{"blanks", "  \t ", nil, false},
		{"words", "get a b", []string{"get", "a", "b"}, false},
		{"single quotes", "put 'my file.txt'", []string{"put", "my file.txt"}, false},
		{"double quotes", `put "a \"q\" b"`, []string{"put", `a "q" b`}, false},
		{"backslash space", `put my\ file`, []string{"put", "my file"}, false},
		{"joined quotes", `a'b c'"d"`, []string{"ab cd"}, false},
		{"empty quotes", `cd ''`, []string{"cd", ""}, false},
		{"unicode", "put 文件 😀.txt", []string{"put", "文件", "😀.txt"}, false},
		{"comment", "ls # list", []string{"ls"}, false},
		{"hash inside word", "ls a#b", []string{"ls", "a#b"}, false},
		{"unterminated single", "put 'abc", nil, true},
		{"unterminated double", `put "abc`, nil, true},
		{"trailing backslash", `put abc\`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := splitLine(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("splitLine(%q) err = %v, want error %v", tt.in, err, tt.err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("splitLine(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzSplitLine(f *testing.F) {
	for _, s := range []string{`put "a b" 'c d' e\ f`, "ls # x", `"\\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = splitLine(s)
	})
}
