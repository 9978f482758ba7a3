// Command qftp is the qftp file transfer client.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// SIGTERM and SIGHUP (a closed terminal or ssh session) end qftp
	// cleanly, so that its transfers leave partials that resume; SIGINT
	// (Ctrl-C) is the shell's to interpret: cancel one command when
	// interactive, else end qftp. A SIGHUP that nohup ignores stays
	// ignored (Notify would undo that).
	sigs := []os.Signal{syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	term := make(chan os.Signal, 1)
	signal.Notify(term, sigs...)
	go func() {
		select {
		case sig := <-term:
			cancel(signalError{sig})
		case <-ctx.Done():
		}
	}()
	intr := make(chan os.Signal, 1)
	signal.Notify(intr, os.Interrupt)
	code := run(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr, intr: intr})
	signal.Stop(term)
	cancel(nil)
	os.Exit(code)
}
