// Package size parses and formats byte counts the way people write them:
// "100MiB", "1.5GB", "0" or "unlimited".
package size

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

var units = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1e3, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1e6, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1e9, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1e12, "tib": 1 << 40,
	"p": 1 << 50, "pb": 1e15, "pib": 1 << 50,
}

// ErrSyntax is wrapped by Parse's errors.
var ErrSyntax = errors.New(`want a size such as 100MiB, 1.5GB, 512K or "unlimited"`)

// Parse reads a size in bytes. Decimal units (KB, MB, GB, TB) are powers of
// 1000, binary units (KiB, MiB, ...) and bare letters (K, M, G) powers of
// 1024; case is ignored. "unlimited", "none" and "0" give 0.
func Parse(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch t {
	case "unlimited", "none", "0":
		return 0, nil
	case "":
		return 0, fmt.Errorf("empty size: %w", ErrSyntax)
	}
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	mult, ok := units[unit]
	if !ok || num == "" {
		return 0, fmt.Errorf("size %q: %w", s, ErrSyntax)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsNaN(v) {
		return 0, fmt.Errorf("size %q: %w", s, ErrSyntax)
	}
	if mult == 1 && v != math.Trunc(v) {
		// "0.5" would round to a byte: surely a unit was forgotten.
		return 0, fmt.Errorf("size %q: not a whole number of bytes (a unit forgotten? %w)", s, ErrSyntax)
	}
	b := math.Round(v * mult)
	if b >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return int64(b), nil
}

// Format prints n bytes with a binary unit and up to one decimal:
// 0 B, 512 B, 1.5 KiB, 100 MiB.
func Format(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	const suffix = "KMGTPE"
	v := float64(n)
	i := -1
	for v >= 1024 && i < len(suffix)-1 {
		v /= 1024
		i++
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + string(suffix[i]) + "iB"
}

// FormatQuota is Format, but 0 reads "unlimited".
func FormatQuota(n int64) string {
	if n == 0 {
		return "unlimited"
	}
	return Format(n)
}

// FormatRate prints a rate of n bytes per second, as "1.5 MiB/s"; 0
// reads "unlimited".
func FormatRate(n int64) string {
	if n == 0 {
		return "unlimited"
	}
	return Format(n) + "/s"
}
