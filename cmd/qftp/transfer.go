package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/size"
	"github.com/qftp/qftp/transport"
)

type getCmd struct {
	Force    bool   `short:"f" help:"Replace an existing local file."`
	Continue bool   `short:"c" help:"Resume from a partial download even of a small file (by default qftp resumes when it safely can)."`
	Remote   string `arg:"" help:"Remote file."`
	Local    string `arg:"" optional:"" help:"Local file or directory (default: working directory)."`
}

func (c *getCmd) Run(ctx context.Context, sh *shell) error {
	res, err := sh.client.Get(ctx, c.Remote, sh.local(c.Local), sh.transferOptions(c.Force, c.Continue))
	if err != nil {
		return err
	}
	sh.summary("get", c.Remote, res)
	return nil
}

type putCmd struct {
	Force    bool   `short:"f" help:"Replace an existing remote file."`
	Continue bool   `short:"c" help:"Ask the server for a partial upload to resume even for a small file (by default qftp resumes when it safely can)."`
	Local    string `arg:"" help:"Local file."`
	Remote   string `arg:"" optional:"" help:"Remote file or directory (default: working directory)."`
}

func (c *putCmd) Run(ctx context.Context, sh *shell) error {
	res, err := sh.client.Put(ctx, sh.local(c.Local), c.Remote, sh.transferOptions(c.Force, c.Continue))
	if err != nil {
		return err
	}
	sh.summary("put", c.Local, res)
	return nil
}

func (sh *shell) transferOptions(force, cont bool) session.TransferOptions {
	opt := session.TransferOptions{
		Force:  force,
		Notify: func(msg string) { fmt.Fprintln(sh.io.err, msg) },
	}
	if cont {
		opt.Resume = session.ResumeAlways
	}
	return opt
}

// summary prints one line per finished transfer on stderr.
func (sh *shell) summary(op, name string, res session.TransferResult) {
	secs := res.Duration.Seconds()
	rate := "-"
	moved := res.Bytes - res.Resumed
	if secs > 0 {
		rate = size.Format(int64(float64(moved)/secs)) + "/s"
	}
	extra := ""
	if res.Resumed > 0 {
		extra = ", " + size.Format(res.Resumed) + " resumed"
	}
	fmt.Fprintf(sh.io.err, "%s %s %s in %s, %s%s, verified\n", op, name, size.Format(res.Bytes), res.Duration.Round(time.Millisecond), rate, extra)
}

type hashCmd struct {
	SHA256 bool   `name:"sha256" help:"SHA-256 in sha256sum format instead of BLAKE3 in b3sum format."`
	Path   string `arg:"" help:"Remote file."`
}

func (c *hashCmd) Run(ctx context.Context, sh *shell) error {
	algo := transport.AlgoBLAKE3
	if c.SHA256 {
		algo = transport.AlgoSHA256
	}
	sum, err := sh.client.Hash(ctx, c.Path, algo)
	if err != nil {
		return err
	}
	// b3sum and sha256sum print the digest, two spaces and the name.
	fmt.Fprintf(sh.io.out, "%s  %s\n", hex.EncodeToString(sum), c.Path)
	return nil
}
