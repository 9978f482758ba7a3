// Command qftpd is the qftp file transfer server.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// SIGINT, SIGTERM and SIGHUP (the terminal of `make run` closed) stop
	// the server gracefully (serve --grace); a SIGHUP that nohup ignores
	// stays ignored. The signal is the context's cause, for the log.
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		select {
		case sig := <-ch:
			cancel(fmt.Errorf("%v", sig))
		case <-ctx.Done():
		}
	}()
	code := run(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	signal.Stop(ch)
	cancel(nil)
	os.Exit(code)
}
