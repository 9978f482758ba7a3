package session

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/zeebo/blake3"

	"github.com/qftp/qftp/fsjail"
	"github.com/qftp/qftp/session/size"
	"github.com/qftp/qftp/session/userdb"
	"github.com/qftp/qftp/transport"
	"github.com/qftp/qftp/transport/blocks"
)

// headerTimeout bounds how long a fresh transfer stream may take to send its
// header; a peer that opens streams and stays silent must not pin them.
const headerTimeout = 30 * time.Second

// minBlockSize is the smallest block size a client may ask for.
const minBlockSize = 4 << 10

// Bounds on one file, so that no header can make the server allocate or
// loop without limit: 64 TiB, and 16 Mi blocks (a journal of 640 MiB).
const (
	maxFileSize = 1 << 46
	maxBlocks   = 1 << 24
)

// serveTransfer runs one transfer stream to its end.
func (c *conn) serveTransfer(ctx context.Context, str *quic.Stream) {
	if req, ok := c.readTransferRequest(str); ok {
		c.serveRequest(ctx, str, req)
	}
}

// readTransferRequest reads a transfer stream's header; a stream without
// one in time is reset.
func (c *conn) readTransferRequest(str *quic.Stream) (*transport.TransferRequest, bool) {
	_ = str.SetReadDeadline(time.Now().Add(headerTimeout))
	var req transport.TransferRequest
	if err := transport.ReadFrame(str, &req); err != nil {
		// A client that gives up on a stream before its header (a
		// transfer it canceled), or closes its connection meanwhile, is
		// no fault.
		var se *quic.StreamError
		var ae *quic.ApplicationError
		if errors.As(err, &se) && se.Remote || errors.As(err, &ae) && ae.Remote {
			c.ulog.Debug("transfer stream canceled before its header", "err", err)
		} else {
			c.ulog.Warn("bad transfer header", "err", err)
		}
		str.CancelRead(transport.StreamProtocol)
		str.CancelWrite(transport.StreamProtocol)
		return nil, false
	}
	_ = str.SetReadDeadline(time.Time{})
	return &req, true
}

// serveRequest serves a transfer stream whose header was read.
func (c *conn) serveRequest(ctx context.Context, str *quic.Stream, req *transport.TransferRequest) {
	// A connection that ends mid-transfer unblocks every read and write on
	// the stream, so the handlers below need no other cancellation.
	if k, ok := pieceKeyOf(c.grp, req); ok {
		defer c.srv.pieceStarted(k)()
	}
	// The user as the store has them now: a quota or rate changed since
	// login applies, and a user deleted, or whose password was changed,
	// since login is logged out.
	u, err := c.srv.Users.Get(ctx, c.user.Name)
	if why := revoked(c.user, u, err); why != "" {
		c.refuse(str, "transfer", userError(transport.CodeAuth, "", why))
		c.ulog.Warn("closing the session", "reason", why)
		_ = c.qc.CloseWithError(transport.ConnAuthFailed, why)
		return
	}
	if err != nil {
		c.refuse(str, "transfer", err)
		return
	}
	switch req.Op {
	case transport.OpGet:
		c.serveGet(ctx, str, req, u)
	case transport.OpPut:
		c.servePut(ctx, str, req, u)
	case transport.OpResume:
		c.serveResume(ctx, str, req)
	case transport.OpHash:
		c.serveHash(str, req)
	default:
		c.refuse(str, "transfer", userError(transport.CodeUnsupported, "", fmt.Sprintf("unknown transfer operation %q", req.Op)))
	}
}

// refuse answers a transfer with an error: a TransferReply naming the
// cause, and STOP_SENDING so that the client stops sending data.
func (c *conn) refuse(str *quic.Stream, op string, err error, bad ...int64) {
	str.CancelRead(transport.StreamRefused)
	_ = transport.WriteFrame(str, &transport.TransferReply{Err: c.report(op, err), Bad: bad})
	_ = str.Close()
}

