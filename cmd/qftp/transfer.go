package main

import (
	"context"
	"fmt"
	"time"

	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/size"
)

type getCmd struct {
	Force  bool   `short:"f" help:"Replace an existing local file."`
	Remote string `arg:"" help:"Remote file."`
	Local  string `arg:"" optional:"" help:"Local file or directory (default: working directory)."`
}

func (c *getCmd) Run(ctx context.Context, sh *shell) error {
	res, err := sh.client.Get(ctx, c.Remote, sh.local(c.Local), session.TransferOptions{Force: c.Force})
	if err != nil {
		return err
	}
	sh.summary("get", c.Remote, res)
	return nil
}

type putCmd struct {
	Force  bool   `short:"f" help:"Replace an existing remote file."`
	Local  string `arg:"" help:"Local file."`
	Remote string `arg:"" optional:"" help:"Remote file or directory (default: working directory)."`
}

func (c *putCmd) Run(ctx context.Context, sh *shell) error {
	res, err := sh.client.Put(ctx, sh.local(c.Local), c.Remote, session.TransferOptions{Force: c.Force})
	if err != nil {
		return err
	}
	sh.summary("put", c.Local, res)
	return nil
}

// summary prints one line per finished transfer on stderr.
func (sh *shell) summary(op, name string, res session.TransferResult) {
	secs := res.Duration.Seconds()
	rate := "-"
	if secs > 0 {
		rate = size.Format(int64(float64(res.Bytes)/secs)) + "/s"
	}
	fmt.Fprintf(sh.io.err, "%s %s %s in %s, %s\n", op, name, size.Format(res.Bytes), res.Duration.Round(time.Millisecond), rate)
}
