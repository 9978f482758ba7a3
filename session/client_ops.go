package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/qftp/qftp/transport"
)

// opError wraps a failed operation as "op path: cause", using the virtual
// path the server reports when it has one.
func opError(op, p string, err error) error {
	if we, ok := err.(*transport.Error); ok && we.Path != "" {
		return &OpError{Op: op, Path: we.Path, Err: &transport.Error{Code: we.Code, Msg: we.Msg}}
	}
	return &OpError{Op: op, Path: p, Err: err}
}

// relabel gives err, an OpError of a step of op (a stat), op's name, so
// that the user reads of the command they gave: "get /x: no such file".
func relabel(op string, err error) error {
	var oe *OpError
	if errors.As(err, &oe) && oe.Op != op {
		return &OpError{Op: op, Path: oe.Path, Err: oe.Err}
	}
	return err
}

// OpError is a failed client operation: "cd /x: not a directory".
type OpError struct {
	Op   string
	Path string
	Err  error
}

func (e *OpError) Error() string {
	if e.Path == "" {
		return e.Op + ": " + e.Err.Error()
	}
	return e.Op + " " + e.Path + ": " + e.Err.Error()
}

func (e *OpError) Unwrap() error { return e.Err }

func (c *Client) simple(ctx context.Context, req transport.Request) (transport.Response, error) {
	out, err := c.call(ctx, req)
	if err != nil {
		return transport.Response{}, opError(req.Op, req.Path, err)
	}
	return out[len(out)-1], nil
}

// Pwd asks the server for the working directory.
func (c *Client) Pwd(ctx context.Context) (string, error) {
	r, err := c.simple(ctx, transport.Request{Op: transport.OpPwd})
	if err != nil {
		return "", err
	}
	c.setCwd(r.Path)
	return r.Path, nil
}

// Cd changes the remote working directory and returns the new one.
func (c *Client) Cd(ctx context.Context, p string) (string, error) {
	r, err := c.simple(ctx, transport.Request{Op: transport.OpCd, Path: p})
	if err != nil {
		return "", err
	}
	c.setCwd(r.Path)
	return r.Path, nil
}

func (c *Client) setCwd(p string) {
	c.mu.Lock()
	c.cwd = p
	c.mu.Unlock()
}

// Hidden is what a listing left out because no client can name it (a
// backslash, invalid UTF-8 ...): how many, and some of the names, quoted
// as Go string literals (servers before them send none).
type Hidden struct {
	Count int
	Names []string
}

// List returns the entries of a remote directory sorted by name, or the
// one entry of a file, named p. p "" lists the working directory. hidden is what
// the server left out.
func (c *Client) List(ctx context.Context, p string) (entries []transport.Entry, hidden Hidden, err error) {
	return c.entries(ctx, "ls", transport.Request{Op: transport.OpLs, Path: p})
}

// entries runs a request answered by pages of entries. A listing of a
// file (the server says so with its stat) names it as req named it, as
// ls(1) does: "ls docs/a.txt" prints docs/a.txt.
func (c *Client) entries(ctx context.Context, op string, req transport.Request) (entries []transport.Entry, hidden Hidden, err error) {
	out, err := c.call(ctx, req)
	if err != nil {
		return nil, Hidden{}, opError(op, req.Path, err)
	}
	for _, r := range out {
		entries = append(entries, r.Entries...)
		hidden.Count += r.Unnamable
		hidden.Names = append(hidden.Names, r.UnnamableNames...)
	}
	if len(out) == 1 && out[0].Stat != nil && len(entries) == 1 && req.Path != "" {
		entries[0].Name = req.Path
	}
	return entries, hidden, nil
}

// Stat describes a remote file, following symbolic links inside the home.
// It also returns the resolved virtual path.
func (c *Client) Stat(ctx context.Context, p string) (transport.Entry, string, error) {
	r, err := c.simple(ctx, transport.Request{Op: transport.OpStat, Path: p})
	if err != nil {
		return transport.Entry{}, "", err
	}
	if r.Stat == nil {
		return transport.Entry{}, "", opError("stat", p, fmt.Errorf("server sent no file information"))
	}
	return *r.Stat, r.Path, nil
}

// Mkdir creates a remote directory; parents works like mkdir -p.
func (c *Client) Mkdir(ctx context.Context, p string, parents bool) error {
	_, err := c.simple(ctx, transport.Request{Op: transport.OpMkdir, Path: p, Parents: parents})
	return err
}

// Rmdir removes an empty remote directory.
func (c *Client) Rmdir(ctx context.Context, p string) error {
	_, err := c.simple(ctx, transport.Request{Op: transport.OpRmdir, Path: p})
	return err
}

// Remove removes a remote file or symbolic link.
func (c *Client) Remove(ctx context.Context, p string) error {
	_, err := c.simple(ctx, transport.Request{Op: transport.OpRm, Path: p})
	return err
}

// Rename moves from to to; an existing directory to receives from under its
// own name. An existing file is replaced only with force.
func (c *Client) Rename(ctx context.Context, from, to string, force bool) error {
	_, err := c.simple(ctx, transport.Request{Op: transport.OpMv, Path: from, To: to, Force: force})
	return err
}

// Usage is the answer to df.
type Usage struct {
	Used  int64 // bytes
	Quota int64 // bytes, 0 = unlimited
	Rate  int64 // the server's cap on the user's transfer rate, bytes/s; 0 = none
}

// Df reports the user's disk usage and quota.
func (c *Client) Df(ctx context.Context) (Usage, error) {
	r, err := c.simple(ctx, transport.Request{Op: transport.OpDf})
	if err != nil {
		return Usage{}, err
	}
	c.serverRate.Store(r.Rate)
	return Usage{Used: r.Used, Quota: r.Quota, Rate: r.Rate}, nil
}

// Glob expands a pattern on the server, within the home: "*", "?" and
// "[...]" in any component; "*" does not match a leading dot. Each entry's
// Name is the match's virtual path. No match is not an error. unnamable
// counts matches left out as by List.
func (c *Client) Glob(ctx context.Context, pattern string) (entries []transport.Entry, unnamable int, err error) {
	entries, hidden, err := c.entries(ctx, "glob", transport.Request{Op: transport.OpGlob, Path: pattern})
	return entries, hidden.Count, err
}

// SetMtime sets the modification time of a remote file or directory.
func (c *Client) SetMtime(ctx context.Context, p string, mtime time.Time) error {
	_, err := c.simple(ctx, transport.Request{Op: transport.OpMtime, Path: p, Mtime: mtime.UnixNano()})
	return err
}
