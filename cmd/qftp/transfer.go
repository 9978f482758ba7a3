package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/size"
	"github.com/qftp/qftp/transport"
)

// transferFlags are the flags every transfer command takes.
type transferFlags struct {
	Force    bool `short:"f" help:"Replace existing files."`
	Continue bool `short:"c" help:"Resume from a partial copy even of a small file (by default qftp resumes when it safely can)."`
	Jobs     int  `short:"j" help:"Files to transfer at once (default: --jobs)."`
}

// Validate checks the flags before the command runs.
func (f *transferFlags) Validate() error {
	if f.Jobs < 0 || f.Jobs > 256 {
		return fmt.Errorf("-j must be between 1 and 256 (0: auto)")
	}
	return nil
}

type getCmd struct {
	transferFlags
	Recursive bool   `short:"r" help:"Copy a directory tree."`
	Remote    string `arg:"" help:"Remote file (or directory with -r)."`
	Local     string `arg:"" optional:"" help:"Local file or directory (default: working directory)."`
}

func (c *getCmd) Run(ctx context.Context, sh *shell) error {
	if c.Recursive {
		local := sh.local(c.Local)
		key := copyKey{Op: "get", Account: sh.account, Src: sh.remoteAbs(c.Remote), Dest: filepath.Clean(local)}
		resume := c.Local != "" && sh.copies.has(key)
		plan, err := sh.client.PlanGetTree(ctx, c.Remote, local, session.TreeOptions{AsName: resume, Jobs: sh.jobs(c.Jobs)})
		if err != nil {
			return err
		}
		return sh.runTree(ctx, "get", plan, key, resume, c.transferFlags)
	}
	pr := newProgress(ctx, sh.io.err, sh.bars, 0, 0)
	opt := sh.transferOptions(c.transferFlags, pr)
	setHooks(&opt, pr.file(path.Base(c.Remote), true))
	res, err := sh.client.Get(ctx, c.Remote, sh.local(c.Local), opt)
	pr.finish()
	if err != nil {
		return err
	}
	if !pr.enabled() {
		fmt.Fprintln(sh.io.err, summaryLine("get", c.Remote, res))
	}
	return nil
}

type putCmd struct {
	transferFlags
	Recursive bool   `short:"r" help:"Copy a directory tree."`
	Local     string `arg:"" help:"Local file (or directory with -r)."`
	Remote    string `arg:"" optional:"" help:"Remote file or directory (default: working directory)."`
}

func (c *putCmd) Run(ctx context.Context, sh *shell) error {
	if c.Recursive {
		local := sh.local(c.Local)
		key := copyKey{Op: "put", Account: sh.account, Src: filepath.Clean(local), Dest: sh.remoteAbs(c.Remote)}
		resume := c.Remote != "" && sh.copies.has(key)
		plan, err := sh.client.PlanPutTree(ctx, local, c.Remote, session.TreeOptions{AsName: resume})
		if err != nil {
			return err
		}
		return sh.runTree(ctx, "put", plan, key, resume, c.transferFlags)
	}
	pr := newProgress(ctx, sh.io.err, sh.bars, 0, 0)
	opt := sh.transferOptions(c.transferFlags, pr)
	setHooks(&opt, pr.file(filepath.Base(c.Local), true))
	res, err := sh.client.Put(ctx, sh.local(c.Local), c.Remote, opt)
	pr.finish()
	if err != nil {
		return err
	}
	if !pr.enabled() {
		fmt.Fprintln(sh.io.err, summaryLine("put", c.Local, res))
	}
	return nil
}

type mgetCmd struct {
	transferFlags
	Patterns []string `arg:"" help:"Remote patterns (*, ?, [...]), expanded by the server."`
}

func (c *mgetCmd) Run(ctx context.Context, sh *shell) error {
	plan, err := sh.client.PlanGlobGet(ctx, c.Patterns, sh.localDir)
	if err != nil {
		return err
	}
	return sh.runBatch(ctx, "get", plan, c.transferFlags)
}

type mputCmd struct {
	transferFlags
	Patterns []string `arg:"" help:"Local patterns (*, ?, [...])."`
}

