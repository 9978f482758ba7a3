package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"path/filepath"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/transport"
)

// shell runs qftp commands against one session: a single command from the
// command line, a script from standard input, or an interactive prompt.
type shell struct {
	client      *session.Client // required
	host        string          // for the prompt
	io          stdio
	localDir    string // local working directory (lcd), absolute
	bars        bool   // draw progress bars (a terminal, no --no-progress)
	defaultJobs int    // files at once in multi-file transfers
	conns       int    // --connections (session.ConnectionsAuto for auto)
	maxConns    int
	limiter     session.Limiter
	log         *slog.Logger
	account     string     // user@host:port, for copies' keys
	copies      unfinished // tree copies begun and not finished
	quit        bool       // set by exit
	lastDir     lastDirs   // for cd - and lcd -
}

// commands is the grammar of one shell line. Every command's Run takes the
// context and the shell.
type commands struct {
	Pwd   pwdCmd   `cmd:"" help:"Print the remote working directory."`
	Cd    cdCmd    `cmd:"" help:"Change the remote working directory."`
	Ls    lsCmd    `cmd:"" help:"List a remote directory."`
	Mkdir mkdirCmd `cmd:"" help:"Create a remote directory."`
	Rmdir rmdirCmd `cmd:"" help:"Remove an empty remote directory."`
	Rm    rmCmd    `cmd:"" help:"Remove remote files (with -r, directory trees)."`
	Mv    mvCmd    `cmd:"" help:"Move or rename a remote file or directory."`
	Get   getCmd   `cmd:"" help:"Download a file."`
	Put   putCmd   `cmd:"" help:"Upload a file."`
	Mget  mgetCmd  `cmd:"" help:"Download the files matching patterns."`
	Mput  mputCmd  `cmd:"" help:"Upload the files matching patterns."`
	Hash  hashCmd  `cmd:"" help:"Print the server's BLAKE3 (or --sha256) of a file."`
	Df    dfCmd    `cmd:"" help:"Show disk usage and quota."`
	Lcd   lcdCmd   `cmd:"" help:"Change the local working directory."`
	Lpwd  lpwdCmd  `cmd:"" help:"Print the local working directory."`
	Lls   llsCmd   `cmd:"" help:"List a local directory."`
	Help  helpCmd  `cmd:"" help:"Show commands, or the usage of one."`
	Exit  exitCmd  `cmd:"" aliases:"quit,bye" help:"End the session (also: quit, bye)."`

	HelpFlag helpFlag `name:"help" help:"Show the usage of the command."`
}

// helpFlag is --help without kong's -h, which ls -lh and df -h need.
type helpFlag bool

func (helpFlag) IgnoreDefault() {}

func (helpFlag) BeforeReset(ctx *kong.Context) error {
	// The shell's grammar has no program name: "Usage:  get" loses a space.
	var b bytes.Buffer
	out := ctx.Kong.Stdout
	ctx.Kong.Stdout = &b
	err := ctx.PrintUsage(false)
	ctx.Kong.Stdout = out
	if err != nil {
		return err
	}
	_, err = io.WriteString(out, strings.Replace(b.String(), "Usage:  ", "Usage: ", 1))
	if err != nil {
		return err
	}
	ctx.Kong.Exit(0)
	return nil
}

// errUsage marks a line that does not parse; the caller prints a hint.
type errUsage struct{ error }

func (e errUsage) Unwrap() error { return e.error }

