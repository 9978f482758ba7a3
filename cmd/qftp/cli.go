package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"github.com/quic-go/quic-go"
	"golang.org/x/time/rate"

	"github.com/qftp/qftp/certs"
	"github.com/qftp/qftp/cmd/internal/prompt"
	"github.com/qftp/qftp/cmd/internal/sigctx"
	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/size"
	"github.com/qftp/qftp/transport"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit statuses; documented in README.md.
const (
	exitOK      = 0
	exitFail    = 1 // a command failed
	exitUsage   = 2 // bad command line or command
	exitAuth    = 3 // login refused
	exitConnect = 4 // cannot connect, or the server's identity is not trusted
)

type stdio struct {
	in       io.Reader
	out, err io.Writer
	intr     <-chan os.Signal // SIGINT; nil in most tests
	// tty opens the controlling terminal, for a password or a question
	// when in is not the terminal (commands piped in, as to sftp); nil:
	// there is none (tests).
	tty func() (*os.File, error)
}

// ask runs a question on a terminal: stdin if it is one, else the
// controlling terminal (as ssh and sftp do), asked and answered there. It
// fails with prompt.ErrNoTerminal without one.
func (s stdio) ask(q func(in io.Reader, out io.Writer) error) error {
	if prompt.IsTerminal(s.in) || s.tty == nil {
		return q(s.in, s.err)
	}
	tty, err := s.tty()
	if err != nil {
		return prompt.ErrNoTerminal
	}
	defer tty.Close()
	return q(tty, tty)
}

type cli struct {
	KnownHosts    string           `name:"known-hosts" env:"QFTP_KNOWN_HOSTS" type:"path" placeholder:"FILE" help:"Pinned server fingerprints (default ~/.config/qftp/known_hosts)."`
	AcceptNewHost bool             `name:"accept-new-host" help:"Trust and pin a server seen for the first time."`
	Fingerprint   string           `name:"fingerprint" placeholder:"SHA256:..." help:"Connect only if the server's fingerprint is this one (a new server is then pinned)."`
	PasswordFile  string           `name:"password-file" type:"existingfile" placeholder:"FILE" help:"Read the password from the first line of FILE (else $QFTP_PASSWORD, else ask)."`
	NoProgress    bool             `name:"no-progress" help:"Print one summary line per transfer instead of progress bars."`
	Debug         bool             `name:"debug" help:"Log what the client does (connections, retries, striping) to stderr."`
	Timeout       time.Duration    `name:"connect-timeout" default:"15s" help:"Give up connecting after this long."`
	Connections   string           `name:"connections" default:"auto" env:"QFTP_CONNECTIONS" placeholder:"N|auto" help:"QUIC connections a large transfer is spread over: a number, or auto (start with one, add more while that pays)."`
	MaxConns      int              `name:"max-connections" default:"128" help:"Most connections auto may use."`
	Jobs          int              `name:"jobs" short:"j" env:"QFTP_JOBS" help:"Files to transfer at once in multi-file transfers (default: auto, up to 256 while those running total at most 64 MiB: many small files, or 4 large ones)."`
	LimitRate     string           `name:"limit-rate" placeholder:"RATE" help:"Cap the transfer rate, e.g. 10MiB (per second); unlimited lifts a cap from the config file."`
	Retries       int              `name:"retries" default:"20" help:"When the connection drops, tries per operation before giving up (1: no retry)."`
	RetryTime     time.Duration    `name:"retry-time" default:"2m" help:"When the connection drops, how long to keep reconnecting."`
	Batch         string           `name:"batch" short:"b" type:"existingfile" placeholder:"FILE" help:"Run the commands in FILE, one per line, stopping at the first that fails (unless its line starts with -)."`
	Config        string           `name:"config" env:"QFTP_CONFIG" type:"path" placeholder:"FILE" help:"Client config file with per-host settings (default ~/.config/qftp/config)."`
	Version       kong.VersionFlag `help:"Print the version and exit."`

	Target  string   `arg:"" name:"[user@]host[:port]" help:"Server to connect to (port ${port})."`
	Command []string `arg:"" optional:"" passthrough:"all" name:"command" help:"Command to run; without one, read commands from a terminal or standard input."`
}

