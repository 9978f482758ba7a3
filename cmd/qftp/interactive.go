package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/peterh/liner"

	"github.com/qftp/qftp/transport"
)

// historyFile is where the shell keeps its history (see stateDir).
func historyFile() string {
	dir := stateDir()
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "history")
}

// interactive reads commands from a terminal with line editing, history
// and Tab completion until exit or Ctrl-D. Ctrl-C cancels the running
// command (its transfers stop and can be resumed) or clears the line.
func (sh *shell) interactive(ctx context.Context) int {
	fmt.Fprintf(sh.io.err, "Connected to %s (%s). Type help for commands.\n", sh.host, sh.client.Server())
	ln := liner.NewLiner()
	defer ln.Close()
	ln.SetCtrlCAborts(true)
	ln.SetTabCompletionStyle(liner.TabPrints)
	comp := &completer{sh: sh, ctx: ctx}
	ln.SetWordCompleter(comp.complete)
	hist := historyFile()
	if f, err := os.Open(hist); err == nil {
		_, _ = ln.ReadHistory(f)
		_ = f.Close()
	}
	defer func() {
		if hist == "" {
			return
		}
		_ = os.MkdirAll(filepath.Dir(hist), 0o700)
		if f, err := os.OpenFile(hist, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err == nil {
			_, _ = ln.WriteHistory(f)
			_ = f.Close()
		}
	}()
	for !sh.quit && ctx.Err() == nil { // a signal ended the last command: no prompt
		line, err := promptUntilDone(ctx, ln, fmt.Sprintf("%s@%s:%s> ", sh.client.User(), sh.host, sh.client.Cwd()))
		switch {
		case ctx.Err() != nil:
			fmt.Fprintln(sh.io.err) // SIGTERM or SIGHUP at the prompt
			return exitFail
		case errors.Is(err, liner.ErrPromptAborted):
			continue // Ctrl-C at the prompt clears the line
		case errors.Is(err, io.EOF):
			fmt.Fprintln(sh.io.err)
			return exitOK // Ctrl-D
		case err != nil:
			fmt.Fprintln(sh.io.err, "qftp:", err)
			return exitFail
		}
		if strings.TrimSpace(line) != "" {
			ln.AppendHistory(line)
		}
		comp.invalidate()
		words, err := splitLine(line)
		if err == nil {
			err = sh.execInterruptible(ctx, words)
		}
		if err != nil {
			switch {
			case errors.Is(err, context.Canceled) && ctx.Err() == nil:
				fmt.Fprintln(sh.io.err, "canceled; run the same command again to resume")
			case errors.Is(err, context.Canceled):
				fmt.Fprintln(sh.io.err, "interrupted; run the same command again to resume")
			default:
				fmt.Fprintln(sh.io.err, escapeUnprintable(err.Error()))
			}
		}
		if ctx.Err() != nil {
			return exitFail
		}
	}
	return exitOK
}

// promptUntilDone reads a line with ln, or gives up when ctx ends (SIGTERM,
// SIGHUP): the terminal read cannot be interrupted, so it stays blocked in
// its goroutine while qftp restores the terminal (ln.Close) and exits.
func promptUntilDone(ctx context.Context, ln *liner.State, p string) (string, error) {
	type result struct {
		line string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		line, err := ln.Prompt(p)
		done <- result{line, err}
	}()
	select {
	case r := <-done:
		return r.line, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// execInterruptible runs one command with a context that Ctrl-C (SIGINT)
// cancels, without ending the shell.
func (sh *shell) execInterruptible(ctx context.Context, words []string) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if sh.io.intr != nil {
		// A Ctrl-C pressed before this command (at a password prompt, say)
		// is not for it.
		for drained := false; !drained; {
			select {
			case <-sh.io.intr:
			default:
				drained = true
			}
		}
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-sh.io.intr:
				cancel()
			case <-done:
			}
		}()
	}
	return sh.exec(cctx, words)
}

// completer completes command names, remote paths and local paths. Remote
// listings are cached until the next command runs.
type completer struct {
	sh  *shell
	ctx context.Context

	mu    sync.Mutex
	cache map[string][]transport.Entry
}

