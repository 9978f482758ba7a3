package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/alecthomas/kong"

	"github.com/qftp/qftp/cmd/internal/sigctx"
	"github.com/qftp/qftp/session/userdb"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

type stdio struct {
	in       io.Reader
	out, err io.Writer
}

type cli struct {
	Data      string           `name:"data" env:"QFTPD_DATA" default:"./qftpd-data" type:"path" help:"Data directory: users.db, server certificate, homes (home/NAME)."`
	LogFormat string           `name:"log-format" enum:"text,json" default:"text" help:"Log format: text or json."`
	LogLevel  string           `name:"log-level" enum:"debug,info,warn,error" default:"info" help:"Least important log level shown."`
	Version   kong.VersionFlag `help:"Print the version and exit."`

	Serve       serveCmd       `cmd:"" help:"Run the server."`
	User        userCmd        `cmd:"" help:"Manage users (works while the server runs)."`
	Fingerprint fingerprintCmd `cmd:"" help:"Print the server certificate's fingerprint."`
}

// globals are the values every subcommand gets.
type globals struct {
	data string
	log  *slog.Logger
	io   stdio
}

func (g *globals) usersPath() string { return filepath.Join(g.data, "users.db") }
func (g *globals) homeDir() string   { return filepath.Join(g.data, "home") }

// openUsers opens the user store, creating the data directory if needed.
func (g *globals) openUsers(opts userdb.Options) (*userdb.Store, error) {
	if err := os.MkdirAll(g.data, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	return userdb.Open(g.usersPath(), opts)
}

// openExistingUsers opens the user store for a command about users that
// exist: a mistyped --data is an error, not a new, empty store.
func (g *globals) openExistingUsers() (*userdb.Store, error) {
	if _, err := os.Stat(g.usersPath()); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no user store at %s (is --data right? qftpd user add creates it)", g.usersPath())
	}
	return g.openUsers(userdb.Options{})
}

// withUsers opens the existing user store, runs f on it and closes it.
func (g *globals) withUsers(f func(*userdb.Store) error) error {
	users, err := g.openExistingUsers()
	if err != nil {
		return err
	}
	defer users.Close()
	return f(users)
}

func newParser(c *cli, s stdio, exit func(int)) (*kong.Kong, error) {
	return kong.New(c,
		kong.Name("qftpd"),
		kong.Description("qftpd serves files to qftp clients over QUIC. Each user sees only their own home directory."),
		kong.Writers(s.out, s.err),
		kong.Exit(exit),
		kong.Vars{"version": "qftpd " + version},
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	)
}

// run parses args and runs the command; it returns the exit status.
func run(ctx context.Context, args []string, s stdio) int {
	var c cli
	exited := -1
	parser, err := newParser(&c, s, func(code int) { exited = code })
	if err != nil {
		fmt.Fprintln(s.err, "qftpd:", err)
		return exitFail
	}
	kctx, err := parser.Parse(args)
	if exited >= 0 {
		return exited // --help or --version
	}
	if err != nil {
		fmt.Fprintln(s.err, "qftpd:", err)
		return exitUsage
	}
	g := &globals{data: c.Data, log: newLogger(s.err, c.LogFormat, c.LogLevel), io: s}
	kctx.BindTo(ctx, (*context.Context)(nil))
	if err := kctx.Run(g); err != nil {
		if errors.Is(err, context.Canceled) {
			if kctx.Command() == "serve" {
				return exitOK // a graceful stop is what a signal asks of it
			}
			// A user command stopped (Ctrl-C at a password prompt) did
			// not do its job: a script must not go on as if it had.
			fmt.Fprintln(s.err, "qftpd: interrupted")
			var sig sigctx.Error
			if errors.As(context.Cause(ctx), &sig) {
				return sig.Status()
			}
			return exitFail
		}
		var ue usageError
		fmt.Fprintln(s.err, "qftpd:", err)
		if errors.As(err, &ue) {
			return exitUsage
		}
		return exitFail
	}
	return exitOK
}

// usageError marks a bad argument found after parsing.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
