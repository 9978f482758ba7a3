package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/qftp/qftp/cmd/internal/prompt"
	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/size"
	"github.com/qftp/qftp/session/userdb"
)

type userCmd struct {
	Add    userAddCmd    `cmd:"" help:"Add a user and create their home directory."`
	Passwd userPasswdCmd `cmd:"" help:"Change a user's password."`
	Quota  userQuotaCmd  `cmd:"" help:"Set a user's disk quota."`
	Del    userDelCmd    `cmd:"" help:"Delete a user."`
	List   userListCmd   `cmd:"" help:"List users with quota and usage."`
	Rescan userRescanCmd `cmd:"" help:"Measure a user's home and correct the recorded usage."`
	Rate   userRateCmd   `cmd:"" help:"Cap a user's total transfer rate (all sessions together)."`
	Conns  userConnsCmd  `cmd:"" help:"Cap the connections one of a user's sessions may stripe over."`
}

type userConnsCmd struct {
	Name string `arg:""`
	N    int    `arg:"" help:"Connections per session; 0: the server's --max-connections."`
}

func (c *userConnsCmd) Run(ctx context.Context, g *globals) error {
	if c.N < 0 || c.N > 1024 {
		return usageError{fmt.Errorf("connections must be between 0 and 1024")}
	}
	err := g.withUsers(func(users *userdb.Store) error { return users.SetMaxConns(ctx, c.Name, c.N) })
	if err == nil {
		if c.N == 0 {
			fmt.Fprintf(g.io.err, "connections per session of %s: the server's limit (serve --max-connections)\n", c.Name)
		} else {
			fmt.Fprintf(g.io.err, "connections per session of %s set to %d\n", c.Name, c.N)
		}
	}
	return err
}

type userRateCmd struct {
	Name string `arg:""`
	Rate string `arg:"" help:"Bytes per second, e.g. 10MiB, or unlimited."`
}

func (c *userRateCmd) Run(ctx context.Context, g *globals) error {
	rate, err := setSize(ctx, g, "rate", c.Rate, func(u *userdb.Store, n int64) error { return u.SetRate(ctx, c.Name, n) })
	if err == nil {
		fmt.Fprintf(g.io.err, "rate of %s set to %s\n", c.Name, size.FormatRate(rate))
	}
	return err
}

// setSize parses a size argument (what: "quota" or "rate") and stores it
// with set.
func setSize(ctx context.Context, g *globals, what, arg string, set func(*userdb.Store, int64) error) (int64, error) {
	n, err := parseLimit(what, arg)
	if err != nil {
		return 0, err
	}
	return n, g.withUsers(func(users *userdb.Store) error { return set(users, n) })
}

// parseLimit reads a quota or rate (what names it in errors): a size, or
// "unlimited" (or "none") for no limit, which is stored as 0. A size that
// comes to 0 is refused: an admin who writes "quota NAME 0" means no
// uploads at all, and would get no limit.
func parseLimit(what, arg string) (int64, error) {
	n, err := size.Parse(arg)
	if err != nil {
		return 0, usageError{fmt.Errorf("%s: %w", what, err)}
	}
	if t := strings.ToLower(strings.TrimSpace(arg)); n == 0 && t != "unlimited" && t != "none" {
		return 0, usageError{fmt.Errorf("%s %q: 0 is not a limit; say unlimited for no limit, or give a size such as 1MiB", what, arg)}
	}
	return n, nil
}

// defaultQuota is the quota of new users until serve --default-quota sets
// another.
const defaultQuota = 100 << 20

type userRescanCmd struct {
	Name string `arg:""`
}

func (c *userRescanCmd) Run(ctx context.Context, g *globals) error {
	users, err := g.openExistingUsers()
	if err != nil {
		return err
	}
	defer users.Close()
	before, err := users.Get(ctx, c.Name)
	if err != nil {
		return err
	}
	used, err := session.Rescan(ctx, users, g.homeDir(), c.Name, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.io.err, "usage of %s: %s (was %s)\n", c.Name, size.Format(used), size.Format(before.Used))
	return nil
}

