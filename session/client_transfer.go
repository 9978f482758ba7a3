package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/qftp/qftp/transport"
)

// TransferOptions tune one Get or Put.
type TransferOptions struct {
	// Force replaces an existing destination file.
	Force bool
	// Progress, if set, is called from the transferring goroutine with the
	// bytes done so far and the total, each time data moves.
	Progress func(done, total int64)
}

// TransferResult describes a finished transfer.
type TransferResult struct {
	Remote   string // virtual path on the server
	Local    string // local file
	Bytes    int64
	Duration time.Duration
}

// absRemote makes p absolute against the working directory without
// cleaning it: the server resolves and validates every path, so a ".."
// that climbs out is refused there rather than silently dropped here.
func (c *Client) absRemote(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	cwd := c.Cwd()
	if p == "" || p == "." {
		return cwd
	}
	if cwd == "/" {
		return "/" + p
	}
	return cwd + "/" + p
}

// openTransfer opens a stream for one transfer and ties it to ctx: when
// ctx ends, the stream is reset in both directions.
func (c *Client) openTransfer(ctx context.Context) (*quic.Stream, func() bool, error) {
	str, err := c.qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, nil, transport.Explain(err)
	}
	stop := context.AfterFunc(ctx, func() {
		str.CancelRead(transport.StreamCanceled)
		str.CancelWrite(transport.StreamCanceled)
	})
	return str, stop, nil
}

// streamErr explains a failed stream operation, preferring ctx's error when
// ctx is why it failed.
func streamErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return transport.Explain(err)
}

