package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/qftp/qftp/certs"
	"github.com/qftp/qftp/fsjail"
	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/size"
	"github.com/qftp/qftp/session/userdb"
	"github.com/qftp/qftp/transport"
	"github.com/qftp/qftp/transport/blocks"
)

type serveCmd struct {
	Listen        string        `default:":7443" env:"QFTPD_LISTEN" help:"UDP address to listen on."`
	Cert          string        `type:"existingfile" help:"PEM certificate to use instead of the generated one (with --key)."`
	Key           string        `type:"existingfile" help:"PEM private key for --cert."`
	DefaultQuota  string        `name:"default-quota" default:"100MiB" help:"Quota of users added without --quota (stored; user add reads it)."`
	PartialMaxAge time.Duration `name:"partial-max-age" default:"168h" help:"Remove partial uploads nobody resumed for this long."`
	Grace         time.Duration `default:"30s" help:"On SIGINT, SIGTERM or SIGHUP, how long running transfers may take to finish."`
	Demo          bool          `help:"If there are no users, create user demo with a random password and print how to connect."`
	MaxStreams    int64         `name:"max-streams" default:"256" help:"Concurrent transfers one connection may run."`
	MaxConns      int           `name:"max-connections" default:"128" help:"Connections one session may stripe over (1: no striping)."`
	UserConns     int           `name:"user-connections" default:"512" help:"Connections all of one user's sessions may have together; a login or join beyond it is refused."`
	Pending       int           `name:"pending-logins" default:"1024" help:"Connections that may wait for their login or join to complete, from all addresses; one beyond is refused as busy."`
	AddrPending   int           `name:"pending-per-address" default:"128" help:"Like --pending-logins, from one IPv4 address or IPv6 /64."`
	UserWindow    string        `name:"user-window" default:"512MiB" help:"Flow-control window all of one user's connections may grow to together (memory QUIC may buffer for the user)."`
	UserBuffers   string        `name:"user-buffers" default:"544MiB" help:"Block buffers all of one user's running transfers may hold; a transfer beyond it is refused as busy and retried by the client."`
	TotalWindow   string        `name:"total-window" default:"2GiB" help:"Like --user-window, for all users together."`
	TotalBuffers  string        `name:"total-buffers" default:"2GiB" help:"Like --user-buffers, for all users together."`
}

// Bounds of the per-user memory flags: a user's connections start with
// 1 MiB windows each, and one transfer in the largest blocks holds two
// of them with their digests (rounded up to whole MiB).
const (
	minUserWindow  = 16 << 20
	minUserBuffers = (2*(blocks.MaxSize+32) + 1<<20 - 1) >> 20 << 20
)

func (c *serveCmd) Validate() error {
	if strings.TrimSpace(c.Listen) == "" {
		// (net would take "" for every address and a random port.)
		return errors.New("--listen: want an address such as :7443 or 127.0.0.1:7443")
	}
	if c.Grace < 0 {
		return errors.New("--grace must not be negative")
	}
	if (c.Cert == "") != (c.Key == "") {
		return errors.New("--cert and --key go together")
	}
	if _, err := parseLimit("--default-quota", c.DefaultQuota); err != nil {
		return err
	}
	if c.PartialMaxAge < time.Minute {
		return errors.New("--partial-max-age must be at least 1m")
	}
	if c.MaxConns < 1 || c.MaxConns > 1024 {
		return errors.New("--max-connections must be between 1 and 1024")
	}
	if c.UserConns < 1 || c.UserConns > 1<<16 {
		return errors.New("--user-connections must be between 1 and 65536")
	}
	if c.Pending < 1 || c.Pending > 1<<20 {
		return errors.New("--pending-logins must be between 1 and 1048576")
	}
	if c.AddrPending < 1 || c.AddrPending > c.Pending {
		return errors.New("--pending-per-address must be between 1 and --pending-logins")
	}
	if c.MaxStreams < 1 || c.MaxStreams > 4096 {
		return errors.New("--max-streams must be between 1 and 4096")
	}
	if n, err := size.Parse(c.UserWindow); err != nil || n < minUserWindow {
		return fmt.Errorf("--user-window: want a size of at least %s", size.Format(minUserWindow))
	}
	if n, err := size.Parse(c.UserBuffers); err != nil || n < minUserBuffers {
		return fmt.Errorf("--user-buffers: want a size of at least %s (two of the largest blocks)", size.Format(minUserBuffers))
	}
	for _, f := range []struct{ name, total, user string }{
		{"--total-window", c.TotalWindow, c.UserWindow},
		{"--total-buffers", c.TotalBuffers, c.UserBuffers},
	} {
		user, _ := size.Parse(f.user)
		if n, err := size.Parse(f.total); err != nil || n < user {
			return fmt.Errorf("%s: want a size of at least the per-user one (%s)", f.name, size.Format(user))
		}
	}
	return nil
}

