package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qftp/qftp/session"
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

// A tree's bars name files by their path in the copy, so that two files
// named alike in different directories are told apart; long paths keep
// their end.
func TestBarLabels(t *testing.T) {
	t.Parallel()
	get := &session.Plan{Root: filepath.Join("dl", "tree")}
	put := &session.Plan{Put: true, Root: "/up/tree"}
	mget := &session.Plan{}
	for _, tc := range []struct {
		plan *session.Plan
		job  session.Job
		want string
	}{
		{get, session.Job{Remote: "/tree/bt/f1", Local: filepath.Join("dl", "tree", "bt", "f1")}, "bt/f1"},
		{get, session.Job{Remote: "/tree/f1", Local: filepath.Join("dl", "tree", "f1")}, "f1"},
		{put, session.Job{Remote: "/up/tree/bt/f1", Local: filepath.Join("tree", "bt", "f1")}, "bt/f1"},
		{mget, session.Job{Remote: "/x/f1", Local: "f1"}, "f1"},
	} {
		if got := barLabel(tc.plan, tc.job); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.job, got, tc.want)
		}
	}
	if got := shorten("a/very/long/directory/path/to/file.txt", 12); got != "…to/file.txt" {
		t.Errorf("shorten path: %q", got)
	}
	if got := shorten("a-very-long-file-name.txt", 12); got != "a-very-long…" {
		t.Errorf("shorten name: %q", got)
	}
}