// blockSize validates a requested block size for a file of the given
// size; 0 means the default for that size.
func blockSize(bs, fileSize int64) (int64, error) {
	if bs == 0 {
		return blocks.For(fileSize), nil
	}
	if bs < minBlockSize || bs > blocks.MaxSize {
		return 0, userError(transport.CodeInvalid, "", fmt.Sprintf("block size %d outside %d..%d", bs, minBlockSize, blocks.MaxSize))
	}
	return bs, nil
}

// checkRange validates a range of a file of the given size for transfer in
// blocks of bs: it starts on a block boundary and ends on one or at the end.
func checkRange(vp string, off, n, fileSize, bs int64) error {
	if off < 0 || n < 0 || off > fileSize || n > fileSize-off || off%bs != 0 || (off+n != fileSize && n%bs != 0) {
		return userError(transport.CodeInvalid, vp, fmt.Sprintf("range %d+%d is not a block-aligned range of the file's %d bytes (block size %d)", off, n, fileSize, bs))
	}
	return nil
}

func (c *conn) serveGet(ctx context.Context, str *quic.Stream, req *transport.TransferRequest, u userdb.User) {
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
	fileSize := fi.Size()
	bs, err := blockSize(req.BlockSize, fileSize)
	if err != nil {
		c.refuse(str, "get", err)
		return
	}
	off, n := req.Offset, req.Length
	if n == -1 && off >= 0 && off <= fileSize {
		n = fileSize - off
	}
	if err := checkRange(vp, off, n, fileSize, bs); err != nil {
		c.refuse(str, "get", err)
		return
	}
	release, err := c.srv.holdBuffers(u.Name, n, bs)
	if err != nil {
		c.refuse(str, "get", err)
		return
	}
	defer release()
	if err := transport.WriteFrame(str, &transport.TransferReply{Size: fileSize, Mtime: fi.ModTime().UnixNano(), Offset: off, Length: n, BlockSize: bs, Mode: wireMode(fi)}); err != nil {
		return
	}
	var opt blocks.SendOptions
	var remembered []bool // by block of the range: sent with a remembered digest
	// Digests kept from an earlier get or the put of this version of the
	// file spare hashing it again; a client whose blocks did not verify
	// asks for digests of the data as it is now (see digestCache).
	st, stamped := fsjail.StampOf(fi)
	keep := stamped && time.Since(time.Unix(0, st.Ctime)) >= c.srv.digestTrustAge()
	switch {
	case !stamped:
	case req.Rehash:
		c.srv.digests.drop(st, bs, off/bs, blocks.Count(n, bs))
	case keep:
		// (Digests a put left are trusted only from the same age.)
		if known := c.srv.digests.known(st, bs); known != nil {
			// Only digests hashed now go back into the cache: a wrong
			// one served from it must not be written back (and kept
			// fresh) after a rehash dropped it.
			remembered = make([]bool, blocks.Count(n, bs))
			opt.Known = func(idx int64) (blocks.Digest, bool) {
				d, ok := known(idx)
				remembered[idx-off/bs] = ok
				return d, ok
			}
		}
	}
	if h := c.srv.TestHookTamper; h != nil {
		opt.Tamper = func(off int64, b []byte) { h(vp, off, b) }
	}
	if lim := c.srv.userLimiter(u); lim != nil {
		pctx, stopPacing := paceCtx(ctx, str)
		defer stopPacing()
		opt.Progress = func(n int64) { pace(pctx, lim, n) }
	}
	ds, err := blocks.Send(str, io.NewSectionReader(f, off, n), off, n, bs, opt)
	release() // the buffers are free again; the rest is the trailer and the wait for the client
	if err != nil {
		var se *blocks.SourceError
		switch {
		case errors.As(err, &se) && errors.Is(err, io.ErrUnexpectedEOF):
			c.ulog.Warn("get: file shrank while sending", "vpath", vp)
			str.CancelWrite(transport.StreamSourceChanged)
		case errors.As(err, &se):
			c.ulog.Error("get: read failed", "vpath", vp, "err", err)
			str.CancelWrite(transport.StreamIO)
		default:
			c.ulog.Info("get canceled", "vpath", vp, "err", err)
		}
		return
	}
	// The digests are of what was read; a file rewritten meanwhile would
	// have been sent as a mix of versions.
	now, err := f.Stat()
	if err != nil || now.Size() != fileSize || !now.ModTime().Equal(fi.ModTime()) {
		c.ulog.Warn("get: file changed while sending", "vpath", vp)
		str.CancelWrite(transport.StreamSourceChanged)
		return
	}
	if now, ok := fsjail.StampOf(now); keep && ok && now == st {
		c.srv.digests.add(st, bs, off/bs, ds, remembered)
	}
	cs := c.qc.ConnectionStats()
	tr := transport.Trailer{Bytes: n, Sent: cs.PacketsSent, Lost: cs.PacketsLost}
	if off == 0 && n == fileSize {
		fd := blocks.FileDigest(fileSize, ds)
		tr.Digest = fd[:]
	}
	if err := transport.WriteFrame(str, &tr); err != nil {
		return
	}
	_ = str.Close()
	c.awaitClientDone(str)
	switch {
	case off == 0 && n == fileSize:
		c.logTransfer("get", vp, n, start)
	case off+n == fileSize:
		// The last piece of a striped or resumed get: one INFO line
		// per piece would drown the log, none would hide the download.
		c.ulog.Info("get range", "vpath", vp, "offset", off, "bytes", n, "size", fileSize, "duration", time.Since(start).Round(time.Millisecond))
	default:
		c.ulog.Debug("get range", "vpath", vp, "offset", off, "bytes", n, "size", fileSize, "duration", time.Since(start).Round(time.Millisecond))
	}
}

