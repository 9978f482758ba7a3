// Command qftpd is the qftp file transfer server.
package main

import (
	"context"
	"os"
	"syscall"

	"github.com/qftp/qftp/cmd/internal/sigctx"
)

func main() {
	// SIGINT, SIGTERM and SIGHUP (the terminal of `make run` closed) stop
	// the server gracefully (serve --grace); a SIGHUP that nohup ignores
	// stays ignored. The signal is the context's cause, for the log.
	ctx, stop := sigctx.WithSignals(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	code := run(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	stop()
	os.Exit(code)
}
