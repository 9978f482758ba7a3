// Command qftp is the qftp file transfer client.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// SIGTERM ends qftp; SIGINT (Ctrl-C) is the shell's to interpret:
	// cancel one command when interactive, else end qftp.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	intr := make(chan os.Signal, 1)
	signal.Notify(intr, os.Interrupt)
	code := run(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr, intr: intr})
	stop()
	os.Exit(code)
}
