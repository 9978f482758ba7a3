package size

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"0", 0, false},
		{"unlimited", 0, false},
		{"UNLIMITED", 0, false},
		{"100", 100, false},
		{"100B", 100, false},
		{"1K", 1024, false},
		{"1kb", 1000, false},
		{"100MiB", 100 << 20, false},
		{"1.5GB", 1_500_000_000, false},
		{"1.5GiB", 3 << 29, false},
		{" 2 TiB ", 2 << 40, false},
		{"", 0, true},
		{"-1", 0, true},
		{"1.2.3M", 0, true},
		{"10XB", 0, true},
		{"MiB", 0, true},
		{"1e3", 0, true},
		{"99999999999PiB", 0, true},
		{"0.5", 0, true},  // half a byte: a unit forgotten
		{"1.5B", 0, true}, // the same
		{"2.0", 2, false}, // whole, written oddly
		{"0.5K", 512, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("Parse(%q) err = %v, want error %v", tt.in, err, tt.err)
			}
			if err == nil && got != tt.want {
				t.Fatalf("Parse(%q) = %d, want %d", tt.in, got, tt.want)
			}
			if err != nil && tt.in != "99999999999PiB" && !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse(%q) err = %v, want ErrSyntax", tt.in, err)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1 KiB"}, {1536, "1.5 KiB"},
		{100 << 20, "100 MiB"}, {3 << 29, "1.5 GiB"},
	}
	for _, tt := range tests {
		if got := Format(tt.in); got != tt.want {
			t.Errorf("Format(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := FormatQuota(0); got != "unlimited" {
		t.Errorf("FormatQuota(0) = %q", got)
	}
	if got := FormatRate(0); got != "unlimited" {
		t.Errorf("FormatRate(0) = %q", got)
	}
	if got := FormatRate(3 << 19); got != "1.5 MiB/s" {
		t.Errorf("FormatRate(1.5 MiB) = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1.5GB", "100MiB", "0", "unlimited", "7k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err == nil && n < 0 {
			t.Fatalf("Parse(%q) = %d", s, n)
		}
	})
}
