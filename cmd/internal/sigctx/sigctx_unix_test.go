//go:build unix

package sigctx

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"
)

func TestWithSignals(t *testing.T) {
	ctx, stop := WithSignals(context.Background(), syscall.SIGUSR1)
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the signal did not end the context")
	}
	var e Error
	if !errors.As(context.Cause(ctx), &e) || e.Signal != syscall.SIGUSR1 || e.Status() != 128+int(syscall.SIGUSR1) || e.Error() != "user defined signal 1" {
		t.Fatalf("cause %v (status %d)", context.Cause(ctx), e.Status())
	}
	if Error.Status(Error{Signal: syscall.SIGINT}) != 130 {
		t.Fatal("Ctrl-C is not 130")
	}
}