// readNewPassword takes a password from stdin (--password-stdin) or asks
// twice on the terminal.
func readNewPassword(ctx context.Context, g *globals, fromStdin bool) (string, error) {
	var pw string
	var err error
	if fromStdin {
		if pw, err = prompt.Line(g.io.in); err != nil {
			return "", fmt.Errorf("--password-stdin: no password on standard input: %w", err)
		}
	} else {
		pw, err = prompt.NewPassword(ctx, g.io.in, g.io.err)
		if errors.Is(err, prompt.ErrNoTerminal) {
			return "", usageError{errors.New("no terminal to ask for a password: use --password-stdin")}
		}
		if err != nil {
			return "", err
		}
	}
	if err := userdb.CheckPassword(pw); err != nil {
		return "", usageError{err}
	}
	return pw, nil
}

type userAddCmd struct {
	Name          string `arg:"" help:"User name (lower case letters, digits, _ . -)."`
	Quota         string `help:"Disk quota, e.g. 100MiB, 1.5GB, unlimited (default: the server's --default-quota, 100MiB until set)."`
	PasswordStdin bool   `name:"password-stdin" help:"Read the password from standard input instead of asking."`
	Rate          string `help:"Cap the user's total transfer rate, e.g. 10MiB (per second); default unlimited."`
}

func (c *userAddCmd) Run(ctx context.Context, g *globals) error {
	var quota int64 = defaultQuota
	if c.Quota != "" {
		q, err := parseLimit("--quota", c.Quota)
		if err != nil {
			return err
		}
		quota = q
	}
	var rate int64
	if c.Rate != "" {
		r, err := parseLimit("--rate", c.Rate)
		if err != nil {
			return err
		}
		rate = r
	}
	pw, err := readNewPassword(ctx, g, c.PasswordStdin)
	if err != nil {
		return err
	}
	users, err := g.openUsers(userdb.Options{})
	if err != nil {
		return err
	}
	defer users.Close()
	if c.Quota == "" {
		if v, ok, err := users.Setting(ctx, userdb.SettingDefaultQuota); err != nil {
			return err
		} else if ok {
			if quota, err = strconv.ParseInt(v, 10, 64); err != nil || quota < 0 {
				return fmt.Errorf("stored default quota %q is not a size", v)
			}
		}
	}
	// The user first: a refused add (the name taken) creates no home.
	if err := users.Add(ctx, c.Name, pw, quota); err != nil {
		return err
	}
	if _, err := session.EnsureHome(g.homeDir(), c.Name); err != nil {
		_ = users.Delete(ctx, c.Name) // all or nothing: a re-run must find the name free
		return err
	}
	if rate > 0 {
		if err := users.SetRate(ctx, c.Name, rate); err != nil {
			return err
		}
	}
	fmt.Fprintf(g.io.err, "added user %s (quota %s)\n", c.Name, size.FormatQuota(quota))
	// A home kept from an earlier user of this name (deleted without
	// --purge-home) is theirs now: count it, and say so.
	used, err := session.Rescan(ctx, users, g.homeDir(), c.Name, 0)
	if err != nil {
		return err
	}
	if used > 0 {
		counts := "it counts toward the quota"
		if quota > 0 && used > quota {
			counts = fmt.Sprintf("that is more than the quota of %s, so uploads are refused until files are removed or the quota is raised", size.Format(quota))
		}
		fmt.Fprintf(g.io.err, "note: %s already holds %s (kept from an earlier user %s?); %s\n",
			filepath.Join(g.homeDir(), c.Name), size.Format(used), c.Name, counts)
	}
	return nil
}

type userPasswdCmd struct {
	Name          string `arg:""`
	PasswordStdin bool   `name:"password-stdin" help:"Read the password from standard input instead of asking."`
}

func (c *userPasswdCmd) Run(ctx context.Context, g *globals) error {
	users, err := g.openExistingUsers()
	if err != nil {
		return err
	}
	defer users.Close()
	if _, err := users.Get(ctx, c.Name); err != nil {
		return err
	}
	pw, err := readNewPassword(ctx, g, c.PasswordStdin)
	if err != nil {
		return err
	}
	if err := users.SetPassword(ctx, c.Name, pw); err != nil {
		return err
	}
	fmt.Fprintf(g.io.err, "password of %s changed\n", c.Name)
	return nil
}

