package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"time"
)

// unfinished remembers the tree copies (get -r, put -r) whose run created
// the destination it was given and did not finish. cp's rule sends a tree
// into a destination that is an existing directory, so without this the
// same command run again after an interruption would start a second copy
// inside the first one (DEST/DIR) instead of resuming it.
//
// Each copy is one small file named by a digest of its key, so that qftp
// processes running at once never lose each other's records. A record
// older than unfinishedMaxAge is ignored and, on the next add, removed.
type unfinished struct {
	dir string // "": remember nothing
}

const unfinishedMaxAge = 30 * 24 * time.Hour

// copyKey identifies a tree copy: the same command against the same
// account has the same key.
type copyKey struct {
	Op      string // "get" or "put"
	Account string // user@host:port
	Src     string // absolute: local for put, remote for get
	Dest    string // absolute, as given: remote for put, local for get
}

// stateDir is where qftp keeps its state: $XDG_STATE_HOME/qftp or
// ~/.local/state/qftp; "" if neither is known.
func stateDir() string {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "qftp")
}

func (u unfinished) file(k copyKey) string {
	b, _ := json.Marshal(k)
	sum := sha256.Sum256(b)
	return filepath.Join(u.dir, hex.EncodeToString(sum[:16]))
}

// has reports whether k was begun and not finished.
func (u unfinished) has(k copyKey) bool {
	if u.dir == "" {
		return false
	}
	fi, err := os.Stat(u.file(k))
	return err == nil && time.Since(fi.ModTime()) < unfinishedMaxAge
}

// add records k as begun. Failing to record only loses the resume-in-place
// of an interrupted copy, so the error is for the caller to log.
func (u unfinished) add(k copyKey) error {
	if u.dir == "" {
		return nil
	}
	if err := os.MkdirAll(u.dir, 0o700); err != nil {
		return err
	}
	u.prune()
	b, _ := json.Marshal(k) // for whoever looks into the directory
	return os.WriteFile(u.file(k), append(b, '\n'), 0o600)
}

// done forgets k: the copy is complete.
func (u unfinished) done(k copyKey) {
	if u.dir != "" {
		_ = os.Remove(u.file(k))
	}
}

// prune removes records too old to be honoured.
func (u unfinished) prune() {
	entries, err := os.ReadDir(u.dir)
	if err != nil {
		return
	}
	for i, e := range entries {
		if i >= 1000 {
			return // bounded: the rest go on later adds
		}
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) >= unfinishedMaxAge {
			_ = os.Remove(filepath.Join(u.dir, e.Name()))
		}
	}
}
