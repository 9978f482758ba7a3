package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/qftp/qftp/transport"
)

// copyBufSize is the chunk size for file data: large enough that syscalls
// and stream writes per byte stay few, small enough to stay cheap per
// concurrent transfer.
const copyBufSize = 256 << 10

// headerTimeout bounds how long a fresh transfer stream may take to send its
// header; a peer that opens streams and stays silent must not pin them.
const headerTimeout = 30 * time.Second

// serveTransfer runs one get or put stream to its end.
func (c *conn) serveTransfer(ctx context.Context, str *quic.Stream) {
	// A connection that ends mid-transfer unblocks every read and write on
	// the stream, so the handlers below need no other cancellation.
	_ = str.SetReadDeadline(time.Now().Add(headerTimeout))
	var req transport.TransferRequest
	if err := transport.ReadFrame(str, &req); err != nil {
		c.ulog.Warn("bad transfer header", "err", err)
		str.CancelRead(transport.StreamProtocol)
		str.CancelWrite(transport.StreamProtocol)
		return
	}
	_ = str.SetReadDeadline(time.Time{})
	switch req.Op {
	case transport.OpGet:
		c.serveGet(ctx, str, &req)
	case transport.OpPut:
		c.servePut(ctx, str, &req)
	default:
		c.refuse(str, "transfer", userError(transport.CodeUnsupported, "", "unknown transfer operation "+fmt.Sprintf("%q", req.Op)))
	}
}

// refuse answers a transfer with an error: a TransferReply naming the
// cause, and STOP_SENDING so that the client stops sending data.
func (c *conn) refuse(str *quic.Stream, op string, err error) {
	str.CancelRead(transport.StreamRefused)
	_ = transport.WriteFrame(str, &transport.TransferReply{Err: c.report(op, err)})
	_ = str.Close()
}

func (c *conn) serveGet(ctx context.Context, str *quic.Stream, req *transport.TransferRequest) {
	start := time.Now()
	vp, err := c.resolve(req.Path)
	if err != nil {
		c.refuse(str, "get", err)
		return
	}
	f, fi, err := c.jail.Open(vp)
	if err != nil {
		c.refuse(str, "get", err)
		return
	}
	defer f.Close()
	size := fi.Size()
	off, n := req.Offset, req.Length
	if n == -1 && off >= 0 && off <= size {
		n = size - off
	}
	if off < 0 || n < 0 || off > size || n > size-off {
		c.refuse(str, "get", userError(transport.CodeInvalid, vp, fmt.Sprintf("range %d+%d outside the file's %d bytes", req.Offset, req.Length, size)))
		return
	}
	if err := transport.WriteFrame(str, &transport.TransferReply{Size: size, Mtime: fi.ModTime().UnixNano(), Offset: off, Length: n}); err != nil {
		return
	}
	buf := make([]byte, copyBufSize)
	sent, err := io.CopyBuffer(writerOnly{str}, io.NewSectionReader(f, off, n), buf)
	if err == nil && sent < n {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		var se *quic.StreamError
		switch {
		case errors.As(err, &se) || ctx.Err() != nil:
			c.ulog.Info("get canceled", "vpath", vp, "bytes", sent)
		case errors.Is(err, io.ErrUnexpectedEOF):
			c.ulog.Warn("get: file shrank while sending", "vpath", vp, "bytes", sent)
			str.CancelWrite(transport.StreamSourceChanged)
		default:
			c.ulog.Error("get: read failed", "vpath", vp, "err", err)
			str.CancelWrite(transport.StreamIO)
		}
		return
	}
	if err := transport.WriteFrame(str, &transport.Trailer{Bytes: sent}); err != nil {
		return
	}
	_ = str.Close()
	c.awaitClientDone(str, buf)
	c.logTransfer("get", vp, sent, start)
}

