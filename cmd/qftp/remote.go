package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/size"
	"github.com/qftp/qftp/transport"
)

type pwdCmd struct{}

func (c *pwdCmd) Run(ctx context.Context, sh *shell) error {
	p, err := sh.client.Pwd(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(sh.io.out, p)
	return nil
}

type cdCmd struct {
	Dir string `arg:"" optional:"" help:"Directory (default /, the home; ~ is the home too; - the previous directory)."`
}

func (c *cdCmd) Run(ctx context.Context, sh *shell) error {
	dir, err := cdTarget(c.Dir, "/", sh.lastDir.remote, "cd")
	if err != nil {
		return err
	}
	if dir == "~" || strings.HasPrefix(dir, "~/") {
		dir = "/" + strings.TrimLeft(dir[1:], "/") // as lftp: the home is /
	}
	before := sh.client.Cwd()
	now, err := sh.client.Cd(ctx, dir)
	if err != nil {
		return err
	}
	if c.Dir == "-" {
		fmt.Fprintln(sh.io.out, now) // as a shell's cd - does
	}
	sh.lastDir.remote = before
	return nil
}

// lastDirs are the working directories before the last cd and lcd, for
// "cd -" and "lcd -".
type lastDirs struct{ remote, local string }

// cdTarget is the directory that cd or lcd (op) goes to for arg: def for
// none, prev (the one before the last change) for "-".
func cdTarget(arg, def, prev, op string) (string, error) {
	switch arg {
	case "":
		return def, nil
	case "-":
		if prev == "" {
			return "", fmt.Errorf("%s -: no previous directory", op)
		}
		return prev, nil
	}
	return arg, nil
}

// listFlags are ls's and lls's.
type listFlags struct {
	Long  bool `short:"l" help:"Long listing: type and permissions, size, modification time, name."`
	Human bool `short:"h" help:"With -l, sizes in KiB, MiB, ... (as ls -lh)."`
	JSON  bool `name:"json" help:"Print JSON."`
}

type lsCmd struct {
	listFlags
	Path string `arg:"" optional:"" help:"Directory or file (default: working directory), or a pattern (*, ?, [...]) the server expands."`
}

func (c *lsCmd) Run(ctx context.Context, sh *shell) error {
	list := sh.client.List
	if sh.isPattern(ctx, c.Path) {
		list = sh.globRelative
	}
	entries, hidden, err := list(ctx, c.Path)
	if err != nil {
		return err
	}
	if err := printEntries(sh.io.out, entries, c.listFlags); err != nil {
		return err
	}
	if hidden.Count > 0 {
		names := ""
		if len(hidden.Names) > 0 {
			names = ": " + strings.Join(hidden.Names, ", ")
			if len(hidden.Names) < hidden.Count {
				names += ", ..."
			}
		}
		fmt.Fprintf(sh.io.err, "ls: %d not shown (%s, which qftp cannot use)%s\n", hidden.Count, session.Unnamable, escapeUnprintable(names))
	}
	return nil
}

// printEntries prints a listing (already sorted by name).
func printEntries(w io.Writer, entries []transport.Entry, f listFlags) error {
	if f.JSON {
		if entries == nil {
			entries = []transport.Entry{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	if !f.Long {
		for _, e := range entries {
			fmt.Fprintln(w, displayName(e.Name))
		}
		return nil
	}
	sizeOf := func(e transport.Entry) string { return strconv.FormatInt(e.Size, 10) }
	if f.Human {
		sizeOf = func(e transport.Entry) string { return size.Format(e.Size) }
	}
	width := 1
	for _, e := range entries {
		width = max(width, len(sizeOf(e)))
	}
	for _, e := range entries {
		mt := time.Unix(0, e.Mtime).Local().Format("2006-01-02 15:04")
		if _, err := fmt.Fprintf(w, "%s %*s %s %s\n", modeString(e), width, sizeOf(e), mt, displayName(e.Name)); err != nil {
			return err
		}
	}
	return nil
}

// displayName is a name as a listing prints it: one with characters
// that are not printable (a newline, an escape sequence, a bidirectional
// override that would reorder what follows) quoted in Go syntax, so that
// each entry stays on one line and the terminal shows what is there
// (--json gives names as they are).
func displayName(name string) string {
	if strings.ContainsFunc(name, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return strconv.Quote(name)
	}
	return name
}

// escapeUnprintable escapes, Go style, each character of a message that
// strconv calls unprintable (a name with a newline or an escape sequence
// in an error), so that it can neither break the line nor reach the
// terminal as a control sequence.
func escapeUnprintable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if strconv.IsPrint(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

func modeString(e transport.Entry) string {
	t := "?" // TypeOther, and types this client does not know
	switch e.Type {
	case transport.TypeFile:
		t = "-"
	case transport.TypeDir, transport.TypeSymlink, transport.TypeFIFO, transport.TypeSocket, transport.TypeCharDev, transport.TypeDevice:
		t = e.Type // the letters ls -l uses
	}
	const rwx = "rwxrwxrwx"
	b := []byte(t + "---------")
	for i := range 9 {
		if e.Mode&(1<<(8-i)) != 0 {
			b[1+i] = rwx[i]
		}
	}
	return string(b)
}

type mkdirCmd struct {
	Parents bool   `short:"p" help:"Create parent directories; no error if it exists."`
	Dir     string `arg:""`
}

func (c *mkdirCmd) Run(ctx context.Context, sh *shell) error {
	return sh.client.Mkdir(ctx, c.Dir, c.Parents)
}

type rmdirCmd struct {
	Dir string `arg:""`
}

func (c *rmdirCmd) Run(ctx context.Context, sh *shell) error {
	return sh.client.Rmdir(ctx, c.Dir)
}

type rmCmd struct {
	Recursive bool     `short:"r" help:"Remove directories too, with all they hold (links are removed, not followed)."`
	Force     bool     `short:"f" help:"Say nothing of files that do not exist and patterns without a match."`
	Files     []string `arg:"" help:"Files to remove; patterns (*, ?, [...]) are expanded by the server."`
}

// Run removes each file, going on past one that fails (as rm does); the
// failures are printed, and with several of them the error sums up.
func (c *rmCmd) Run(ctx context.Context, sh *shell) error {
	var errs []error
	tried := 0
	// keep records err, unless -f lets it pass: a file already gone.
	keep := func(err error) {
		if !c.Force || !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
files:
	for _, f := range c.Files {
		targets := []string{f}
		if sh.isPattern(ctx, f) {
			entries, unnamable, err := sh.client.Glob(ctx, f)
			switch {
			case err != nil:
				errs = append(errs, err)
				continue
			case unnamable > 0:
				errs = append(errs, fmt.Errorf("rm %s: %d matching files left alone (%s)", f, unnamable, session.Unnamable))
			case len(entries) == 0 && !c.Force:
				errs = append(errs, fmt.Errorf("rm %s: no match", f))
			}
			targets = targets[:0]
			for _, e := range entries {
				targets = append(targets, e.Name)
			}
		}
		for _, t := range targets {
			if !c.Recursive {
				tried++
				if err := sh.client.Remove(ctx, t); err != nil {
					if ctx.Err() != nil {
						return err
					}
					keep(err)
				}
				continue
			}
			if err := removableTree(sh.remoteAbs(t), t); err != nil {
				errs = append(errs, err)
				continue
			}
			failed := 0
			var lost *session.ConnLostError
			tried += sh.client.RemoveTree(ctx, t, func(p string, err error) {
				failed++
				keep(err)
				errors.As(err, &lost)
			})
			tried += failed
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if lost != nil {
				break files // the server is gone: the other targets would wait as long
			}
		}
	}
	if len(errs) <= 1 {
		return errors.Join(errs...) // nil, or the one error, printed once
	}
	for _, err := range errs {
		fmt.Fprintln(sh.io.err, escapeUnprintable(err.Error()))
	}
	return fmt.Errorf("rm: %d errors (%d tried)", len(errs), tried)
}

// removableTree refuses, as rm does, what rm -r should never remove: the
// home directory (abs "/"; its contents go with rm -r '/*'), and "", "."
// and ".." (the working directory or its parent by another name).
func removableTree(abs, arg string) error {
	switch base := path.Base(arg); {
	case abs == "/":
		return fmt.Errorf("rm -r %s: that is the home directory; to empty it, rm -r '/*'", arg)
	case arg == "" || base == "." || base == "..":
		return fmt.Errorf("rm -r %q: refusing to remove . or ..", arg)
	}
	return nil
}

// globRelative is the server's expansion of pattern, each name relative
// to the working directory if the pattern is; no match is an error.
func (sh *shell) globRelative(ctx context.Context, pattern string) ([]transport.Entry, session.Hidden, error) {
	entries, unnamable, err := sh.client.Glob(ctx, pattern)
	if err != nil {
		return nil, session.Hidden{}, err
	}
	if len(entries) == 0 && unnamable == 0 {
		return nil, session.Hidden{}, fmt.Errorf("ls %s: no match", pattern)
	}
	if cwd := sh.client.Cwd(); !strings.HasPrefix(pattern, "/") {
		prefix := strings.TrimSuffix(cwd, "/") + "/"
		for i := range entries {
			entries[i].Name = strings.TrimPrefix(entries[i].Name, prefix)
		}
	}
	return entries, session.Hidden{Count: unnamable}, nil
}

// isPattern reports whether p is a pattern for the server to expand: it
// has *, ? or [ and names no file as it is (there is no escaping them, as
// backslashes are not allowed in names, so "photo [1].jpg" is that file
// if it exists).
func (sh *shell) isPattern(ctx context.Context, p string) bool {
	if !strings.ContainsAny(p, "*?[") {
		return false
	}
	_, _, err := sh.client.Stat(ctx, p)
	return err != nil
}

type mvCmd struct {
	Force bool   `short:"f" help:"Replace an existing destination file."`
	From  string `arg:""`
	To    string `arg:""`
}

func (c *mvCmd) Run(ctx context.Context, sh *shell) error {
	return sh.client.Rename(ctx, c.From, c.To, c.Force)
}

type dfCmd struct {
	Human bool `short:"h" help:"Sizes in KiB, MiB, ... (always so; accepted out of habit)."`
}

func (c *dfCmd) Run(ctx context.Context, sh *shell) error {
	u, err := sh.client.Df(ctx)
	if err != nil {
		return err
	}
	free := "unlimited"
	if u.Quota > 0 {
		free = size.Format(max(u.Quota-u.Used, 0))
	}
	tw := tabwriter.NewWriter(sh.io.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USED\tQUOTA\tFREE\tRATE")
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", size.Format(u.Used), size.FormatQuota(u.Quota), free, size.FormatRate(u.Rate))
	return tw.Flush()
}