func (c *mputCmd) Run(ctx context.Context, sh *shell) error {
	pats := make([]string, len(c.Patterns))
	for i, p := range c.Patterns {
		pats[i] = sh.local(p)
	}
	plan, err := sh.client.PlanGlobPut(pats, "")
	if err != nil {
		return err
	}
	return sh.runBatch(ctx, "put", plan, c.transferFlags)
}

func (sh *shell) jobs(n int) int {
	if n > 0 {
		return min(n, 256)
	}
	return sh.defaultJobs
}

func (sh *shell) transferOptions(f transferFlags, pr *progress) session.TransferOptions {
	opt := session.TransferOptions{
		Force:          f.Force,
		Notify:         func(msg string) { pr.println(sh.io.err, msg) },
		Limiter:        sh.limiter,
		Connections:    sh.conns,
		MaxConnections: sh.maxConns,
	}
	// Shared by the files of a batch, which may widen at the same time.
	var mu sync.Mutex
	var lastWidth int
	opt.Width = func(n int) {
		mu.Lock()
		changed := n != lastWidth && (n > 1 || lastWidth > 1)
		lastWidth = n
		mu.Unlock()
		// Bars show the width (see progress.file); without them, a line
		// says when it changes.
		if changed && !pr.enabled() {
			if n == 1 {
				pr.println(sh.io.err, "using 1 connection")
			} else {
				pr.println(sh.io.err, fmt.Sprintf("using %d connections", n))
			}
		}
	}
	if f.Continue {
		opt.Resume = session.ResumeAlways
	}
	return opt
}

// setHooks gives a single transfer its bar's callbacks, keeping opt's
// Width where there is no bar.
func setHooks(opt *session.TransferOptions, h session.FileHooks) {
	opt.Progress = h.Progress
	if h.Width != nil {
		opt.Width = h.Width
	}
}

// runTree runs the plan of a tree copy (key). A copy whose destination
// names it (rather than receiving it) is remembered until it completes, so
// that the same command run again, with or without a trailing slash,
// resumes it there (see unfinished). Its key is made of clean paths.
func (sh *shell) runTree(ctx context.Context, op string, plan *session.Plan, key copyKey, resumed bool, f transferFlags) error {
	if resumed && plan.RootExisted {
		fmt.Fprintf(sh.io.err, "%s: resuming the unfinished copy in %s\n", op, displayName(plan.Root))
	}
	// A record keeps the time of the run that began the copy, so that
	// it expires even if the command is run again and again.
	if plan.Named && !resumed {
		if err := sh.copies.add(key); err != nil {
			sh.log.Debug("cannot remember the copy for a resume", "err", err)
		}
	}
	err := sh.runBatch(ctx, op, plan, f)
	// Files left out (names qftp cannot use, unreadable ones) stay left
	// out however often it runs: the copy is as complete as it gets.
	var leftOut *leftOutError
	if plan.Named && (err == nil || errors.As(err, &leftOut)) {
		sh.copies.done(key)
	}
	return err
}

// leftOutError fails a batch that copied all it could but left out files
// it should have copied (see session.Skip).
type leftOutError struct {
	op string
	n  int
}

func (e *leftOutError) Error() string {
	return fmt.Sprintf("%s: %d left out (see \"left out\" above)", e.op, e.n)
}

// barLabel names a file of a batch on its progress bar: its path in the
// copy for a tree, so that files named alike in different directories are
// told apart, else its base name.
func barLabel(plan *session.Plan, j session.Job) string {
	if plan.Root != "" {
		if plan.Put {
			if rel, ok := strings.CutPrefix(j.Remote, strings.TrimSuffix(plan.Root, "/")+"/"); ok {
				return rel
			}
		} else if rel, err := filepath.Rel(plan.Root, j.Local); err == nil && filepath.IsLocal(rel) {
			return filepath.ToSlash(rel)
		}
	}
	if plan.Put {
		return filepath.Base(j.Local)
	}
	return path.Base(j.Remote)
}