// awaitClientDone holds a finished transfer open until the client has
// closed its side, which it does after reading our last frame: a server
// shutting down counts the transfer as running until then, so closing the
// connection cannot cut off data still in flight.
func (c *conn) awaitClientDone(str *quic.Stream) {
	var buf [512]byte
	_ = str.SetReadDeadline(time.Now().Add(headerTimeout))
	for range 16 {
		n, err := str.Read(buf[:])
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

// serveHash computes the digest of a whole file, as b3sum or sha256sum do.
func (c *conn) serveHash(str *quic.Stream, req *transport.TransferRequest) {
	vp, err := c.resolve(req.Path)
	if err != nil {
		c.refuse(str, "hash", err)
		return
	}
	var h hash.Hash
	switch req.Algo {
	case "", transport.AlgoBLAKE3:
		h = blake3.New()
	case transport.AlgoSHA256:
		h = sha256.New()
	default:
		c.refuse(str, "hash", userError(transport.CodeUnsupported, vp, fmt.Sprintf("unknown hash algorithm %q", req.Algo)))
		return
	}
	f, fi, err := c.jail.Open(vp)
	if err != nil {
		c.refuse(str, "hash", err)
		return
	}
	defer f.Close()
	if _, err := io.CopyBuffer(h, f, make([]byte, 1<<20)); err != nil {
		c.refuse(str, "hash", err)
		return
	}
	_ = transport.WriteFrame(str, &transport.TransferReply{Size: fi.Size(), Mtime: fi.ModTime().UnixNano(), Digest: h.Sum(nil)})
	_ = str.Close()
}

// serveResume tells the client which blocks of a partial upload to Path
// the server holds for the same source (size, mtime and block size), after
// checking each against the data on disk. Records follow the reply: block
// index (8 bytes little endian) and digest (32 bytes).
func (c *conn) serveResume(ctx context.Context, str *quic.Stream, req *transport.TransferRequest) {
	vp, err := c.resolve(req.Path)
	if err != nil {
		c.refuse(str, "resume", err)
		return
	}
	bs, err := blockSize(req.BlockSize, req.Size)
	if err != nil {
		c.refuse(str, "resume", err)
		return
	}
	if req.Size < 0 || req.Size > maxFileSize || blocks.Count(req.Size, bs) > maxBlocks {
		c.refuse(str, "resume", userError(transport.CodeInvalid, vp, "file too large"))
		return
	}
	var kept []int64
	var j *journal
	if _, err := c.jail.PartialSize(vp); err == nil {
		_, release, err := c.srv.acquireUpload(ctx, c, vp, journalHeader{}, nil, true, nil,
			func() { str.CancelRead(transport.StreamCanceled); str.CancelWrite(transport.StreamCanceled) }, nil)
		if err != nil {
			c.refuse(str, "resume", err)
			return
		}
		defer release()
		p, err := c.jail.OpenExistingPartial(vp)
		if errors.Is(err, fs.ErrNotExist) {
			p = nil // data without a journal: a small upload, never resumed
		} else if err != nil {
			c.refuse(str, "resume", err)
			return
		}
		if p != nil {
			defer p.Close()
		}
		if p != nil {
			var ok bool
			j, ok, err = readJournal(p.Meta)
			if err != nil {
				c.refuse(str, "resume", err)
				return
			}
			if ok && j.hdr == (journalHeader{Path: vp, Size: req.Size, Mtime: req.Mtime, BS: bs}) {
				if kept, err = c.verifyJournal(j, p); err != nil {
					c.refuse(str, "resume", err)
					return
				}
			}
		}
	}
	if err := transport.WriteFrame(str, &transport.TransferReply{Size: req.Size, Mtime: req.Mtime, BlockSize: bs, Blocks: int64(len(kept))}); err != nil {
		return
	}
	rec := make([]byte, 0, 64*recordSize)
	for i, idx := range kept {
		d := j.have[idx]
		rec = binary.LittleEndian.AppendUint64(rec, uint64(idx))
		rec = append(rec, d[:]...)
		if len(rec) == cap(rec) || i == len(kept)-1 {
			if _, err := str.Write(rec); err != nil {
				return
			}
			rec = rec[:0]
		}
	}
	_ = str.Close()
}

// wireMode is the mode a transfer tells the other end for fi: its
// permission bits, with the owner's read and write, which the receiver
// adds anyway (fsjail.FileMode), so that a known mode is never 0, which
// means unknown.
func wireMode(fi fs.FileInfo) uint32 { return uint32(fi.Mode().Perm() | 0o600) }

// isQuota reports whether err is a quota refusal (quotaError).
func isQuota(err error) bool {
	var we *transport.Error
	return errors.As(err, &we) && we.Code == transport.CodeQuota
}

// errUploadInterrupted is what the other streams of an upload without
// journal hear when one stream is cut off and its partial goes.
var errUploadInterrupted = &transport.Error{Code: transport.CodeBusy, Msg: "another range of this upload was interrupted; the upload starts over"}

// quotaError says how much a put needs and how much is free.
func quotaError(vp string, need, quota, used int64) error {
	free := max(quota-used, 0)
	n, f := size.Format(need), size.Format(free)
	if n == f {
		// Rounded alike, the two would not show why: say the bytes.
		n, f = fmt.Sprintf("%d bytes", need), fmt.Sprintf("%d bytes", free)
	}
	return userError(transport.CodeQuota, vp, fmt.Sprintf("quota exceeded: need %s, %s free", n, f))
}

func (c *conn) servePut(ctx context.Context, str *quic.Stream, req *transport.TransferRequest, u userdb.User) {
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
	bs, err := blockSize(req.BlockSize, req.Size)
	if err != nil {
		c.refuse(str, "put", err)
		return
	}
	if req.Size < 0 {
		c.refuse(str, "put", userError(transport.CodeInvalid, vp, "negative size"))
		return
	}
	if req.Size > maxFileSize || blocks.Count(req.Size, bs) > maxBlocks {
		c.refuse(str, "put", userError(transport.CodeInvalid, vp, fmt.Sprintf("file too large (%d bytes in blocks of %d)", req.Size, bs)))
		return
	}
	if err := checkRange(vp, req.Offset, req.Length, req.Size, bs); err != nil {
		c.refuse(str, "put", err)
		return
	}
	if len(req.Upload) > 32 {
		c.refuse(str, "put", userError(transport.CodeInvalid, vp, "upload ID longer than 32 bytes"))
		return
	}
	if err := c.checkDest(vp, req.Force); err != nil {
		c.refuse(str, "put", err)
		return
	}
	// Reserved before the upload is taken: a put refused as busy must
	// not first have stopped the one it would take over.
	releaseBuf, err := c.srv.holdBuffers(u.Name, req.Length, bs)
	if err != nil {
		c.refuse(str, "put", err)
		return
	}
	defer releaseBuf()
	uctx, stop := context.WithCancel(ctx)
	defer stop()
	hdr := journalHeader{Path: vp, Size: req.Size, Mtime: req.Mtime, BS: bs}
	// Ranges of one file from several connections of this session share
	// one upload; anything else holding the path is taken over.
	up, release, err := c.srv.acquireUpload(ctx, c, vp, hdr, req.Upload, false, nil, func() {
		stop()
		str.CancelRead(transport.StreamCanceled)
		str.CancelWrite(transport.StreamCanceled)
	}, func() (*upload, error) { return c.openUpload(ctx, vp, hdr, req.Fresh, req.Journal) })
	if err != nil {
		c.refuse(str, "put", err)
		return
	}
	defer release()
	ctx = uctx
	// letGo ends this stream's hold on the upload early, so that the
	// ledger is settled before the client hears of a failure. Without a
	// journal there is nothing to resume: the partial goes too.
	letGo := func(why error) {
		if !up.journaled() {
			up.discard(ctx, c, why)
		}
		release()
	}

	// The rest of the file is reserved before any byte, so that a put
	// that cannot fit is refused now; then its partial goes.
	if err := up.reserveRest(ctx); err != nil {
		if isQuota(err) {
			up.discard(ctx, c, err)
		} else {
			letGo(err)
		}
		c.refuse(str, "put", err)
		return
	}

	var writeErr error
	lim := c.srv.userLimiter(u)
	pctx := ctx
	if lim != nil {
		var stopPacing func()
		pctx, stopPacing = paceCtx(ctx, str)
		defer stopPacing()
	}
	err = blocks.Receive(str, req.Offset, req.Length, bs, func(b blocks.Block) error {
		if lim != nil {
			if h := c.srv.testHookPace; h != nil {
				h(vp, b.Offset)
			}
			pace(pctx, lim, int64(len(b.Data)))
		}
		if !b.OK {
			return nil // not stored; the client sends it again
		}
		if writeErr = up.write(ctx, b); writeErr != nil {
			return writeErr
		}
		return nil
	})
	releaseBuf()
	var mismatch *blocks.MismatchError
	switch {
	case err == nil, errors.As(err, &mismatch):
	case writeErr != nil && isQuota(writeErr):
		// Stopped at a write that would pass the quota (the reservation
		// failed, or another stream's did): the partial goes, and its
		// bytes with it.
		up.discard(ctx, c, writeErr)
		c.refuse(str, "put", writeErr)
		return
	case writeErr != nil:
		letGo(writeErr) // a df right after the error counts only what is on disk
		c.refuse(str, "put", writeErr)
		return
	default:
		var se *quic.StreamError
		if errors.As(err, &se) || ctx.Err() != nil {
			// The partial stays for the client to resume, if it has a
			// journal. Let go before our reset, which tells the client
			// we are done with the upload.
			up.mu.Lock()
			written := up.written
			up.mu.Unlock()
			letGo(errUploadInterrupted)
			if len(req.Upload) > 0 {
				// A piece of a striped upload: the client stops a piece's
				// second copy, or a stalled one, as a matter of course.
				c.ulog.Debug("put piece interrupted", "vpath", vp, "offset", req.Offset, "bytes", written)
			} else {
				c.ulog.Info("put interrupted", "vpath", vp, "bytes", written)
			}
			str.CancelWrite(transport.StreamCanceled)
			return
		}
		c.refuse(str, "put", userError(transport.CodeProtocol, vp, "stream ended before the data did"))
		return
	}
	var tr transport.Trailer
	if err := transport.ReadFrame(str, &tr); err != nil || tr.Bytes != req.Length {
		c.refuse(str, "put", userError(transport.CodeProtocol, vp, "missing or wrong trailer"))
		return
	}
	if mismatch != nil {
		// The client needs the first offset; it learns the rest from a
		// resume query. A bounded list keeps the reply within a frame.
		bad := mismatch.Blocks[:min(len(mismatch.Blocks), 1000)]
		c.refuse(str, "put", userError(transport.CodeIntegrity, vp, fmt.Sprintf("data corrupted in transit at offset %d (%d bad blocks kept out; send them again)", mismatch.Offset, len(mismatch.Blocks))), bad...)
		return
	}
	reply := transport.TransferReply{Size: req.Size, Mtime: req.Mtime, Offset: req.Offset, Length: req.Length, BlockSize: bs}
	var replaced io.Closer // a file the commit replaced, freed after the reply
	if req.Commit {
		if n := c.srv.uploadStreams(ctx, c.user.Name, vp, 10*time.Second); n > 1 {
			c.refuse(str, "put", userError(transport.CodeBusy, vp, fmt.Sprintf("commit while %d other streams still send ranges", n-1)))
			return
		}
		var fd blocks.Digest
		fd, replaced, err = up.commit(ctx, c, tr.Digest, req.Force, req.Mtime, fsjail.UploadMode(req.Mode))
		// A commit that published or discarded the upload retires it:
		// the next put to the path starts anew. One that failed with
		// the partial kept (and its files open and locked) leaves it
		// to its holders, so that the next stream joins or waits.
		switch {
		case err == nil:
			c.srv.retireUpload(c.user.Name, vp, up, req.Upload)
		case up.isClosed():
			c.srv.retireUpload(c.user.Name, vp, up, nil)
		}
		if err != nil {
			c.refuse(str, "put", err)
			return
		}
		reply.Digest = fd[:]
	}
	_ = transport.WriteFrame(str, &reply)
	_ = str.Close()
	// This stream is done with the upload: a commit from another
	// connection must not wait for our client's FIN.
	release()
	if replaced != nil {
		_ = replaced.Close()
	}
	c.awaitClientDone(str)
	if req.Commit {
		// From its first piece: a striped upload commits on a stream
		// of its own, after its pieces.
		if k, ok := pieceKeyOf(c.grp, req); ok {
			start = c.srv.pieceSince(k, start)
		}
		c.logTransfer("put", vp, req.Size, start)
	}
}

// paceCtx returns the context to pace a transfer on str with: it ends
// with ctx, and as soon as str's send side is closed or stopped, which a
// client that gives up on the transfer does (an endgame copy that lost, a
// canceled get): such a transfer then stops waiting in the rate limiter
// at once, instead of holding its buffers, and a put its upload, for up
// to a block's time at the user's rate.
func paceCtx(ctx context.Context, str *quic.Stream) (context.Context, func()) {
	pctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(str.Context(), cancel)
	return pctx, func() { stop(); cancel() }
}

// checkDest refuses a put whose destination is a directory, or an existing
// file without force.
func (c *conn) checkDest(vp string, force bool) error {
	fi, err := c.jail.Stat(vp)
	switch {
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return err
	case err != nil:
		return nil
	case fi.IsDir():
		return &fs.PathError{Op: "put", Path: vp, Err: syscall.EISDIR}
	case !force:
		return &fs.PathError{Op: "put", Path: vp, Err: fs.ErrExist}
	}
	return nil
}

func (c *conn) logTransfer(op, vp string, n int64, start time.Time) {
	d := time.Since(start)
	c.ulog.Info(op, "vpath", vp, "bytes", n, "duration", d.Round(time.Millisecond))
}
