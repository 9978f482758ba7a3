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

func TestYesNoAsksAgain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		answers []string
		want    bool
		asked   int // times "Please type yes or no" was printed
	}{
		{[]string{"yes"}, true, 0},
		{[]string{"N"}, false, 0},
		{[]string{"sure", "y"}, true, 1},
		{[]string{"", "maybe", "ok"}, false, 3},
	} {
		var out strings.Builder
		i := 0
		got, err := yesNo(&out, func() (string, error) { i++; return tc.answers[i-1], nil })
		if err != nil || got != tc.want || strings.Count(out.String(), "Please type yes or no") != tc.asked {
			t.Errorf("answers %q: %v, %v, %q", tc.answers, got, err, out.String())
		}
	}
}
