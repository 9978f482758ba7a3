// Command qftp-bench measures qftp against a bare quic-go stream in one
// process: put and get of one large file and an upload of many small
// files, on loopback and through a lossy in-process UDP relay. It prints a
// table on stdout and its progress on stderr.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