type userQuotaCmd struct {
	Name string `arg:""`
	Size string `arg:"" help:"New quota, e.g. 100MiB, 1.5GB, unlimited."`
}

func (c *userQuotaCmd) Run(ctx context.Context, g *globals) error {
	quota, err := setSize(ctx, g, "quota", c.Size, func(u *userdb.Store, n int64) error { return u.SetQuota(ctx, c.Name, n) })
	if err != nil {
		return err
	}
	fmt.Fprintf(g.io.err, "quota of %s set to %s\n", c.Name, size.FormatQuota(quota))
	return g.withUsers(func(users *userdb.Store) error {
		if u, err := users.Get(ctx, c.Name); err == nil && quota > 0 && u.Used > quota {
			fmt.Fprintf(g.io.err, "note: %s uses %s, more than that: uploads are refused until files are removed (nothing is deleted)\n", c.Name, size.Format(u.Used))
		}
		return nil
	})
}

type userDelCmd struct {
	Name      string `arg:""`
	PurgeHome bool   `name:"purge-home" help:"Also delete the user's home directory and all its files."`
}

func (c *userDelCmd) Run(ctx context.Context, g *globals) error {
	users, err := g.openExistingUsers()
	if err != nil {
		return err
	}
	defer users.Close()
	if err := users.Delete(ctx, c.Name); err != nil {
		return err
	}
	// The name is validated, so the join stays inside the homes dir.
	home := filepath.Join(g.homeDir(), c.Name)
	if c.PurgeHome {
		if err := os.RemoveAll(home); err != nil {
			return fmt.Errorf("purge home of %s: %w", c.Name, err)
		}
		fmt.Fprintf(g.io.err, "deleted user %s and their home\n", c.Name)
		return nil
	}
	fmt.Fprintf(g.io.err, "deleted user %s; their files stay in %s (--purge-home deletes them; a new user %s would get them)\n", c.Name, home, c.Name)
	return nil
}

type userListCmd struct {
	JSON bool `name:"json" help:"Print JSON."`
}

type userRow struct {
	Name  string `json:"name"`
	Quota int64  `json:"quota"`
	Used  int64  `json:"used"`
	Rate  int64  `json:"rate"`
	Conns int    `json:"conns"` // 0: the server's limit
}

func (c *userListCmd) Run(ctx context.Context, g *globals) error {
	users, err := g.openExistingUsers()
	if err != nil {
		return err
	}
	defer users.Close()
	list, err := users.List(ctx)
	if err != nil {
		return err
	}
	rows := make([]userRow, 0, len(list))
	for _, u := range list {
		rows = append(rows, userRow{Name: u.Name, Quota: u.Quota, Used: u.Used, Rate: u.Rate, Conns: u.MaxConns})
	}
	return printUsers(g.io.out, rows, c.JSON)
}

func printUsers(w io.Writer, rows []userRow, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tQUOTA\tUSED\tRATE\tMAX CONNS")
	for _, r := range rows {
		used := "?"
		if r.Used >= 0 {
			used = size.Format(r.Used)
		}
		conns := "server's"
		if r.Conns > 0 {
			conns = strconv.Itoa(r.Conns)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, size.FormatQuota(r.Quota), used, size.FormatRate(r.Rate), conns)
	}
	return tw.Flush()
}

// Kong runs these before the commands: a bad user name is a usage error
// (exit 2) for every user command alike.
func (c *userConnsCmd) Validate() error  { return validName(c.Name) }
func (c *userRateCmd) Validate() error   { return validName(c.Name) }
func (c *userPasswdCmd) Validate() error { return validName(c.Name) }
func (c *userQuotaCmd) Validate() error  { return validName(c.Name) }
func (c *userAddCmd) Validate() error    { return validName(c.Name) }
func (c *userDelCmd) Validate() error    { return validName(c.Name) }
func (c *userRescanCmd) Validate() error { return validName(c.Name) }

func validName(name string) error {
	if err := userdb.ValidName(name); err != nil {
		return usageError{err}
	}
	return nil
}
