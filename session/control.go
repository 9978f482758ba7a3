package session

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/qftp/qftp/fsjail"
	"github.com/qftp/qftp/session/userdb"
	"github.com/qftp/qftp/transport"
)

// lsPage is how many entries one ls response carries, so that a response
// stays far below transport.MaxFrameSize even with 255-byte names.
const lsPage = 128

// handle answers one control request. A returned error means the control
// stream is broken and the session ends; failed operations are answered
// with an error response instead.
func (c *conn) handle(ctx context.Context, w io.Writer, req *transport.Request) error {
	resp := transport.Response{ID: req.ID}
	var err error
	switch req.Op {
	case transport.OpPwd:
		resp.Path = c.getCwd()
	case transport.OpCd:
		resp.Path, err = c.cd(req.Path)
	case transport.OpLs:
		return c.ls(w, req)
	case transport.OpStat:
		var vp string
		var fi fs.FileInfo
		if vp, err = c.resolve(req.Path); err == nil {
			if fi, err = c.jail.Stat(vp); err == nil {
				e := transport.EntryOf(path.Base(vp), fi)
				resp.Stat = &e
				resp.Path = vp
			}
		}
	case transport.OpMkdir:
		err = c.withPath(req.Path, func(vp string) error { return c.jail.Mkdir(vp, req.Parents) })
	case transport.OpRmdir:
		err = c.withPath(req.Path, func(vp string) error { return c.rmdir(ctx, vp) })
	case transport.OpRm:
		err = c.withPath(req.Path, func(vp string) error { return c.remove(ctx, vp) })
	case transport.OpMv:
		err = c.mv(ctx, req)
	case transport.OpDf:
		var u userdb.User
		c.srv.settleQuota(ctx, c.user.Name)
		if u, err = c.srv.Users.Get(ctx, c.user.Name); err == nil {
			resp.Quota, resp.Used, resp.Rate = u.Quota, u.Used, u.Rate
		}
	case transport.OpGlob:
		return c.glob(w, req)
	case transport.OpMtime:
		if req.Mtime == 0 {
			err = userError(transport.CodeInvalid, "", "chtimes needs mtime")
			break
		}
		err = c.withPath(req.Path, func(vp string) error { return c.jail.Chtimes(vp, time.Unix(0, req.Mtime)) })
	case transport.OpLogin:
		err = userError(transport.CodeProtocol, "", "already logged in")
	default:
		err = userError(transport.CodeUnsupported, "", "unknown operation "+strconv.Quote(req.Op))
	}
	if err != nil {
		resp = transport.Response{ID: req.ID, Err: c.report(req.Op, err)}
	} else if req.Op != transport.OpPwd && req.Op != transport.OpDf && req.Op != transport.OpStat {
		c.ulog.Debug(req.Op, "vpath", req.Path)
	}
	return transport.WriteFrame(w, &resp)
}

// report converts err for the wire and logs what the client is not told.
func (c *conn) report(op string, err error) *transport.Error {
	we := wireError(err)
	vp := we.Path
	if pe := (*fs.PathError)(nil); vp == "" && errors.As(err, &pe) {
		vp = pe.Path // the client is not told the server's own files; the log may be
	}
	switch {
	case errors.Is(err, context.Canceled):
		// The client went away (or stopped this stream): nothing failed.
		c.ulog.Debug(op+" canceled", "vpath", vp, "err", err)
	case errors.As(err, new(alreadyReported)):
		c.ulog.Debug(op+" refused with its upload", "vpath", vp, "err", err)
	case we.Code == transport.CodeIO:
		c.ulog.Error(op+" failed", "vpath", vp, "err", err)
	case we.Code == transport.CodeQuota: // worth an admin's eye: the user is at the limit
		c.ulog.Info(op+" refused", "vpath", vp, "err", err)
	default:
		c.ulog.Debug(op+" refused", "vpath", vp, "err", err)
	}
	return we
}

// resolve turns a client path into a virtual path below the session's
// working directory. A trailing slash says the path is a directory, as in
// POSIX: one that names something else fails with ENOTDIR ("ls file/").
func (c *conn) resolve(p string) (string, error) {
	if p == "" {
		return c.getCwd(), nil
	}
	vp, err := fsjail.Resolve(c.getCwd(), p)
	if err != nil {
		return "", &fs.PathError{Op: "resolve", Path: p, Err: err}
	}
	if strings.HasSuffix(p, "/") && vp != "/" {
		if fi, err := c.jail.Stat(vp); err == nil && !fi.IsDir() {
			return "", &fs.PathError{Op: "resolve", Path: vp, Err: syscall.ENOTDIR}
		}
	}
	return vp, nil
}

func (c *conn) withPath(p string, f func(string) error) error {
	if p == "" {
		return userError(transport.CodeInvalid, "", "missing path")
	}
	vp, err := c.resolve(p)
	if err != nil {
		return err
	}
	return f(vp)
}