func (sh *shell) parser(c *commands, out io.Writer, exited *bool) (*kong.Kong, error) {
	return kong.New(c,
		kong.Name(""),
		kong.Writers(out, sh.io.err),
		kong.Exit(func(int) { *exited = true }),
		kong.NoDefaultHelp(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	)
}

// exec runs one command given as words.
func (sh *shell) exec(ctx context.Context, words []string) error {
	kctx, err := sh.parse(words)
	if kctx == nil || err != nil {
		return err
	}
	kctx.BindTo(ctx, (*context.Context)(nil))
	return kctx.Run(sh)
}

// parse parses one command given as words. It returns no context, and no
// error, for no words or for --help, which it answers. A line that does
// not parse is an errUsage.
func (sh *shell) parse(words []string) (*kong.Context, error) {
	if len(words) == 0 {
		return nil, nil
	}
	var c commands
	exited := false
	p, err := sh.parser(&c, sh.io.out, &exited)
	if err != nil {
		return nil, err
	}
	kctx, err := p.Parse(words)
	if exited {
		return nil, nil // --help printed
	}
	if err != nil {
		return nil, errUsage{usageHint(words[0], err)}
	}
	return kctx, nil
}

// usageHint turns a parse error into one line that says what to try.
func usageHint(cmd string, err error) error {
	msg := err.Error()
	if strings.HasPrefix(msg, "unexpected argument "+cmd) || strings.Contains(msg, "expected one of") {
		return fmt.Errorf("unknown command %q; type help for a list", cmd)
	}
	// (kong names the command in some errors itself: "get: -j must ...")
	return fmt.Errorf("%s: %s (try: help %s)", cmd, strings.TrimPrefix(msg, cmd+": "), cmd)
}

// runOne runs the command given on qftp's command line.
func (sh *shell) runOne(ctx context.Context, words []string) int {
	return sh.status(sh.exec(ctx, words))
}

// status prints err and maps it to an exit status.
func (sh *shell) status(err error) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, context.Canceled) {
		// Ctrl-C or SIGTERM ended it: say what the user can do.
		msg := strings.TrimSuffix(strings.TrimSuffix(err.Error(), context.Canceled.Error()), ": ")
		if msg != "" {
			msg += ": "
		}
		fmt.Fprintln(sh.io.err, msg+"interrupted; run the same command again to resume")
		return exitFail
	}
	fmt.Fprintln(sh.io.err, escapeUnprintable(err.Error()))
	var ue errUsage
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, transport.ErrAuth) && !transport.LoginThrottled(err):
		return exitAuth // the server ended the session, or refused the password
	}
	return exitFail
}

// script runs commands from r, one per line, stopping at the first that
// fails unless the line starts with "-".
func (sh *shell) script(ctx context.Context, r io.Reader) int {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	lineNo := 0
	for sc.Scan() && !sh.quit {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		ignoreErr := strings.HasPrefix(line, "-")
		line = strings.TrimPrefix(line, "-")
		words, err := splitLine(line)
		if err != nil {
			err = errUsage{err}
		} else {
			err = sh.exec(ctx, words)
		}
		if err != nil {
			if ctx.Err() != nil {
				fmt.Fprintf(sh.io.err, "line %d: interrupted; run the script again to resume\n", lineNo)
				return exitFail
			}
			// Say where, as a compiler would: scripts run unattended.
			err = fmt.Errorf("line %d: %w", lineNo, err)
			if ignoreErr {
				fmt.Fprintln(sh.io.err, escapeUnprintable(err.Error()))
				continue
			}
			return sh.status(err)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(sh.io.err, "qftp: read commands:", err)
		return exitFail
	}
	return exitOK
}

// remoteAbs is the remote path p made absolute and clean.
func (sh *shell) remoteAbs(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = path.Join(sh.client.Cwd(), p)
	}
	return path.Clean(p)
}

// local resolves a local path against the local working directory.
func (sh *shell) local(p string) string {
	if p == "" {
		return sh.localDir
	}
	dirSlash := strings.HasSuffix(p, "/") || strings.HasSuffix(p, string(filepath.Separator))
	if strings.HasPrefix(p, "~/") || p == "~" {
		if home, err := userHome(); err == nil {
			p = filepath.Join(home, strings.TrimPrefix(p, "~"))
		}
	}
	var full string
	if filepath.IsAbs(p) {
		full = filepath.Clean(p)
	} else {
		full = filepath.Join(sh.localDir, p)
	}
	// A trailing slash says "a directory" (get refuses to make a file of
	// that name); cleaning would drop it.
	if dirSlash && !strings.HasSuffix(full, string(filepath.Separator)) {
		full += string(filepath.Separator)
	}
	return full
}