// logger returns the client's logger: debug lines to w with --debug,
// nothing otherwise.
func (c *cli) logger(w io.Writer) *slog.Logger {
	if !c.Debug {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// connections parses --connections.
func (c *cli) connections() (int, error) {
	if c.Connections == "auto" {
		return session.ConnectionsAuto, nil
	}
	n, err := strconv.Atoi(c.Connections)
	if err != nil || n < 1 || n > 256 {
		return 0, errors.New("--connections: want auto or 1 to 256")
	}
	return n, nil
}

// checkRate checks a --limit-rate or LimitRate value.
func checkRate(s string) error {
	n, err := size.Parse(s)
	if w := strings.ToLower(strings.TrimSpace(s)); err != nil || n == 0 && w != "0" && w != "unlimited" && w != "none" {
		// (A rate that rounds to 0 bytes is no way to say unlimited.)
		return errors.New("want a rate such as 10MiB (bytes per second), or unlimited")
	}
	return nil
}

func (c *cli) Validate() error {
	if _, err := c.connections(); err != nil {
		return err
	}
	if c.MaxConns < 1 || c.MaxConns > 256 {
		return errors.New("--max-connections must be between 1 and 256")
	}
	if c.Jobs < 0 || c.Jobs > 256 {
		return errors.New("--jobs must be between 1 and 256 (0: auto)")
	}
	if c.LimitRate != "" {
		if err := checkRate(c.LimitRate); err != nil {
			return fmt.Errorf("--limit-rate: %w", err)
		}
	}
	if c.Retries < 1 || c.Retries > 1000 {
		return errors.New("--retries must be between 1 and 1000")
	}
	if c.RetryTime < 0 {
		return errors.New("--retry-time must not be negative")
	}
	if c.Timeout <= 0 {
		return errors.New("--connect-timeout must be positive, e.g. 15s")
	}
	if c.Fingerprint != "" {
		fp, err := certs.ParseFingerprint(c.Fingerprint)
		if err != nil {
			return fmt.Errorf("--fingerprint: %w", err)
		}
		c.Fingerprint = fp
	}
	return nil
}

const description = `qftp transfers files to and from a qftpd server over QUIC.

Commands (run one after the host, or type them in the shell):
  pwd, cd [DIR|-], ls [-lh] [--json] [PATH|PATTERN], mkdir [-p] DIR,
  rmdir DIR, rm [-rf] FILE|PATTERN..., mv [-f] FROM TO,
  get [-fcr] [-j N] REMOTE [LOCAL], put [-fcr] [-j N] LOCAL [REMOTE],
  mget [-fc] [-j N] PATTERN..., mput [-fc] [-j N] PATTERN...,
  hash [--sha256] FILE, df [-h], lcd [DIR|-], lpwd,
  lls [-lh] [--json] [PATH|PATTERN], help [CMD], exit

qftp completion bash|zsh|fish prints a completion script.

Exit status: 0 ok, 1 a command failed, 2 usage error, 3 login refused
or session ended by the server, 4 cannot connect or server not trusted,
130 Ctrl-C (128 + the signal's number).`

// run parses args, connects and runs the commands; it returns the exit
// status.
func run(ctx context.Context, args []string, s stdio) int {
	return runWithEnv(ctx, args, s, runEnv{})
}

// runEnv is what run takes from the process, given instead by tests so
// that they need not change the process's directory or environment.
type runEnv struct {
	localDir string // local working directory; "": the process's
	stateDir string // see stateDir; "": the default
}

// runWithEnv is run with env.
func runWithEnv(ctx context.Context, args []string, s stdio, env runEnv) int {
	var c cli
	exited := -1
	parser, err := kong.New(&c,
		kong.Name("qftp"),
		kong.Description(description),
		kong.Writers(s.out, s.err),
		kong.Exit(func(code int) { exited = code }),
		kong.Vars{"version": "qftp " + version, "port": strconv.Itoa(transport.DefaultPort)},
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	)
	if err != nil {
		fmt.Fprintln(s.err, "qftp:", err)
		return exitFail
	}
	_, err = parser.Parse(args)
	if exited >= 0 {
		return exited
	}
	if err != nil {
		fmt.Fprintln(s.err, "qftp:", err)
		return exitUsage
	}
	if c.Target == "completion" && len(c.Command) <= 1 {
		return printCompletion(s, c.Command)
	}
	cfgPath, required := c.Config, c.Config != ""
	if cfgPath == "" {
		cfgPath = defaultConfigPath()
	}
	cf := &configFile{}
	if cfgPath != "" {
		if cf, err = loadConfig(cfgPath, required); err != nil {
			fmt.Fprintln(s.err, "qftp: config:", err)
			return exitUsage
		}
	}
	t, hc, err := parseTarget(c.Target, cf)
	if err != nil {
		fmt.Fprintln(s.err, "qftp:", err)
		return exitUsage
	}
	c.Fingerprint = first(c.Fingerprint, hc.Fingerprint)
	c.LimitRate = first(c.LimitRate, hc.LimitRate) // the config file checked its own
	if c.Jobs == 0 {
		c.Jobs = hc.Jobs // still 0: auto
	}
	if err := c.Validate(); err != nil {
		fmt.Fprintln(s.err, "qftp:", err)
		return exitUsage
	}
	var batch *os.File
	if c.Batch != "" {
		if len(c.Command) > 0 {
			fmt.Fprintln(s.err, "qftp: give either --batch or a command, not both")
			return exitUsage
		}
		if batch, err = os.Open(c.Batch); err != nil {
			fmt.Fprintln(s.err, "qftp:", err)
			return exitUsage
		}
		defer batch.Close()
	}
	if len(c.Command) > 0 {
		// A command that does not parse, --help and help need no
		// server: answered before connecting (and asking a password).
		pre := &shell{io: s}
		kctx, err := pre.parse(c.Command)
		switch {
		case err != nil || kctx == nil:
			return pre.status(err)
		case c.Command[0] == "help":
			return pre.runOne(ctx, c.Command)
		}
	}
	// Ctrl-C while connecting, or at a prompt, gives up.
	cctx, ccancel := context.WithCancelCause(ctx)
	defer ccancel(nil)
	stopWatching := cancelOnInterrupt(s.intr, ccancel)
	client, host, code := connect(cctx, &c, t, s)
	stopWatching()
	if client == nil {
		return code
	}
	defer client.Close()
	var sig sigctx.Error
	if errors.As(context.Cause(cctx), &sig) { // just after connecting
		fmt.Fprintln(s.err, "qftp: interrupted")
		return sig.Status()
	}
	sh := &shell{
		client:      client,
		host:        host,
		io:          s,
		bars:        !c.NoProgress && !c.Debug && prompt.IsTerminal(s.err), // log lines would tear the bars
		defaultJobs: c.Jobs,
		maxConns:    c.MaxConns,
		log:         c.logger(s.err),
	}
	sh.conns, _ = c.connections()
	if bps, _ := size.Parse(c.LimitRate); bps > 0 { // "" and unlimited: no cap
		// Bursts of up to 100 ms worth keep the pace smooth.
		sh.limiter = rate.NewLimiter(rate.Limit(bps), int(max(bps/10, 64<<10)))
	}
	sh.account = t.user + "@" + netJoin(t.host, t.port)
	if state := first(env.stateDir, stateDir()); state != "" {
		sh.copies.dir = filepath.Join(state, "unfinished")
	}
	sh.localDir = env.localDir
	if env.localDir == "" {
		if wd, err := os.Getwd(); err == nil {
			sh.localDir = wd
		}
	}
	if prompt.IsTerminal(s.in) && len(c.Command) == 0 && batch == nil {
		// Ctrl-C cancels one command there; SIGTERM or SIGHUP end it.
		status := sh.interactive(ctx)
		if errors.As(context.Cause(ctx), &sig) {
			return sig.Status()
		}
		return status
	}
	// Elsewhere Ctrl-C ends qftp (after stopping its transfers cleanly).
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer cancelOnInterrupt(s.intr, cancel)()
	var status int
	switch {
	case len(c.Command) > 0:
		status = sh.runOne(ctx, c.Command)
	case batch != nil:
		status = sh.script(ctx, batch)
	default:
		status = sh.script(ctx, s.in)
	}
	if status != exitOK && errors.As(context.Cause(ctx), &sig) {
		return sig.Status()
	}
	return status
}

// cancelOnInterrupt cancels with the signal that intr (if not nil) delivers,
// until the returned stop is called.
func cancelOnInterrupt(intr <-chan os.Signal, cancel context.CancelCauseFunc) (stop func()) {
	if intr == nil {
		return func() {}
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case sig := <-intr:
			cancel(sigctx.Error{Signal: sig})
		case <-done:
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// target is a parsed [user@]host[:port].
type target struct {
	user string
	host string
	port int
}

// parseTarget reads [USER@]HOST[:PORT], with the config file's settings
// for HOST filling in what the command line leaves out.
func parseTarget(s string, cf *configFile) (target, hostConfig, error) {
	var t target
	if i := strings.LastIndex(s, "@"); i >= 0 {
		t.user, s = s[:i], s[i+1:]
		if t.user == "" {
			return t, hostConfig{}, errors.New("empty user name before @")
		}
	}
	host, port, err := transport.SplitHostPort(s)
	if err != nil {
		return t, hostConfig{}, err
	}
	explicitPort := strings.HasSuffix(s, "]:"+strconv.Itoa(port)) || !strings.Contains(host, ":") && strings.HasSuffix(s, ":"+strconv.Itoa(port))
	hc := cf.lookup(host)
	t.host, t.port = first(hc.HostName, host), port
	if !explicitPort && hc.Port != 0 {
		t.port = hc.Port
	}
	t.user = first(t.user, hc.User)
	if t.user == "" {
		t.user = os.Getenv("QFTP_USER")
	}
	if t.user == "" {
		if u, err := user.Current(); err == nil {
			t.user = u.Username
		}
	}
	if t.user == "" {
		return t, hc, errors.New("no user name: use USER@HOST")
	}
	return t, hc, nil
}

func (c *cli) password(ctx context.Context, s stdio, t target) (string, error) {
	if c.PasswordFile != "" {
		f, err := os.Open(c.PasswordFile)
		if err != nil {
			return "", err
		}
		defer f.Close()
		pw, err := prompt.Line(f)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		return pw, nil
	}
	if pw, ok := os.LookupEnv("QFTP_PASSWORD"); ok {
		return pw, nil
	}
	var pw string
	err := s.ask(func(in io.Reader, out io.Writer) (err error) {
		pw, err = prompt.Password(ctx, in, out, t.user+"@"+t.host+"'s password: ")
		return err
	})
	if errors.Is(err, prompt.ErrNoTerminal) {
		return "", errors.New("no password: set QFTP_PASSWORD, use --password-file, or run on a terminal")
	}
	return pw, err
}

func defaultKnownHosts() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = "."
	}
	return filepath.Join(dir, "qftp", "known_hosts")
}

// connect dials and logs in. On failure it prints why and returns a nil
// client and the exit status.
func connect(ctx context.Context, c *cli, t target, s stdio) (*session.Client, string, int) {
	var pwErr error
	getPassword := func() (string, error) {
		pw, err := c.password(ctx, s, t)
		if err != nil {
			pwErr = err
		}
		return pw, err
	}
	khPath := c.KnownHosts
	if khPath == "" {
		khPath = defaultKnownHosts()
	}
	v := &certs.Verifier{
		KnownHosts:  certs.OpenKnownHosts(khPath),
		HostKey:     certs.HostKey(t.host, t.port),
		ServerName:  t.host,
		Fingerprint: c.Fingerprint,
		AcceptNew:   c.AcceptNewHost,
	}
	cfg := session.DialConfig{
		Addr:        netJoin(t.host, t.port),
		User:        t.user,
		GetPassword: getPassword,
		Version:     "qftp " + version,
		Retry:       session.RetryPolicy{Attempts: c.Retries, MaxTime: max(c.RetryTime, time.Millisecond)},
		Logger:      c.logger(s.err),
	}
	cl, err := dialVerified(ctx, c.Timeout, cfg, v, s)
	var sig sigctx.Error
	if err != nil && errors.As(context.Cause(ctx), &sig) {
		fmt.Fprintln(s.err, "qftp: interrupted")
		return nil, "", sig.Status()
	}
	if err != nil {
		fmt.Fprintln(s.err, "qftp:", trustError(err))
		if pwErr != nil {
			return nil, "", exitUsage
		}
		switch {
		case errors.Is(err, transport.ErrAuth):
			return nil, "", exitAuth
		case errors.Is(err, context.Canceled):
			return nil, "", exitFail
		}
		return nil, "", exitConnect
	}
	return cl, t.host, exitOK
}

// dialVerified dials; for a host seen the first time it asks on the
// terminal and, if the user agrees, dials again trusting that fingerprint.
func dialVerified(ctx context.Context, timeout time.Duration, cfg session.DialConfig, v *certs.Verifier, s stdio) (*session.Client, error) {
	cfg.Timeout = timeout
	dial := func() (*session.Client, error) {
		cfg.TLS = v.TLSConfig()
		return session.Dial(ctx, cfg)
	}
	cl, err := dial()
	var unknown *certs.UnknownHostError
	if !errors.As(err, &unknown) {
		return cl, err
	}
	var ok bool
	perr := s.ask(func(in io.Reader, out io.Writer) (err error) {
		if !prompt.IsTerminal(in) {
			return prompt.ErrNoTerminal
		}
		fmt.Fprintf(out, "The authenticity of host %s can't be established.\nIts certificate fingerprint is %s.\n", unknown.Host, unknown.Fingerprint)
		if unknown.CA != nil {
			fmt.Fprintf(out, "Note: %s.\n", unknown.CAReason())
		}
		ok, err = prompt.YesNo(ctx, in, out, "Are you sure you want to continue connecting and pin it (yes/no)? ")
		return err
	})
	if perr != nil || !ok {
		return nil, err
	}
	v.Fingerprint = unknown.Fingerprint
	return dial()
}

func netJoin(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// trustError digs the certificate verdict out of the QUIC handshake error
// that wraps it, so the user reads the verdict and not the TLS alert.
func trustError(err error) error {
	var unknown *certs.UnknownHostError
	var changed *certs.HostKeyChangedError
	var mismatch *certs.FingerprintMismatchError
	switch {
	case errors.As(err, &unknown):
		return unknown
	case errors.As(err, &changed):
		return changed
	case errors.As(err, &mismatch):
		return mismatch
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, new(*quic.IdleTimeoutError)), errors.As(err, new(*quic.HandshakeTimeoutError)):
		if !strings.Contains(err.Error(), "no answer") {
			err = fmt.Errorf("%w: no answer from the server", err)
		}
		return fmt.Errorf("%w (is qftpd running there, and is UDP open?)", err)
	}
	return err
}