func (c *serveCmd) Run(ctx context.Context, g *globals) error {
	// Checked before anything is written there, and again if it was
	// made just now (0700; unless someone made it first).
	_, statErr := os.Stat(g.data)
	if err := checkDataMode(g.data, g.log); err != nil {
		return err
	}
	users, err := g.openUsers(userdb.Options{})
	if err != nil {
		return err
	}
	defer users.Close()
	if statErr != nil {
		if err := checkDataMode(g.data, g.log); err != nil {
			return err
		}
	}
	unlock, err := lockData(g.data)
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.MkdirAll(g.homeDir(), 0o700); err != nil {
		return fmt.Errorf("create homes directory: %w", err)
	}
	quota, _ := size.Parse(c.DefaultQuota)
	if err := users.SetSetting(ctx, userdb.SettingDefaultQuota, strconv.FormatInt(quota, 10)); err != nil {
		return err
	}
	cert, leaf, err := c.loadCert(g)
	if err != nil {
		return err
	}
	window, _ := size.Parse(c.UserWindow)
	bufs, _ := size.Parse(c.UserBuffers)
	totalWindow, _ := size.Parse(c.TotalWindow)
	totalBufs, _ := size.Parse(c.TotalBuffers)
	srv := &session.Server{Users: users, HomeDir: g.homeDir(), Logger: g.log, Version: "qftpd " + version, PartialMaxAge: c.PartialMaxAge,
		MaxGroupConns: c.MaxConns, MaxUserConns: c.UserConns, MaxPending: c.Pending, MaxAddrPending: c.AddrPending, MaxUserWindow: uint64(window), MaxUserBuffers: bufs,
		MaxTotalWindow: uint64(totalWindow), MaxTotalBuffers: totalBufs}
	ln, err := transport.Listen(c.Listen, cert, c.MaxStreams, srv.AllowWindowIncrease)
	if err != nil {
		return err
	}
	if advice := transport.UDPBufferAdvice(); advice != "" {
		g.log.Warn(advice)
	}
	fp := certs.Fingerprint(leaf)
	attrs := []any{"addr", ln.Addr().String()}
	if as := ln.Addrs(); len(as) > 1 {
		attrs = append(attrs, "addr6", as[1].String()) // a wildcard's IPv6 socket
	}
	g.log.Info("listening", append(attrs, "fingerprint", fp, "data", g.data)...)
	if c.Demo {
		if err := c.demo(ctx, g, users, ln.Addr(), fp); err != nil {
			_ = ln.Close()
			return err
		}
	}
	// A crash, or files changed by hand, may have left usage wrong.
	if err := srv.Reconcile(ctx); err != nil {
		g.log.Warn("reconcile usage", "err", err)
	}
	serveErr := make(chan error, 1)
	// Serve runs on through Shutdown's grace period, telling clients that
	// connect meanwhile that the server is shutting down; Shutdown ends it.
	go func() { serveErr <- srv.Serve(context.WithoutCancel(ctx), ln) }()
	select {
	case err = <-serveErr:
	case <-ctx.Done():
	}
	if cause := context.Cause(ctx); cause != nil {
		g.log.Info("shutting down", "on", cause.Error(), "grace", c.Grace)
	} else {
		g.log.Info("shutting down", "grace", c.Grace)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.Grace)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		g.log.Warn("shutdown", "err", serr)
	}
	if e := <-serveErr; err == nil {
		err = e
	}
	g.log.Info("stopped")
	return err
}

