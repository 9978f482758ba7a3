package main

import (
	"bytes"
	"strings"
	"testing"
)

// Each bar of a batch shows its own transfer's connections.
func TestProgressWidthPerBar(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	pr := newProgress(t.Context(), &out, true, 2, 200)
	a, b := pr.file("alpha", true), pr.file("beta", true)
	a.Progress(0, 100)
	b.Progress(0, 100)
	a.Width(5)
	b.Width(3)
	a.Progress(100, 100)
	b.Progress(100, 100)
	pr.finish()
	var alpha, beta string
	for _, line := range strings.Split(out.String(), "\n") {
		switch {
		case strings.Contains(line, "alpha"):
			alpha = line
		case strings.Contains(line, "beta"):
			beta = line
		}
	}
	if !strings.Contains(alpha, "×5 conns") || !strings.Contains(beta, "×3 conns") {
		t.Fatalf("bars:\n%s\n%s", alpha, beta)
	}
}