// Get downloads remote to local. If local is an existing directory the file
// keeps its name inside it. The file appears under its final name only when
// complete; an existing file is replaced only with opt.Force.
func (c *Client) Get(ctx context.Context, remote, local string, opt TransferOptions) (TransferResult, error) {
	start := time.Now()
	res := TransferResult{Remote: c.absRemote(remote)}
	if local == "" {
		local = path.Base(res.Remote)
	}
	if fi, err := os.Stat(local); err == nil {
		if fi.IsDir() {
			local = filepath.Join(local, path.Base(res.Remote))
		}
	}
	res.Local = local
	if !opt.Force {
		if _, err := os.Lstat(local); err == nil {
			return res, &OpError{Op: "get", Path: remote, Err: fmt.Errorf("local file %s exists (use -f to replace it)", local)}
		}
	}
	str, stop, err := c.openTransfer(ctx)
	if err != nil {
		return res, opError("get", remote, err)
	}
	defer stop()
	fail := func(err error) (TransferResult, error) {
		str.CancelRead(transport.StreamCanceled)
		str.CancelWrite(transport.StreamCanceled)
		return res, opError("get", remote, err)
	}
	if err := transport.WriteFrame(str, &transport.TransferRequest{Op: transport.OpGet, Path: res.Remote, Length: -1}); err != nil {
		return fail(streamErr(ctx, err))
	}
	var reply transport.TransferReply
	if err := transport.ReadFrame(str, &reply); err != nil {
		return fail(streamErr(ctx, err))
	}
	if reply.Err != nil {
		return fail(reply.Err)
	}
	if reply.Length < 0 || reply.Offset != 0 || reply.Length != reply.Size {
		return fail(fmt.Errorf("server sent a bad range %d+%d of %d", reply.Offset, reply.Length, reply.Size))
	}
	tmp, err := os.CreateTemp(filepath.Dir(local), "."+filepath.Base(local)+".qftp-tmp-*")
	if err != nil {
		return fail(err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	n, err := copyProgress(tmp, io.LimitReader(str, reply.Length), reply.Length, opt.Progress)
	if err == nil && n < reply.Length {
		err = fmt.Errorf("server sent %d of %d bytes", n, reply.Length)
	}
	if err != nil {
		return fail(streamErr(ctx, err))
	}
	var tr transport.Trailer
	if err := transport.ReadFrame(str, &tr); err != nil {
		return fail(streamErr(ctx, err))
	}
	if tr.Bytes != n {
		return fail(fmt.Errorf("server's trailer says %d bytes, received %d", tr.Bytes, n))
	}
	// Our FIN tells the server we have everything (see PROTOCOL.md).
	_ = str.Close()
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	mtime := time.Unix(0, reply.Mtime)
	if err := os.Chtimes(tmp.Name(), mtime, mtime); err != nil {
		return fail(err)
	}
	if err := commitLocal(tmp.Name(), local, opt.Force); err != nil {
		return fail(err)
	}
	committed = true
	res.Bytes = n
	res.Duration = time.Since(start)
	return res, nil
}

// commitLocal moves a finished temp file to its name, atomically refusing
// to replace an existing file unless force.
func commitLocal(tmp, dst string, force bool) error {
	// CreateTemp made it 0o600; a downloaded file is an ordinary file.
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	if force {
		return os.Rename(tmp, dst)
	}
	err := os.Link(tmp, dst)
	switch {
	case err == nil:
		return os.Remove(tmp)
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("local file %s exists (use -f to replace it)", dst)
	}
	// Hard links unsupported here: check, then rename.
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("local file %s exists (use -f to replace it)", dst)
	}
	return os.Rename(tmp, dst)
}

// Put uploads local to remote. remote "" or ending in "/", or naming an
// existing directory, receives the file under its own name. The server
// makes the file visible only once complete; an existing file is replaced
// only with opt.Force.
func (c *Client) Put(ctx context.Context, local, remote string, opt TransferOptions) (TransferResult, error) {
	start := time.Now()
	res := TransferResult{Local: local}
	f, err := os.Open(local)
	if err != nil {
		return res, &OpError{Op: "put", Path: local, Err: unwrapPath(err)}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return res, &OpError{Op: "put", Path: local, Err: unwrapPath(err)}
	}
	if !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return res, &OpError{Op: "put", Path: local, Err: errors.New("is a directory")}
		}
		return res, &OpError{Op: "put", Path: local, Err: errors.New("not a regular file")}
	}
	base := filepath.Base(local)
	switch {
	case remote == "":
		remote = base
	case strings.HasSuffix(remote, "/"):
		remote += base
	default:
		if e, _, err := c.Stat(ctx, remote); err == nil && e.Type == transport.TypeDir {
			remote = strings.TrimSuffix(remote, "/") + "/" + base
		}
	}
	res.Remote = c.absRemote(remote)
	size := fi.Size()

	str, stop, err := c.openTransfer(ctx)
	if err != nil {
		return res, opError("put", remote, err)
	}
	defer stop()
	// readReply fetches the server's verdict; after a refusal it explains
	// why the stream was stopped.
	readReply := func(cause error) (TransferResult, error) {
		var reply transport.TransferReply
		if err := transport.ReadFrame(str, &reply); err != nil {
			if cause == nil {
				cause = err
			}
			str.CancelRead(transport.StreamCanceled)
			return res, opError("put", remote, streamErr(ctx, cause))
		}
		if reply.Err != nil {
			return res, opError("put", remote, reply.Err)
		}
		if cause != nil {
			return res, opError("put", remote, streamErr(ctx, cause))
		}
		res.Bytes = reply.Length
		res.Duration = time.Since(start)
		return res, nil
	}
	hdr := transport.TransferRequest{Op: transport.OpPut, Path: res.Remote, Length: size, Size: size, Mtime: fi.ModTime().UnixNano(), Force: opt.Force}
	if err := transport.WriteFrame(str, &hdr); err != nil {
		return readReply(err)
	}
	n, err := copyProgress(str, io.LimitReader(f, size), size, opt.Progress)
	if err != nil {
		var se *quic.StreamError
		if errors.As(err, &se) {
			return readReply(err)
		}
		if ctx.Err() == nil {
			// A local read error.
			str.CancelWrite(transport.StreamIO)
		}
		str.CancelRead(transport.StreamCanceled)
		return res, &OpError{Op: "put", Path: local, Err: streamErr(ctx, unwrapPath(err))}
	}
	if n < size {
		str.CancelWrite(transport.StreamSourceChanged)
		str.CancelRead(transport.StreamCanceled)
		return res, &OpError{Op: "put", Path: local, Err: fmt.Errorf("file shrank while reading (%d of %d bytes)", n, size)}
	}
	if err := transport.WriteFrame(str, &transport.Trailer{Bytes: n}); err != nil {
		return readReply(err)
	}
	res, err = readReply(nil)
	// Our FIN tells the server we have its verdict (see PROTOCOL.md).
	_ = str.Close()
	return res, err
}

// unwrapPath drops the host path from an *fs.PathError; the caller names
// the file itself.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// copyProgress copies src to dst in large chunks, reporting progress.
func copyProgress(dst io.Writer, src io.Reader, total int64, progress func(done, total int64)) (int64, error) {
	buf := make([]byte, copyBufSize)
	var done int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return done, err
			}
			done += int64(n)
			if progress != nil {
				progress(done, total)
			}
		}
		if rerr == io.EOF {
			return done, nil
		}
		if rerr != nil {
			return done, rerr
		}
	}
}
