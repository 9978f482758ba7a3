// Command qftp is the qftp file transfer client.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/qftp/qftp/cmd/internal/sigctx"
)

func main() {
	// SIGTERM and SIGHUP (a closed terminal or ssh session) end qftp
	// cleanly, so that its transfers leave partials that resume; SIGINT
	// (Ctrl-C) is the shell's to interpret: cancel one command when
	// interactive, else end qftp. A SIGHUP that nohup ignores stays
	// ignored (see sigctx).
	ctx, stop := sigctx.WithSignals(context.Background(), syscall.SIGTERM, syscall.SIGHUP)
	intr := make(chan os.Signal, 1)
	signal.Notify(intr, os.Interrupt)
	tty := func() (*os.File, error) { return os.OpenFile("/dev/tty", os.O_RDWR, 0) }
	code := run(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr, intr: intr, tty: tty})
	stop()
	os.Exit(code)
}