// cd changes the working directory. A path made only of ".." and "."
// climbing above "/" stays at "/" (as "cd .." does in a shell at "/",
// see resolveDir); any other path that climbs out is refused.
func (c *conn) cd(p string) (string, error) {
	if p == "" {
		p = "/"
	}
	vp, err := c.resolveDir(p)
	if err != nil {
		return "", err
	}
	fi, err := c.jail.Stat(vp)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", &fs.PathError{Op: "cd", Path: vp, Err: syscall.ENOTDIR}
	}
	c.setCwd(vp)
	return vp, nil
}

// resolveDir resolves a path to a directory to cd to or list: one made
// only of ".." and "." that climbs above "/" is "/", as in a shell.
func (c *conn) resolveDir(p string) (string, error) {
	vp, err := c.resolve(p)
	if errors.Is(err, fsjail.ErrEscapes) && onlyDots(p) {
		return "/", nil
	}
	return vp, err
}

func onlyDots(p string) bool {
	for _, el := range strings.Split(p, "/") {
		if el != "" && el != "." && el != ".." {
			return false
		}
	}
	return true
}

// ls sends the listing of a directory in pages, or the single entry of a
// file.
func (c *conn) ls(w io.Writer, req *transport.Request) error {
	fail := func(err error) error {
		return transport.WriteFrame(w, &transport.Response{ID: req.ID, Err: c.report(req.Op, err)})
	}
	vp, err := c.resolveDir(req.Path)
	if err != nil {
		return fail(err)
	}
	fi, err := c.jail.Stat(vp)
	if err != nil {
		return fail(err)
	}
	if !fi.IsDir() {
		e := transport.EntryOf(path.Base(vp), fi)
		return transport.WriteFrame(w, &transport.Response{ID: req.ID, Path: vp, Entries: []transport.Entry{e}, Stat: &e})
	}
	infos, unnamable, err := c.jail.ListDir(vp)
	if err != nil {
		return fail(err)
	}
	for len(infos) > lsPage {
		page := make([]transport.Entry, lsPage)
		for i, fi := range infos[:lsPage] {
			page[i] = transport.EntryOf(fi.Name(), fi)
		}
		infos = infos[lsPage:]
		if err := transport.WriteFrame(w, &transport.Response{ID: req.ID, Path: vp, Entries: page, More: true}); err != nil {
			return err
		}
	}
	page := make([]transport.Entry, len(infos))
	for i, fi := range infos {
		page[i] = transport.EntryOf(fi.Name(), fi)
	}
	var names []string
	for _, fi := range unnamable[:min(len(unnamable), transport.MaxUnnamableNames)] {
		name := fi.Name()
		if len(name) > 255 { // a name no file system here allows; bound the reply
			name = name[:255]
		}
		names = append(names, strconv.Quote(name))
	}
	return transport.WriteFrame(w, &transport.Response{ID: req.ID, Path: vp, Entries: page, Unnamable: len(unnamable), UnnamableNames: names})
}

// remove removes a file, and any partial upload to its name, and gives
// their bytes back to the quota ledger. With no file but a partial upload,
// removing the partial is the whole job: that is how a user drops an
// upload that will not be resumed.
func (c *conn) remove(ctx context.Context, vp string) error {
	err := c.removeFile(ctx, vp)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// Not under the user lock: taking over the upload waits for it to
	// stop, and it may need that lock to finish.
	if _, perr := c.jail.PartialSize(vp); perr == nil {
		if _, unlock, aerr := c.srv.acquireUpload(ctx, c, vp, journalHeader{}, nil, true, errPartialRemoved, func() {}, nil); aerr == nil {
			mu := c.srv.userLock(c.user.Name)
			mu.Lock()
			freed, rerr := c.jail.RemovePartial(vp)
			if rerr == nil {
				c.release(ctx, freed)
			}
			mu.Unlock()
			unlock()
			if rerr == nil {
				return nil
			}
		}
	}
	return err
}

// rmdir removes an empty directory. One that looks empty may hold partial
// uploads, which the user cannot see: those no upload is running into go
// first, as an rm of their names would drop them.
func (c *conn) rmdir(ctx context.Context, vp string) error {
	err := c.jail.Rmdir(vp)
	if !errors.Is(err, syscall.ENOTEMPTY) {
		return err
	}
	infos, unnamable, lerr := c.jail.ListDir(vp)
	switch {
	case lerr != nil || len(infos) > 0:
		return err
	case len(unnamable) > 0:
		what := strconv.Itoa(len(unnamable)) + " entries"
		if len(unnamable) == 1 {
			what = "an entry"
		}
		return userError(transport.CodeNotEmpty, vp, "directory not empty: it holds "+what+" whose names qftp cannot use")
	}
	if c.srv.uploadsInto(c.user.Name, vp) {
		return userError(transport.CodeNotEmpty, vp, "directory not empty: an upload into it is running or finishing")
	}
	mu := c.srv.userLock(c.user.Name)
	mu.Lock()
	freed, lerr := c.jail.RemoveLeftovers(vp, partialIdle)
	c.release(ctx, freed)
	mu.Unlock()
	if lerr != nil {
		return err
	}
	if err = c.jail.Rmdir(vp); errors.Is(err, syscall.ENOTEMPTY) {
		// A partial that an upload holds or wrote to lately, or the
		// server's temp files (swept later).
		return userError(transport.CodeNotEmpty, vp, "directory not empty: an upload into it is running or ran in the last 10 s; try again in a moment")
	}
	return err
}

