package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/qftp/qftp/transport"
)

type lcdCmd struct {
	Dir string `arg:"" optional:"" help:"Local directory (default: home; - the previous directory)."`
}

func (c *lcdCmd) Run(ctx context.Context, sh *shell) error {
	dir, err := cdTarget(c.Dir, "~", sh.lastDir.local, "lcd")
	if err != nil {
		return err
	}
	p := filepath.Clean(sh.local(dir))
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("lcd %s: %w", c.Dir, unwrapPathErr(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("lcd %s: not a directory", c.Dir)
	}
	if c.Dir == "-" {
		fmt.Fprintln(sh.io.out, p)
	}
	sh.lastDir.local, sh.localDir = sh.localDir, p
	return nil
}

type lpwdCmd struct{}

func (c *lpwdCmd) Run(ctx context.Context, sh *shell) error {
	fmt.Fprintln(sh.io.out, sh.localDir)
	return nil
}

type llsCmd struct {
	listFlags
	Path string `arg:"" optional:"" help:"Local directory or file (default: local working directory), or a pattern (*, ?, [...])."`
}

func (c *llsCmd) Run(ctx context.Context, sh *shell) error {
	p := sh.local(c.Path)
	fi, err := os.Lstat(p)
	if err != nil && strings.ContainsAny(c.Path, "*?[") {
		return c.glob(sh, p)
	}
	if err != nil {
		return fmt.Errorf("lls %s: %w", c.Path, unwrapPathErr(err))
	}
	var entries []transport.Entry
	if !fi.IsDir() {
		entries = []transport.Entry{transport.EntryOf(c.Path, fi)}
	} else {
		des, err := os.ReadDir(p)
		if err != nil {
			return fmt.Errorf("lls %s: %w", c.Path, unwrapPathErr(err))
		}
		for _, de := range des {
			if fi, err := de.Info(); err == nil {
				entries = append(entries, transport.EntryOf(fi.Name(), fi))
			}
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	return printEntries(sh.io.out, entries, c.listFlags)
}

// glob lists the local files matching the pattern c.Path (p made
// absolute), named as the pattern is (relative if it is), as ls does.
func (c *llsCmd) glob(sh *shell, p string) error {
	matches, err := filepath.Glob(p)
	if err != nil {
		return fmt.Errorf("lls %s: %w", c.Path, err)
	}
	if len(matches) == 0 {
		return fmt.Errorf("lls %s: no match", c.Path)
	}
	var entries []transport.Entry
	for _, m := range matches {
		fi, err := os.Lstat(m)
		if err != nil {
			continue // gone meanwhile
		}
		name := m
		if !filepath.IsAbs(c.Path) {
			if rel, err := filepath.Rel(sh.localDir, m); err == nil {
				name = rel
			}
		}
		entries = append(entries, transport.EntryOf(name, fi))
	}
	return printEntries(sh.io.out, entries, c.listFlags)
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func userHome() (string, error) { return os.UserHomeDir() }

type helpCmd struct {
	Command string `arg:"" optional:"" help:"Command to explain."`
}

func (c *helpCmd) Run(ctx context.Context, sh *shell) error {
	if c.Command != "" {
		return sh.exec(ctx, []string{c.Command, "--help"})
	}
	var cmds commands
	exited := false
	p, err := sh.parser(&cmds, sh.io.out, &exited)
	if err != nil {
		return err
	}
	fmt.Fprintln(sh.io.out, "Commands:")
	for _, n := range p.Model.Children {
		fmt.Fprintf(sh.io.out, "  %-7s %s\n", n.Name, n.Help)
	}
	fmt.Fprintln(sh.io.out, "Type help CMD for the usage of one command. Quote names with spaces: put 'my file.txt'.")
	return nil
}

type exitCmd struct{}

func (c *exitCmd) Run(ctx context.Context, sh *shell) error {
	sh.quit = true
	return nil
}
