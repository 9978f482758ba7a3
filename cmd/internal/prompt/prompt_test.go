package prompt

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestReadUntilDone(t *testing.T) {
	t.Parallel()
	// A read that answers.
	got, err := readUntilDone(t.Context(), func() (string, error) { return Line(strings.NewReader("yes\n")) })
	if err != nil || got != "yes" {
		t.Fatalf("read = %q, %v", got, err)
	}
	// A read that never answers gives way to the context (Ctrl-C).
	block, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = readUntilDone(ctx, func() (string, error) {
		close(block)
		<-release
		return "late", nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled read: %v", err)
	}
	<-block // the read ran; it ends when the test does, as at exit
}

func TestNotATerminal(t *testing.T) {
	t.Parallel()
	if _, err := Password(t.Context(), strings.NewReader("pw\n"), &strings.Builder{}, "pw: "); !errors.Is(err, ErrNoTerminal) {
		t.Fatalf("Password from a reader: %v", err)
	}
	if _, err := YesNo(t.Context(), strings.NewReader("yes\n"), &strings.Builder{}, "ok? "); !errors.Is(err, ErrNoTerminal) {
		t.Fatalf("YesNo from a reader: %v", err)
	}
}