// runBatch runs a multi-file plan with bars or summary lines, then lists
// what was skipped and what failed. Any failure makes the command fail.
func (sh *shell) runBatch(ctx context.Context, op string, plan *session.Plan, f transferFlags) error {
	failedSkips := 0
	for _, s := range plan.Skipped {
		if s.Failed {
			failedSkips += max(s.Count, 1)
			fmt.Fprintf(sh.io.err, "left out %s: %s\n", displayName(s.Path), s.Reason)
			continue
		}
		fmt.Fprintf(sh.io.err, "skipped %s: %s\n", displayName(s.Path), s.Reason)
	}
	pr := newProgress(ctx, sh.io.err, sh.bars, len(plan.Files), plan.Bytes)
	opt := session.BatchOptions{
		Jobs:     sh.jobs(f.Jobs),
		Transfer: sh.transferOptions(f, pr),
		Start: func(j session.Job) session.FileHooks {
			return pr.file(barLabel(plan, j), false)
		},
		Done: func(j session.Job, res session.TransferResult, err error) {
			if err == nil && !pr.enabled() {
				name := j.Remote
				if plan.Put {
					name = j.Local
				}
				fmt.Fprintln(sh.io.err, summaryLine(op, name, res))
			}
		},
	}
	res, err := sh.client.RunPlan(ctx, plan, opt)
	pr.finish()
	var stoppedEarly *session.BatchStoppedError
	if err != nil && !errors.As(err, &stoppedEarly) {
		return err
	}
	stopped := err // the batch stopped early: say what was done first
	secs := res.Duration.Seconds()
	rate := "-"
	if secs > 0 {
		rate = size.Format(int64(float64(res.Bytes-res.Resumed)/secs)) + "/s" // what moved
	}
	same := ""
	if res.Same > 0 {
		same = fmt.Sprintf(" (%d already there)", res.Same)
	}
	resumed := ""
	if res.Resumed > 0 {
		resumed = ", " + size.Format(res.Resumed) + " resumed"
	}
	fmt.Fprintf(sh.io.err, "%s: %d of %d files%s, %s in %s, %s%s\n", op, res.Files, len(plan.Files), same, size.Format(res.Bytes), res.Duration.Round(1e6), rate, resumed)
	if stopped != nil {
		fmt.Fprintf(sh.io.err, "%d failed:\n", len(res.Failures))
		for _, fl := range res.Failures {
			fmt.Fprintf(sh.io.err, "  %s\n", failureLine(fl))
		}
		return stopped
	}
	if len(res.Failures) > 0 {
		fmt.Fprintf(sh.io.err, "%d failed:\n", len(res.Failures))
		for _, fl := range res.Failures {
			fmt.Fprintf(sh.io.err, "  %s\n", failureLine(fl))
		}
		if len(plan.Dirs) > 0 {
			return fmt.Errorf("%s: %d of %d files and directories failed", op, len(res.Failures), len(plan.Files)+len(plan.Dirs))
		}
		return fmt.Errorf("%s: %d of %d files failed", op, len(res.Failures), len(plan.Files))
	}
	if failedSkips > 0 {
		// Like rsync's exit 23: the copy is incomplete.
		return &leftOutError{op, failedSkips}
	}
	return nil
}

// failureLine describes one failed file of a batch.
func failureLine(fl session.Failure) string {
	msg := fl.Err.Error()
	if !strings.Contains(msg, fl.Path) {
		msg = fl.Path + ": " + msg
	}
	return escapeUnprintable(msg)
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
	fmt.Fprintln(sh.io.out, sumLine(hex.EncodeToString(sum), c.Path, c.SHA256))
	return nil
}

// sumLine is a line of b3sum output, or with coreutils of sha256sum
// output. As they do, a name with a newline or a backslash (sha256sum, as
// of coreutils 9: or a carriage return) has them escaped (\n, \\, \r) and
// the line starts with a backslash, so that --check reads it back and
// each name stays on one line. Other control characters are printed as
// they are, as both tools do.
func sumLine(digest, name string, coreutils bool) string {
	special, esc := "\n\\", strings.NewReplacer("\\", "\\\\", "\n", "\\n")
	if coreutils {
		special, esc = "\n\\\r", strings.NewReplacer("\\", "\\\\", "\n", "\\n", "\r", "\\r")
	}
	if !strings.ContainsAny(name, special) {
		return digest + "  " + name
	}
	return "\\" + digest + "  " + esc.Replace(name)
}