// partialIdle is how long nothing must have written to a partial upload
// before rmdir takes it for abandoned. It should be longer than a striped
// upload's gap between its last piece and its commit.
const partialIdle = 10 * time.Second

func (c *conn) removeFile(ctx context.Context, vp string) error {
	mu := c.srv.userLock(c.user.Name)
	mu.Lock()
	defer mu.Unlock()
	var n int64
	if fi, err := c.jail.Lstat(vp); err == nil && fi.Mode().IsRegular() {
		n = fi.Size()
	}
	if err := c.jail.Remove(vp); err != nil {
		return err
	}
	c.release(ctx, n)
	return nil
}

// glob answers with the virtual paths matching a pattern, in pages.
func (c *conn) glob(w io.Writer, req *transport.Request) error {
	fail := func(err error) error {
		return transport.WriteFrame(w, &transport.Response{ID: req.ID, Err: c.report(req.Op, err)})
	}
	if req.Path == "" {
		return fail(userError(transport.CodeInvalid, "", "missing pattern"))
	}
	pattern, err := c.resolve(req.Path)
	if err != nil {
		return fail(err)
	}
	// A trailing slash matches directories only, as in a shell.
	dirsOnly := strings.HasSuffix(req.Path, "/")
	matches, unnamable, err := glob(c.jail, pattern, dirsOnly)
	if err != nil {
		return fail(err)
	}
	entries := make([]transport.Entry, 0, len(matches))
	for _, vp := range matches {
		fi, err := c.jail.Stat(vp)
		if err != nil {
			if fi, err = c.jail.Lstat(vp); err != nil {
				continue
			}
		}
		if dirsOnly && !fi.IsDir() {
			continue
		}
		entries = append(entries, transport.EntryOf(vp, fi))
	}
	for len(entries) > lsPage {
		if err := transport.WriteFrame(w, &transport.Response{ID: req.ID, Entries: entries[:lsPage], More: true}); err != nil {
			return err
		}
		entries = entries[lsPage:]
	}
	return transport.WriteFrame(w, &transport.Response{ID: req.ID, Entries: entries, Unnamable: unnamable})
}

// mv renames req.Path to req.To. Like mv(1), a destination that is an
// existing directory receives the source under its own name.
func (c *conn) mv(ctx context.Context, req *transport.Request) error {
	if req.Path == "" || req.To == "" {
		return userError(transport.CodeInvalid, "", "mv needs a source and a destination")
	}
	from, err := c.resolve(req.Path)
	if err != nil {
		return err
	}
	to, err := c.resolve(req.To)
	if err != nil {
		return err
	}
	if fi, err := c.jail.Stat(to); err == nil && fi.IsDir() && from != to {
		if to, err = fsjail.Resolve(to, path.Base(from)); err != nil {
			return err
		}
	} else if strings.HasSuffix(req.To, "/") {
		// "mv file newdir/" would make a file newdir; rename(2) refuses.
		if fi, err := c.jail.Lstat(from); err == nil && !fi.IsDir() {
			return &fs.PathError{Op: "mv", Path: to, Err: syscall.ENOTDIR}
		}
	}
	switch {
	case from == "/":
		return userError(transport.CodePermission, from, "permission denied: cannot move the home directory")
	case from == to:
		return userError(transport.CodeInvalid, from, "source and destination are the same")
	case strings.HasPrefix(to, strings.TrimSuffix(from, "/")+"/"):
		what := "a directory"
		if fi, err := c.jail.Lstat(from); err == nil && !fi.IsDir() {
			what = "a file"
		}
		return userError(transport.CodeInvalid, to, "cannot move "+what+" into itself")
	}
	mu := c.srv.userLock(c.user.Name)
	mu.Lock()
	defer mu.Unlock()
	var replaced int64
	if fi, err := c.jail.Lstat(to); err == nil && fi.Mode().IsRegular() && req.Force {
		if ffi, err := c.jail.Lstat(from); err != nil || !os.SameFile(fi, ffi) {
			replaced = fi.Size()
		}
	}
	if err := c.jail.Rename(from, to, req.Force); err != nil {
		return err
	}
	c.release(ctx, replaced)
	return nil
}
