// Package sigctx ends contexts on signals, with the signal as the cause,
// for the qftp and qftpd command lines.
package sigctx

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// Error is the cause of a context that a signal ended.
type Error struct{ Signal os.Signal }

func (e Error) Error() string { return e.Signal.String() }

// Status is the exit status of a command that the signal ended, as shells
// report it: 128 + the signal's number (130 for Ctrl-C), else 1.
func (e Error) Status() int {
	if n, ok := e.Signal.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 1
}

// WithSignals returns a copy of parent that the first of sigs to arrive
// cancels, with an Error as its cause. SIGHUP is left out if it is
// ignored (as under nohup: listening would undo that). stop releases the
// signals and the context.
func WithSignals(parent context.Context, sigs ...os.Signal) (ctx context.Context, stop func()) {
	var listen []os.Signal
	for _, s := range sigs {
		if s == syscall.SIGHUP && signal.Ignored(s) {
			continue
		}
		listen = append(listen, s)
	}
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, listen...)
	go func() {
		select {
		case sig := <-ch:
			cancel(Error{sig})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(nil)
	}
}
