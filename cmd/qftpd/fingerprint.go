package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/qftp/qftp/certs"
)

type fingerprintCmd struct {
	Cert string `type:"existingfile" help:"PEM certificate to read instead of the generated one."`
}

func (c *fingerprintCmd) Run(ctx context.Context, g *globals) error {
	var fp string
	if c.Cert != "" {
		leaf, err := certs.LoadLeaf(c.Cert)
		if err != nil {
			return err
		}
		fp = certs.Fingerprint(leaf)
	} else {
		// A mistyped --data must not make up a new identity to publish.
		if _, err := os.Stat(g.data); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no data directory at %s (is --data right? qftpd serve or user add creates it)", g.data)
		}
		_, leaf, _, err := certs.LoadOrCreate(g.data)
		if err != nil {
			return err
		}
		fp = certs.Fingerprint(leaf)
	}
	fmt.Fprintln(g.io.out, fp)
	return nil
}
