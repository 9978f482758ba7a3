package main

import (
	"context"
	"fmt"

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
		_, leaf, _, err := certs.LoadOrCreate(g.data)
		if err != nil {
			return err
		}
		fp = certs.Fingerprint(leaf)
	}
	fmt.Fprintln(g.io.out, fp)
	return nil
}