// awaitClientDone holds a finished transfer open until the client has
// closed its side, which it does after reading our last frame: a server
// shutting down counts the transfer as running until then, so closing the
// connection cannot cut off data still in flight.
func (c *conn) awaitClientDone(str *quic.Stream, buf []byte) {
	_ = str.SetReadDeadline(time.Now().Add(headerTimeout))
	for range 16 {
		n, err := str.Read(buf)
		if err != nil {
			return
		}
		if n > 0 {
			c.ulog.Warn("transfer: data after the end", "bytes", n)
			str.CancelRead(transport.StreamProtocol)
			return
		}
	}
}

func (c *conn) servePut(ctx context.Context, str *quic.Stream, req *transport.TransferRequest) {
	start := time.Now()
	vp, err := c.resolve(req.Path)
	if err != nil {
		c.refuse(str, "put", err)
		return
	}
	if vp == "/" {
		c.refuse(str, "put", &fs.PathError{Op: "put", Path: vp, Err: syscall.EISDIR})
		return
	}
	if req.Size < 0 || req.Offset != 0 || req.Length != req.Size {
		// Ranged puts arrive with resume; until then a put carries a whole file.
		c.refuse(str, "put", userError(transport.CodeUnsupported, vp, "put of a partial range is not supported"))
		return
	}
	if fi, err := c.jail.Stat(vp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.refuse(str, "put", err)
		return
	} else if err == nil {
		switch {
		case fi.IsDir():
			c.refuse(str, "put", &fs.PathError{Op: "put", Path: vp, Err: syscall.EISDIR})
			return
		case !req.Force:
			c.refuse(str, "put", &fs.PathError{Op: "put", Path: vp, Err: fs.ErrExist})
			return
		}
	}
	f, tmp, err := c.jail.CreateTemp(path.Dir(vp))
	if err != nil {
		c.refuse(str, "put", err)
		return
	}
	committed := false
	defer func() {
		if !committed {
			_ = f.Close()
			if err := c.jail.RemoveTemp(tmp); err != nil {
				c.ulog.Error("put: remove temp file", "vpath", vp, "err", err)
			}
		}
	}()
	buf := make([]byte, copyBufSize)
	got, err := io.CopyBuffer(writerOnly{f}, io.LimitReader(str, req.Length), buf)
	if err == nil && got < req.Length {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		var se *quic.StreamError
		switch {
		case errors.As(err, &se) || ctx.Err() != nil:
			c.ulog.Info("put canceled", "vpath", vp, "bytes", got)
			str.CancelWrite(transport.StreamCanceled)
		case errors.Is(err, io.ErrUnexpectedEOF):
			c.refuse(str, "put", userError(transport.CodeProtocol, vp, fmt.Sprintf("stream ended after %d of %d bytes", got, req.Length)))
		default:
			// A write error on our side (disk full, I/O).
			c.refuse(str, "put", err)
		}
		return
	}
	var tr transport.Trailer
	if err := transport.ReadFrame(str, &tr); err != nil || tr.Bytes != got {
		c.refuse(str, "put", userError(transport.CodeProtocol, vp, "missing or wrong trailer"))
		return
	}
	if err := f.Sync(); err != nil {
		c.refuse(str, "put", err)
		return
	}
	if err := f.Close(); err != nil {
		c.refuse(str, "put", err)
		return
	}
	var mtime time.Time
	if req.Mtime != 0 {
		mtime = time.Unix(0, req.Mtime)
	}
	if err := c.jail.Commit(tmp, vp, req.Force, mtime); err != nil {
		c.refuse(str, "put", err)
		return
	}
	committed = true
	_ = transport.WriteFrame(str, &transport.TransferReply{Size: got, Mtime: req.Mtime, Length: got})
	_ = str.Close()
	c.awaitClientDone(str, buf)
	c.logTransfer("put", vp, got, start)
}

func (c *conn) logTransfer(op, vp string, n int64, start time.Time) {
	d := time.Since(start)
	c.ulog.Info(op, "vpath", vp, "bytes", n, "duration", d.Round(time.Millisecond))
}

// writerOnly hides ReadFrom so that io.CopyBuffer uses our buffer size
// instead of os.File's or the stream's 32 KiB fallback.
type writerOnly struct{ io.Writer }