// checkDataMode refuses a data directory that anyone may write to (they
// could replace the user store or the key, whatever those files' own
// modes), and warns of one that its group may write to.
func checkDataMode(dir string, log *slog.Logger) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // made by openUsers, 0700
	}
	if err != nil {
		return err
	}
	switch m := fi.Mode().Perm(); {
	case runtime.GOOS == "windows":
	case m&0o002 != 0:
		return fmt.Errorf("the data directory %s is writable by anyone (mode %#o): anyone could replace its user store or key; chmod 700 it", dir, m)
	case m&0o020 != 0:
		log.Warn("the data directory is writable by its group, who could replace its user store or key; chmod 700 it", "data", dir, "mode", fmt.Sprintf("%#o", m))
	}
	return nil
}

// lockData makes sure that one serve at a time uses the data directory:
// a second one would measure the homes anew at its start (Reconcile) and
// drop what the first one's running uploads hold in the quota ledger. The
// user commands need no lock (the ledger's updates are atomic).
func lockData(dir string) (unlock func(), err error) {
	name := filepath.Join(dir, "serve.lock")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	if err := fsjail.TryLock(f); err != nil {
		_ = f.Close()
		if errors.Is(err, fsjail.ErrBusy) {
			return nil, fmt.Errorf("another qftpd serve is using %s (it holds %s); stop it first", dir, name)
		}
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	return func() { _ = f.Close() }, nil
}

func (c *serveCmd) loadCert(g *globals) (tls.Certificate, *x509.Certificate, error) {
	if c.Cert != "" {
		cert, leaf, err := certs.Load(c.Cert, c.Key)
		if err == nil {
			// Clients would fall back to pinning it: say what to fix.
			switch now := time.Now(); {
			case now.After(leaf.NotAfter):
				g.log.Warn("the certificate has expired: clients will not trust it through its CA", "cert", c.Cert, "not_after", leaf.NotAfter)
			case now.Before(leaf.NotBefore):
				g.log.Warn("the certificate is not valid yet: clients will not trust it through its CA", "cert", c.Cert, "not_before", leaf.NotBefore)
			}
		}
		return cert, leaf, err
	}
	cert, leaf, created, err := certs.LoadOrCreate(g.data)
	if err != nil {
		return cert, nil, err
	}
	if created {
		g.log.Info("generated a self-signed certificate", "fingerprint", certs.Fingerprint(leaf))
	}
	return cert, leaf, nil
}

// demo creates user demo on an empty store and prints how to connect. The
// password is kept in DATA/demo-password (0600) so that a later start can
// print it again.
func (c *serveCmd) demo(ctx context.Context, g *globals, users *userdb.Store, addr net.Addr, fp string) error {
	pwFile := filepath.Join(g.data, "demo-password")
	n, err := users.Count(ctx)
	if err != nil {
		return err
	}
	var pw string
	if n == 0 {
		b := make([]byte, 15)
		_, _ = rand.Read(b)
		pw = base64.RawURLEncoding.EncodeToString(b)
		quota, _ := size.Parse(c.DefaultQuota)
		if _, err := session.EnsureHome(g.homeDir(), "demo"); err != nil {
			return err
		}
		if err := users.Add(ctx, "demo", pw, quota); err != nil {
			return err
		}
		if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
			return err
		}
	} else if b, err := os.ReadFile(pwFile); err == nil {
		pw = strings.TrimSpace(string(b))
		// Changed (user passwd) or deleted since: it would not work,
		// and its copy here is no use to anyone.
		if _, err := users.Authenticate(ctx, "demo", pw); errors.Is(err, userdb.ErrBadCredentials) {
			pw = ""
			_ = os.Remove(pwFile)
		}
	}
	printConnect(g.io.err, addr, fp, pw)
	return nil
}

func printConnect(w io.Writer, addr net.Addr, fp, pw string) {
	host, port := "127.0.0.1", transport.DefaultPort
	if ua, ok := addr.(*net.UDPAddr); ok {
		port = ua.Port
		if !ua.IP.IsUnspecified() {
			host = ua.IP.String()
		}
	}
	target := "demo@" + net.JoinHostPort(host, strconv.Itoa(port))
	fmt.Fprintln(w)
	if pw == "" {
		fmt.Fprintf(w, "Users exist already. Connect with:\n\n  bin/qftp --fingerprint %s USER@%s\n\n", fp, net.JoinHostPort(host, strconv.Itoa(port)))
		return
	}
	fmt.Fprintf(w, "Connect as user demo with:\n\n  QFTP_PASSWORD=%s bin/qftp --fingerprint %s %s\n\n", pw, fp, target)
}