func (c *completer) invalidate() {
	c.mu.Lock()
	c.cache = nil
	c.mu.Unlock()
}

// Which argument positions of each command are remote ("r") or local
// ("l") paths, or remote or local directories ("d", "D"); the last letter
// repeats.
var argKinds = map[string]string{
	"cd": "d", "ls": "r", "mkdir": "d", "rmdir": "d", "rm": "r", "mv": "r", "hash": "r",
	"get": "rl", "mget": "r", "put": "lr", "mput": "l", "lcd": "D", "lls": "l", "help": "c",
}

func (c *completer) complete(line string, pos int) (head string, completions []string, tail string) {
	before, tail := line[:pos], line[pos:]
	// The word being completed starts after the last unescaped blank.
	start := strings.LastIndexAny(before, " \t") + 1
	for start > 1 && before[start-2] == '\\' {
		start = strings.LastIndexAny(before[:start-2], " \t") + 1
	}
	head, word := before[:start], unescape(before[start:])
	words, _ := splitLine(head)
	if len(words) == 0 {
		return head, c.commands(word), tail
	}
	kinds, ok := argKinds[words[0]]
	if !ok {
		return head, nil, tail
	}
	// Count positional arguments before this one (flags do not count).
	n := 0
	for _, w := range words[1:] {
		if !strings.HasPrefix(w, "-") {
			n++
		}
	}
	kind := kinds[min(n, len(kinds)-1)]
	switch kind {
	case 'c':
		return head, c.commands(word), tail
	case 'r', 'd':
		return head, c.remote(word, kind == 'd'), tail
	default:
		return head, c.local(word, kind == 'D'), tail
	}
}

func (c *completer) commands(prefix string) []string {
	var out []string
	for name := range argKinds {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name+" ")
		}
	}
	for _, name := range []string{"pwd", "df", "lpwd", "exit", "quit"} {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name+" ")
		}
	}
	sort.Strings(out)
	return out
}

// remote completes a remote path from a listing of its directory; with
// dirs, only directories (and links, which may lead to one).
func (c *completer) remote(word string, dirs bool) []string {
	dir, prefix := path.Split(word)
	c.mu.Lock()
	entries, ok := c.cache[dir]
	c.mu.Unlock()
	if !ok {
		ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
		defer cancel()
		var err error
		if entries, _, err = c.sh.client.List(ctx, dir); err != nil {
			return nil
		}
		c.mu.Lock()
		if c.cache == nil {
			c.cache = map[string][]transport.Entry{}
		}
		c.cache[dir] = entries
		c.mu.Unlock()
	}
	var out []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name, prefix) || strings.HasPrefix(e.Name, ".") && !strings.HasPrefix(prefix, ".") {
			continue
		}
		if dirs && e.Type != transport.TypeDir && e.Type != transport.TypeSymlink {
			continue
		}
		s := escape(dir + e.Name)
		if e.Type == transport.TypeDir {
			s += "/"
		} else {
			s += " "
		}
		out = append(out, s)
	}
	return out
}

// local completes a local path; with dirs, only directories (and links).
func (c *completer) local(word string, dirs bool) []string {
	dir, prefix := filepath.Split(word)
	des, err := os.ReadDir(c.sh.local(dir))
	if err != nil {
		return nil
	}
	var out []string
	for _, de := range des {
		name := de.Name()
		if !strings.HasPrefix(name, prefix) || strings.HasPrefix(name, ".") && !strings.HasPrefix(prefix, ".") {
			continue
		}
		if dirs && !de.IsDir() && de.Type()&fs.ModeSymlink == 0 {
			continue
		}
		s := escape(dir + name)
		if de.IsDir() {
			s += string(filepath.Separator)
		} else {
			s += " "
		}
		out = append(out, s)
	}
	return out
}

// escape quotes blanks and shell-special characters with backslashes, the
// way splitLine reads them back.
func escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(" \t'\"\\#", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func unescape(s string) string {
	if words, err := splitLine(s); err == nil && len(words) == 1 {
		return words[0]
	}
	return s
}
