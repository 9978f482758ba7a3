// Package prompt reads answers and passwords from a terminal for the qftp
// and qftpd command lines.
package prompt

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// ErrNoTerminal is returned when input is needed but stdin is not a
// terminal.
var ErrNoTerminal = errors.New("standard input is not a terminal")

// IsTerminal reports whether r is a terminal.
func IsTerminal(r any) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Password prints msg to out and reads a line from in without echo. in must
// be a terminal. When ctx ends first (Ctrl-C), it restores the terminal and
// returns ctx's error.
func Password(ctx context.Context, in io.Reader, out io.Writer, msg string) (string, error) {
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", ErrNoTerminal
	}
	fd := int(f.Fd())
	state, err := term.GetState(fd)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	fmt.Fprint(out, msg)
	b, err := readUntilDone(ctx, func() ([]byte, error) { return term.ReadPassword(fd) })
	fmt.Fprintln(out)
	if ctx.Err() != nil {
		_ = term.Restore(fd, state) // echo back on
	}
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(b), nil
}

// readUntilDone returns what read returns, or ctx's error if ctx ends
// first. A terminal read cannot be interrupted, so read then stays blocked
// in its goroutine: the callers give up and exit, which ends it.
func readUntilDone[T any](ctx context.Context, read func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := read()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// NewPassword asks for a password twice and checks that both match.
func NewPassword(ctx context.Context, in io.Reader, out io.Writer) (string, error) {
	p1, err := Password(ctx, in, out, "New password: ")
	if err != nil {
		return "", err
	}
	p2, err := Password(ctx, in, out, "Retype password: ")
	if err != nil {
		return "", err
	}
	if p1 != p2 {
		return "", errors.New("passwords do not match")
	}
	return p1, nil
}

// Line reads one line from r (a password piped in, an answer), without the
// line ending. An empty input is an error.
func Line(r io.Reader) (string, error) {
	s, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && s != "") {
		if errors.Is(err, io.EOF) {
			return "", errors.New("no input")
		}
		return "", err
	}
	return strings.TrimRight(s, "\r\n"), nil
}

// YesNo asks a yes/no question on a terminal; only "yes" or "y" is yes.
// When ctx ends first, it returns ctx's error.
func YesNo(ctx context.Context, in io.Reader, out io.Writer, question string) (bool, error) {
	if !IsTerminal(in) {
		return false, ErrNoTerminal
	}
	fmt.Fprint(out, question)
	return yesNo(out, func() (string, error) {
		return readUntilDone(ctx, func() (string, error) { return Line(in) })
	})
}

// yesNo reads answers until one is yes or no, as ssh asks; a third answer
// that is neither is no.
func yesNo(out io.Writer, read func() (string, error)) (bool, error) {
	for range 3 {
		s, err := read()
		if err != nil {
			return false, err
		}
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "yes", "y":
			return true, nil
		case "no", "n":
			return false, nil
		}
		fmt.Fprint(out, "Please type yes or no: ")
	}
	return false, nil
}
