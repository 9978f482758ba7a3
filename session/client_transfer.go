package session

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/quic-go/quic-go"
	"github.com/zeebo/blake3"

	"github.com/qftp/qftp/fsjail"
	"github.com/qftp/qftp/session/size"
	"github.com/qftp/qftp/transport"
	"github.com/qftp/qftp/transport/blocks"
)

// Resume says when a transfer continues from a partial copy.
type Resume int

const (
	// ResumeAuto resumes when that is safe: the partial belongs to the same
	// source file (size and modification time). Uploads smaller than
	// resumeMin are sent whole without asking.
	ResumeAuto Resume = iota
	// ResumeAlways asks for a partial copy whatever the size (-c).
	ResumeAlways
	// ResumeNever discards any partial copy and starts over.
	ResumeNever
)

// resumeMin is the size below which an upload does not ask the server for
// a partial copy: sending such a file whole costs about as much as asking.
const resumeMin = 4 << 20

// preallocMin is the size from which a transfer preallocates its file's
// disk space (fsjail.Preallocate); below it the extra call costs more
// than it saves.
const preallocMin = 1 << 20

// TransferOptions tune one Get or Put.
type TransferOptions struct {
	// Force replaces an existing destination file.
	Force bool
	// Resume says whether to continue from a partial copy.
	Resume Resume
	// Progress, if set, is called with the bytes done so far and the
	// total: once before any data moves (a resumed transfer starts at what
	// it kept), then each time data moves. A striped transfer calls it from
	// several goroutines at once, and reports may arrive out of order.
	Progress func(done, total int64)
	// Notify, if set, receives messages for the user such as "resuming at
	// 1.2 GiB".
	Notify func(msg string)
	// BlockSize is the block size to use; zero means blocks.For the
	// file's size.
	BlockSize int64
	// Connections is how many QUIC connections of the session a large
	// file's ranges are spread over (the login's and ones that join it);
	// 0 or 1 means one; ConnectionsAuto starts with one and adds more
	// while that pays, up to MaxConnections. On a lossy link each
	// connection's congestion window suffers alone, so several carry more.
	Connections int
	// MaxConnections caps ConnectionsAuto; zero means 128.
	MaxConnections int
	// Width, if set, is told how many connections a striped transfer uses
	// whenever that changes.
	Width func(int)
	// TestHookTamper, if set, may change each block after it was hashed
	// (put only): tests use it to corrupt data on purpose.
	TestHookTamper func(off int64, b []byte)
	// Limiter, if set, caps the rate of file data; share one among
	// transfers to cap their sum (golang.org/x/time/rate.Limiter fits).
	Limiter Limiter

	via *link // the connection to try first (RunPlan spreads files)
	// listedSmall says the remote file was too small to stripe when
	// RunPlan listed it, so a get asks for it whole without a stat first:
	// that round trip on the control stream, which runs one request at a
	// time, made a tree of small files slower to get than to put.
	listedSmall bool
	// rehash asks the server for digests of the data as it reads it now,
	// not ones it remembers: set on every try after the first, since a
	// block that did not verify may have been sent a stale digest.
	rehash bool
}

// Limiter paces data: WaitN blocks until n bytes may pass.
type Limiter interface {
	WaitN(ctx context.Context, n int) error
	Burst() int
}

// pace waits until n bytes may pass lim, in pieces no larger than its burst.
func pace(ctx context.Context, lim Limiter, n int64) {
	if lim == nil {
		return
	}
	b := int64(max(lim.Burst(), 1))
	for n > 0 {
		k := min(n, b)
		if lim.WaitN(ctx, int(k)) != nil {
			// rate.Limiter refuses at once a wait that would pass ctx's
			// deadline; the data must not pass early for that.
			<-ctx.Done()
			return
		}
		n -= k
	}
}

func (o *TransferOptions) notify(format string, args ...any) {
	if o.Notify != nil {
		o.Notify(fmt.Sprintf(format, args...))
	}
}

func (o *TransferOptions) blockSize(fileSize int64) int64 {
	if o.BlockSize > 0 {
		return o.BlockSize
	}
	return blocks.For(fileSize)
}

// TransferResult describes a finished transfer.
type TransferResult struct {
	Remote   string // virtual path on the server
	Local    string // local file
	Bytes    int64  // size of the file
	Sent     int64  // file bytes that crossed the network, over all attempts
	Resumed  int64  // bytes kept from a partial copy made before this call
	Attempts int    // tries, counting the first
	LastKept int64  // bytes the final attempt found already transferred
	LastSent int64  // bytes the final attempt sent
	Links    int    // most connections the transfer used at once
	// Same says the destination already held this very file (same size,
	// modification time and BLAKE3 digest), so nothing was copied: a
	// transfer run again after it finished succeeds without -f.
	Same     bool
	Digest   blocks.Digest
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
func (l *link) openTransfer(ctx context.Context) (*quic.Stream, func() bool, error) {
	str, err := l.qc.OpenStreamSync(ctx)
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

// retry runs one attempt of a transfer until it succeeds, fails for good,
// or the retry policy is spent. A dropped connection is replaced first;
// data that did not verify is sent again (only the bad blocks, as the
// partial copy keeps the good ones).
func (c *Client) retry(ctx context.Context, res *TransferResult, opt *TransferOptions, attempt func(l *link) error) error {
	var via *link
	if opt != nil {
		via = opt.via
	}
	var err error
	for res.Attempts < max(c.policy.Attempts, 1) {
		res.Attempts++
		l := c.link()
		if via != nil && via.alive() && res.Attempts == 1 {
			l = via // a batch spreads its files over the session's connections
		} else if !l.alive() {
			if err := c.relink(ctx, l, err, opt); err != nil {
				return err
			}
			l = c.link()
		}
		err = attempt(l)
		if err == nil || ctx.Err() != nil {
			return err
		}
		var we *transport.Error
		switch {
		case errors.As(err, &we) && we.Code == transport.CodeIntegrity,
			errors.Is(err, blocks.ErrMismatch):
			c.log.Info("data did not verify; sending the bad blocks again", "err", err)
		case !l.alive():
			c.log.Info("connection lost during transfer; reconnecting", "err", err)
		case errors.As(err, &we) && we.Code == transport.CodeBusy:
			// Often our own earlier try, which the server has not yet seen
			// die; a truly concurrent upload keeps it busy to the end.
			c.log.Info("upload busy; waiting", "err", err)
			select {
			case <-time.After(c.policy.Backoff << min(res.Attempts, 5)):
			case <-ctx.Done():
				return ctx.Err()
			}
		case errors.As(err, &we) && we.Code == transport.CodeShutdown:
			// Other transfers may still be finishing on this connection:
			// wait for the server to close it, then reconnect.
			c.log.Info("server shutting down; will reconnect", "err", err)
			select {
			case <-l.qc.Context().Done():
			case <-l.done:
			case <-time.After(c.policy.MaxTime):
			case <-ctx.Done():
				return ctx.Err()
			}
		default:
			return err
		}
	}
	// Out of tries as the connection went down: reconnect all the same, so
	// that the next file of a batch finds a connection or, with the server
	// gone, the batch stops now.
	if l := c.link(); err != nil && ctx.Err() == nil && c.policy.Attempts > 1 && !l.alive() {
		if err := c.relink(ctx, l, err, nil); err != nil { // nil: no "going on" for a file that failed
			return err
		}
	}
	return err
}

// relink replaces the dead link l of a transfer whose last try failed with
// err (nil before the first try). It returns the error the transfer fails
// with if that does not work.
func (c *Client) relink(ctx context.Context, l *link, err error, opt *TransferOptions) error {
	took, rerr := c.reconnect(ctx, l)
	if rerr != nil {
		var lost *ConnLostError
		if errors.As(rerr, &lost) && err != nil {
			// Both: why the connection went, and that it is not coming
			// back.
			lost.Cause = err
		}
		if err == nil || lost != nil {
			return rerr
		}
		return err
	}
	if took > 0 && opt != nil {
		// Once per reconnection, not once per file of a batch.
		opt.notify("connection lost; reconnected after %s, going on", took.Round(100*time.Millisecond))
	}
	return nil
}

// Get downloads remote to local. If local is an existing directory the file
// keeps its name inside it. Data arrives in LOCAL.qftp-part with a journal
// LOCAL.qftp-part.meta (for a file under resumeMin only with ResumeAlways),
// so that an interrupted download resumes with the blocks it has, if the
// remote file is unchanged; the file appears under
// its final name only when complete and verified. An existing file is
// replaced only with opt.Force.
func (c *Client) Get(ctx context.Context, remote, local string, opt TransferOptions) (TransferResult, error) {
	start := time.Now()
	res := TransferResult{Remote: c.absRemote(remote)}
	if local == "" {
		local = path.Base(res.Remote)
	}
	if fi, err := os.Stat(local); err == nil && fi.IsDir() {
		local = filepath.Join(local, path.Base(res.Remote))
	} else if strings.HasSuffix(local, "/") || strings.HasSuffix(local, string(filepath.Separator)) {
		// A trailing slash names a directory, as for cp(1).
		if err == nil {
			err = errors.New("not a directory")
		}
		return res, &OpError{Op: "get", Path: remote, Err: fmt.Errorf("local directory %s: %w", local, unwrapPath(err))}
	}
	res.Local = local
	if fi, err := os.Lstat(local); err == nil && fi.IsDir() {
		// (A directory named as the file: remote a, local dir/ holding a/.)
		return res, &OpError{Op: "get", Path: remote, Err: fmt.Errorf("local %s is a directory", local)}
	}
	if !opt.Force {
		if _, err := os.Lstat(local); err == nil {
			// The remote file first: a missing one is the news.
			e, _, err := c.Stat(ctx, remote)
			if err != nil {
				return res, relabel("get", err)
			}
			same, err := c.sameAsRemote(ctx, local, &res, opt, &e)
			switch {
			case err != nil:
				return res, &OpError{Op: "get", Path: remote, Err: err}
			case same:
				res.Duration = time.Since(start)
				return res, nil
			}
			return res, &OpError{Op: "get", Path: remote, Err: fmt.Errorf("local file %s exists (use -f to replace it)", local)}
		}
	}
	first := true
	var made partialMade // the LOCAL.qftp-part this get created
	err := c.retry(ctx, &res, &opt, func(l *link) error {
		err := c.getOnce(ctx, l, local, opt, &res, first, &made)
		first = false
		return err
	})
	if err != nil {
		if made.fi != nil {
			dropUnresumable(local, &made)
		}
		return res, opError("get", remote, err)
	}
	res.Links = max(res.Links, 1)
	res.Duration = time.Since(start)
	return res, nil
}

// partialNames returns the names of the partial download of local and of
// its journal: LOCAL.qftp-part and LOCAL.qftp-part.meta, or for a name too
// long to take the suffix within 255 bytes (the limit of most file
// systems), the name cut short and marked with a hash of all of it, so
// that long names that begin alike never share a partial.
func partialNames(local string) (data, meta string) {
	const suffix, metaSuffix = ".qftp-part", ".meta"
	dir, base := filepath.Split(local)
	if room := 255 - len(suffix) - len(metaSuffix); len(base) > room {
		sum := sha256.Sum256([]byte(base))
		mark := "~" + hex.EncodeToString(sum[:8])
		cut := room - len(mark)
		for cut > 0 && !utf8.RuneStart(base[cut]) {
			cut-- // whole characters only
		}
		base = base[:cut] + mark
	}
	data = dir + base + suffix
	return data, data + metaSuffix
}

// dropUnresumable removes the partial download of local that the failed
// get made (and nothing put at its name since), if it has no journal (a small file, which the next get
// fetches whole) and no other download holds it: a failed get leaves
// nothing it could not resume.
func dropUnresumable(local string, made *partialMade) {
	_, meta := partialNames(local)
	if _, err := os.Lstat(meta); err == nil {
		return // a journal: resumable
	}
	p, err := openLocalPartial(local, false, false, made)
	if err != nil {
		return // none, or another download's
	}
	p.remove()
}

// localPartial is a download in progress.
type localPartial struct {
	local      string
	made       *partialMade // the get's (see openLocalPartial)
	data, meta *os.File     // nil until the first reply
	// unnamed says data has no name (fsjail.CreateUnnamed): a download
	// without journal, which a retry fetches whole anyway, leaves nothing
	// behind if qftp dies, and no name of the user's is in its way.
	unnamed bool
	mu      sync.Mutex
	j       *journal
	mode    uint32         // the remote file's permission bits, as a reply or stat said (0: not known)
	done    int64          // bytes held, for progress
	writing map[int64]bool // blocks a stream is storing now
}

// start creates the partial download's files (if need be) and its journal
// for the source hdr. Without journal (a small file, which a retry fetches
// again whole) the journal stays in memory: one file fewer to create and
// remove per file of a tree.
func (p *localPartial) start(hdr journalHeader, journal bool) error {
	if hdr.Size > maxFileSize || blocks.Count(hdr.Size, hdr.BS) > maxBlocks {
		return fmt.Errorf("server announces a file of %d bytes", hdr.Size)
	}
	if !journal && p.meta != nil {
		// A journal file left by an earlier try: not wanted now.
		_ = p.meta.Close()
		_ = os.Remove(p.meta.Name())
		p.meta = nil
	}
	if p.data == nil && !journal {
		f, err := fsjail.CreateUnnamed(filepath.Dir(p.local), 0o600)
		switch {
		case err == nil:
			p.data, p.unnamed = f, true
			// A journal of ours without its data file is an earlier
			// try's leftover.
			data, meta := partialNames(p.local)
			if _, err := os.Lstat(data); errors.Is(err, fs.ErrNotExist) && journalRecorded(meta) {
				_ = os.Remove(meta)
			}
		case !errors.Is(err, errors.ErrUnsupported):
			return localErr(p.local, err)
		}
	}
	if p.data == nil {
		np, err := openLocalPartial(p.local, true, journal, p.made)
		if err != nil {
			return localErr(p.local, err)
		}
		p.data, p.meta = np.data, np.meta
	}
	j, err := resetJournal(p.meta, hdr)
	if err != nil {
		return err
	}
	if err := p.data.Truncate(0); err != nil {
		return err
	}
	if err := p.reserveDisk(hdr.Size); err != nil {
		p.remove() // nothing is kept yet
		return err
	}
	p.mu.Lock()
	p.j, p.done = j, 0
	p.mu.Unlock()
	return nil
}

// reserveDisk preallocates the download's disk space, so that a full disk
// shows before the data moves rather than after; blocks already written
// keep their place.
func (p *localPartial) reserveDisk(n int64) error {
	if n < preallocMin {
		return nil
	}
	if err := fsjail.Preallocate(p.data, 0, n); err != nil {
		return fmt.Errorf("no room for %s at %s: %w", size.Format(n), p.local, err)
	}
	return nil
}

// remove deletes the partial's files, while still holding their lock so
// that no other download takes them first, and closes them.
func (p *localPartial) remove() {
	if !p.unnamed {
		_ = os.Remove(p.data.Name())
	}
	if p.meta != nil {
		_ = os.Remove(p.meta.Name())
	}
	p.close()
	p.data, p.meta = nil, nil
}

func (p *localPartial) close() {
	if p.data != nil {
		_ = p.data.Close()
	}
	if p.meta != nil {
		_ = p.meta.Close()
	}
}

// dropJournal empties the partial's journal file (if it has one), so that
// the next try starts over. The journal records no more blocks in the
// file: the other ranges of a striped download may still store theirs, and
// records with no header before them would make the file unreadable, no
// longer a partial download of ours but a file in the way.
func (p *localPartial) dropJournal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.j != nil {
		p.j.f = nil
	}
	if p.meta != nil {
		_ = p.meta.Truncate(0)
	}
}

// openLocalPartial opens the partial download for local (creating its
// files only if create) and locks it, so that two downloads never write
// one file. Without create, missing files are an fs.ErrNotExist error.
// Without journal, no journal file is opened (a stale one is removed).
//
// LOCAL.qftp-part may be a file of the user's: one that exists is taken
// only if it is the one this transfer made (made, which a creation
// records) or its journal reads as one of ours (see journalOurs); else the
// error says it is in the way. The same holds for a journal file.
func openLocalPartial(local string, create, journal bool, made *partialMade) (*localPartial, error) {
	dataName, metaName := partialNames(local)
	fresh := false // created here
	data, err := os.OpenFile(dataName, os.O_RDWR, 0)
	switch {
	case err == nil:
	case create && errors.Is(err, fs.ErrNotExist):
		if data, err = os.OpenFile(dataName, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return nil, err
		}
		fresh = true
		if made != nil {
			made.fi, _ = data.Stat()
		}
	default:
		return nil, err
	}
	// The lock first: a download running is not a file in the way.
	if err := fsjail.TryLock(data); err != nil {
		_ = data.Close()
		if errors.Is(err, fsjail.ErrBusy) {
			return nil, fmt.Errorf("another download to %s is running", local)
		}
		return nil, err
	}
	if !fresh && !made.is(data) && !journalOurs(metaName) {
		_ = data.Close()
		return nil, inTheWay(dataName)
	}
	if !journal {
		if journalOurs(metaName) {
			_ = os.Remove(metaName)
		}
		return &localPartial{data: data}, nil
	}
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	if _, err := os.Lstat(metaName); err == nil && !journalOurs(metaName) {
		_ = data.Close()
		if fresh {
			_ = os.Remove(dataName)
		}
		return nil, inTheWay(metaName)
	}
	meta, err := os.OpenFile(metaName, flags, 0o600)
	if err != nil {
		_ = data.Close()
		return nil, err
	}
	return &localPartial{data: data, meta: meta}, nil
}

// partialMade identifies the partial download file a get created, so
// that a file put at its name since is never taken for it.
type partialMade struct{ fi fs.FileInfo }

// is reports whether f is the file m recorded.
func (m *partialMade) is(f *os.File) bool {
	if m == nil || m.fi == nil {
		return false
	}
	st, err := f.Stat()
	return err == nil && os.SameFile(m.fi, st)
}

// inTheWay is the error for a file of the user's where a partial download
// would go.
func inTheWay(name string) error { return &inTheWayError{name} }

type inTheWayError struct{ name string }

func (e *inTheWayError) Error() string {
	return fmt.Sprintf("local file %s is in the way: it is not a partial download that qftp can resume (move or remove it)", e.name)
}

// journalRecorded reports whether name is a journal of a partial download
// with its header written (not an empty file, which may be anyone's).
func journalRecorded(name string) bool { return readsAsJournal(name, false) }

// journalOurs reports whether name is a journal of a partial download:
// a regular file that reads as one, or an empty one (a journal is empty
// between its reset and its header).
func journalOurs(name string) bool { return readsAsJournal(name, true) }

func readsAsJournal(name string, emptyToo bool) bool {
	// Lstat first: opening a FIFO would block.
	if fi, err := os.Lstat(name); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	f, err := os.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return false
	} else if fi.Size() == 0 {
		return emptyToo
	}
	_, ok, _ := readJournal(f)
	return ok
}

func (c *Client) getOnce(ctx context.Context, l *link, local string, opt TransferOptions, res *TransferResult, first bool, made *partialMade) error {
	opt.rehash = !first
	// Files of a partial download appear only once the server has
	// answered: a get of a missing file leaves nothing behind.
	p, err := openLocalPartial(local, false, true, made)
	var itw *inTheWayError
	if errors.Is(err, fs.ErrNotExist) || errors.As(err, &itw) || errors.Is(err, syscall.ENAMETOOLONG) {
		// Nothing to resume. A file in the way, or a name too long for
		// a partial, matters only if this download needs the name (see
		// localPartial.start).
		p, err = &localPartial{}, nil
	}
	if err != nil {
		return localErr(local, err)
	}
	defer p.close()
	p.local, p.made = local, made

	// A journal from an earlier try: resume if the remote file is the same.
	var kept []int64
	if p.data != nil && (opt.Resume != ResumeNever || !first) {
		if j, ok, _ := readJournal(p.meta); ok && len(j.have) > 0 {
			e, _, err := c.Stat(ctx, res.Remote)
			if err != nil {
				return err
			}
			if j.hdr.Path == res.Remote && j.hdr.Size == e.Size && j.hdr.Mtime == e.Mtime && (opt.BlockSize == 0 || j.hdr.BS == opt.BlockSize) {
				p.mode = e.Mode // nothing may be left to get
				if kept, err = j.verify(p.data); err != nil {
					return err
				}
				if err := p.reserveDisk(j.hdr.Size); err != nil {
					return err
				}
				p.j = j
			} else {
				opt.notify("get %s: the remote file changed since the partial download; starting over", res.Remote)
			}
		}
	}
	res.LastKept, res.LastSent = 0, 0
	if p.j != nil {
		had := min(int64(len(kept))*p.j.hdr.BS, p.j.hdr.Size)
		res.LastKept = had
		if first {
			res.Resumed = had
			if had > 0 {
				opt.notify("get %s: resuming at %s", res.Remote, size.Format(had))
			}
		}
	}

	if p.j == nil && !opt.listedSmall && (opt.Connections > 1 || opt.Connections == ConnectionsAuto) {
		// To spread a download over connections, learn its size first.
		if e, _, err := c.Stat(ctx, res.Remote); err == nil && e.Type == transport.TypeFile && e.Size >= stripeMin {
			p.mode = e.Mode
			if err := p.start(journalHeader{Path: res.Remote, Size: e.Size, Mtime: e.Mtime, BS: opt.blockSize(e.Size)}, true); err != nil {
				return err
			}
		}
	}
	// Without a journal the file comes whole, in blocks of the size
	// asked for or (0) the server's default for it.
	ranges, bs := [][2]int64{{0, -1}}, opt.BlockSize
	if p.j != nil {
		bs = p.j.hdr.BS
		ranges = missingRanges(p.j, bs)
		p.done = min(int64(len(p.j.have))*bs, p.j.hdr.Size)
		var missing int64
		for _, r := range ranges {
			missing += r[1]
		}
		if links := c.stripeLinks(ctx, l, opt, res, missing); len(links) > 1 || c.autoStripe(opt, missing) {
			// A second copy of a piece fetches only the blocks that
			// the first has not stored yet (a range arrives in order).
			left := func(off, n int64) (int64, int64) {
				p.mu.Lock()
				defer p.mu.Unlock()
				end := off + n
				for off < end {
					if _, ok := p.j.have[off/bs]; !ok {
						break
					}
					off += bs
				}
				return off, max(end-off, 0)
			}
			err := c.stripe(ctx, links, ranges, bs, c.autoFor(opt, res, &p.mu, true), left, func(ctx context.Context, l *link, off, n int64) error {
				_, err := c.getRange(ctx, l, p, res, opt, off, n, bs)
				return err
			})
			if err != nil {
				return err
			}
			ranges = nil
		}
	}
	var wholeDigest []byte
	for _, r := range ranges {
		d, err := c.getRange(ctx, l, p, res, opt, r[0], r[1], bs)
		if err != nil {
			return err
		}
		if r[0] == 0 && r[1] == -1 {
			wholeDigest = d
		}
	}
	ds, err := p.j.complete()
	if err != nil {
		return err
	}
	fd := blocks.FileDigest(p.j.hdr.Size, ds)
	if wholeDigest != nil && !bytes.Equal(wholeDigest, fd[:]) {
		p.dropJournal()
		return &transport.Error{Code: transport.CodeIntegrity, Msg: "file digest does not match the server's"}
	}
	if err := p.data.Truncate(p.j.hdr.Size); err != nil {
		return err
	}
	if p.unnamed {
		err := publishUnnamed(p.data, local, time.Unix(0, p.j.hdr.Mtime), opt.Force, fsjail.FileMode(p.mode))
		if errors.Is(err, errLocalExists) {
			// Another get of the same file may have won the race.
			if !localMatches(local, p.j.hdr.Size, p.j.hdr.Mtime, p.j.hdr.BS, fd) {
				return fmt.Errorf("local file %s exists (use -f to replace it)", local)
			}
			err = nil
		}
		if err != nil {
			return err
		}
		res.Bytes, res.Digest = p.j.hdr.Size, fd
		return nil
	}
	held, err := p.data.Stat()
	if err != nil {
		return err
	}
	if err := p.data.Close(); err != nil {
		return err
	}
	// The partial is published by name: make sure the name is still it
	// (another program, or another get of a tree that holds a file named
	// like it, may have put something else there).
	if now, err := os.Lstat(p.data.Name()); err != nil || !os.SameFile(held, now) {
		// Our journal goes too, so that no later get takes the file
		// that replaced the partial for a partial of ours.
		if p.meta != nil {
			if st, err := p.meta.Stat(); err == nil {
				if cur, err := os.Lstat(p.meta.Name()); err == nil && os.SameFile(st, cur) {
					_ = os.Remove(p.meta.Name())
				}
			}
		}
		return fmt.Errorf("local file %s was replaced while the download ran; not publishing it", p.data.Name())
	}
	mtime := time.Unix(0, p.j.hdr.Mtime)
	if err := os.Chtimes(p.data.Name(), mtime, mtime); err != nil {
		return err
	}
	if err := commitLocal(p.data.Name(), local, opt.Force, fsjail.FileMode(p.mode)); err != nil {
		return err
	}
	if p.meta != nil {
		_ = os.Remove(p.meta.Name())
	}
	res.Bytes, res.Digest = p.j.hdr.Size, fd
	return nil
}

// missingRanges returns the block-aligned ranges of the file that j lacks.
func missingRanges(j *journal, bs int64) [][2]int64 {
	var out [][2]int64
	n := blocks.Count(j.hdr.Size, bs)
	for i := int64(0); i < n; {
		if _, ok := j.have[i]; ok {
			i++
			continue
		}
		k := i
		for k < n {
			if _, ok := j.have[k]; ok {
				break
			}
			k++
		}
		out = append(out, [2]int64{i * bs, min(k*bs, j.hdr.Size) - i*bs})
		i = k
	}
	return out
}

// getRange fetches one range into the partial download. length -1 means
// the whole file, whose size the reply tells (and which starts the
// journal). It returns the server's file digest for a whole-file get.
func (c *Client) getRange(ctx context.Context, l *link, p *localPartial, res *TransferResult, opt TransferOptions, off, length, bs int64) ([]byte, error) {
	str, stop, err := l.openTransfer(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()
	fail := func(err error) ([]byte, error) {
		str.CancelRead(transport.StreamCanceled)
		str.CancelWrite(transport.StreamCanceled)
		return nil, err
	}
	if err := transport.WriteFrame(str, &transport.TransferRequest{Op: transport.OpGet, Path: res.Remote, Offset: off, Length: length, BlockSize: bs, Rehash: opt.rehash}); err != nil {
		return fail(streamErr(ctx, err))
	}
	var reply transport.TransferReply
	if err := transport.ReadFrame(str, &reply); err != nil {
		return fail(streamErr(ctx, err))
	}
	if reply.Err != nil {
		return fail(reply.Err)
	}
	if bs == 0 && reply.BlockSize >= minBlockSize && reply.BlockSize <= blocks.MaxSize {
		bs = reply.BlockSize // the server's choice
	}
	if reply.BlockSize != bs || reply.Offset != off || reply.Length < 0 || (length >= 0 && reply.Length != length) {
		return fail(fmt.Errorf("server sent a range %d+%d (block size %d), not the one asked for", reply.Offset, reply.Length, reply.BlockSize))
	}
	hdr := journalHeader{Path: res.Remote, Size: reply.Size, Mtime: reply.Mtime, BS: bs}
	p.mu.Lock()
	j := p.j
	if reply.Mode != 0 {
		p.mode = reply.Mode
	}
	p.mu.Unlock()
	if j == nil {
		if err := p.start(hdr, hdr.Size >= resumeMin || opt.Resume == ResumeAlways); err != nil {
			return fail(err)
		}
	} else if j.hdr != hdr {
		// Changed between our stat and this get: start over next time.
		p.dropJournal()
		return fail(&transport.Error{Code: transport.CodeIntegrity, Msg: "the remote file changed during the download"})
	}
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if opt.Progress != nil {
		opt.Progress(done, reply.Size) // the starting point, before any data
	}
	err = blocks.Receive(str, off, reply.Length, bs, func(b blocks.Block) error {
		n := int64(len(b.Data))
		pace(ctx, opt.Limiter, n)
		p.mu.Lock()
		res.Sent += n
		res.LastSent += n
		// Two copies of a striped piece may both bring a block: the
		// first to claim it stores it, so that a block once journaled
		// is never overwritten (by a copy that read a changed file).
		_, had := p.j.have[b.Index]
		claimed := b.OK && !had && !p.writing[b.Index]
		if claimed {
			if p.writing == nil {
				p.writing = make(map[int64]bool)
			}
			p.writing[b.Index] = true
		}
		p.mu.Unlock()
		if !claimed {
			return nil
		}
		// Ranges of a striped download write at their own offsets.
		_, werr := p.data.WriteAt(b.Data, b.Offset)
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.writing, b.Index)
		if werr != nil {
			return werr
		}
		if err := p.j.add(b.Index, b.Digest); err != nil {
			return err
		}
		p.done += n
		if opt.Progress != nil {
			opt.Progress(min(p.done, reply.Size), reply.Size)
		}
		return nil
	})
	var mismatch *blocks.MismatchError
	if err != nil && !errors.As(err, &mismatch) {
		return fail(streamErr(ctx, err))
	}
	var tr transport.Trailer
	if err := transport.ReadFrame(str, &tr); err != nil {
		return fail(streamErr(ctx, err))
	}
	if tr.Bytes != reply.Length {
		return fail(fmt.Errorf("server's trailer says %d bytes, sent %d", tr.Bytes, reply.Length))
	}
	if tr.Sent > 0 {
		l.peerSent.Store(tr.Sent)
		l.peerLost.Store(tr.Lost)
	}
	// Our FIN tells the server we have everything (see PROTOCOL.md).
	_ = str.Close()
	if mismatch != nil {
		return nil, mismatch
	}
	return tr.Digest, nil
}

// commitLocal moves a finished file to its name with mode, atomically
// refusing to replace an existing file unless force.
func commitLocal(tmp, dst string, force bool, mode fs.FileMode) error {
	// The partial was created 0o600, private while it grows.
	if err := os.Chmod(tmp, mode); err != nil {
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

// errLocalExists is publishUnnamed's refusal to replace a file.
var errLocalExists = errors.New("local file exists")

// publishUnnamed gives the finished unnamed download f the name dst and
// mode, refusing to replace an existing file unless force.
func publishUnnamed(f *os.File, dst string, mtime time.Time, force bool, mode fs.FileMode) error {
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if err := fsjail.Chtimes(f, mtime, mtime); err != nil {
		return err
	}
	err := fsjail.Link(f, dst)
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	if !force {
		return errLocalExists
	}
	// Replacing takes a name of its own first (short, so that any name
	// that fits its directory works), then a rename.
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(filepath.Dir(dst), fmt.Sprintf(".qftp-%x", rnd))
	if err := fsjail.Link(f, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// localMatches reports whether the local file name holds the file of
// size, mtime and file digest fd (in blocks of bs): what a download that
// found its name taken (by another get of the same file) would publish.
func localMatches(name string, size, mtime, bs int64, fd blocks.Digest) bool {
	if fi, err := os.Stat(name); err != nil || !fi.Mode().IsRegular() || fi.Size() != size || fi.ModTime().UnixNano() != mtime {
		return false
	}
	f, err := os.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	ds, err := hashBlocks(context.Background(), f, size, bs, nil)
	return err == nil && blocks.FileDigest(size, ds) == fd
}

// hashBlocks returns the block digests of the first size bytes of f in
// blocks of bs, writing the bytes to whole too if it is not nil. A read
// error is a *blocks.SourceError; ctx's end stops it.
func hashBlocks(ctx context.Context, f *os.File, size, bs int64, whole io.Writer) ([]blocks.Digest, error) {
	ds := make([]blocks.Digest, 0, blocks.Count(size, bs))
	buf := make([]byte, bs)
	for off := int64(0); off < size; off += bs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m := min(bs, size-off)
		if _, err := f.ReadAt(buf[:m], off); err != nil {
			return nil, &blocks.SourceError{Err: err}
		}
		if whole != nil {
			_, _ = whole.Write(buf[:m])
		}
		ds = append(ds, blocks.Sum(buf[:m]))
	}
	return ds, nil
}

// Put uploads local to remote. remote "" or ending in "/", or naming an
// existing directory, receives the file under its own name. The server
// keeps what arrives in a partial upload, so an interrupted put resumes
// with the blocks that verify, and makes the file visible only once
// complete and verified; an existing file is replaced only with opt.Force.
func (c *Client) Put(ctx context.Context, local, remote string, opt TransferOptions) (TransferResult, error) {
	start := time.Now()
	res := TransferResult{Local: local}
	f, fi, err := openSource(local)
	if err != nil {
		return res, err
	}
	defer f.Close()
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
	return c.putFile(ctx, start, f, fi, remote, opt)
}

// PutAs uploads local to exactly the remote file path remote (no check
// whether it names a directory), as multi-file transfers do.
func (c *Client) PutAs(ctx context.Context, local, remote string, opt TransferOptions) (TransferResult, error) {
	start := time.Now()
	f, fi, err := openSource(local)
	if err != nil {
		return TransferResult{Local: local}, err
	}
	defer f.Close()
	return c.putFile(ctx, start, f, fi, remote, opt)
}

// openSource opens the local file of a put. Only a regular file will do,
// and the open never waits: a FIFO without a writer would block it for
// good, past any Ctrl-C (O_NONBLOCK does nothing to reads of a regular
// file).
func openSource(local string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(local, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, &OpError{Op: "put", Path: local, Err: unwrapPath(err)}
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
		err = unwrapPath(err)
	case fi.IsDir():
		err = errors.New("is a directory (use put -r for a tree)")
	case !fi.Mode().IsRegular():
		err = errors.New("not a regular file")
	default:
		err = fsjail.Blocking(f)
	}
	if err != nil {
		_ = f.Close()
		return nil, nil, &OpError{Op: "put", Path: local, Err: err}
	}
	return f, fi, nil
}

func (c *Client) putFile(ctx context.Context, start time.Time, f *os.File, fi fs.FileInfo, remote string, opt TransferOptions) (TransferResult, error) {
	local := f.Name()
	res := TransferResult{Local: local, Remote: c.absRemote(remote)}
	first := true
	err := c.retry(ctx, &res, &opt, func(l *link) error {
		err := c.putOnce(ctx, l, f, fi, opt, &res, first)
		first = false
		return err
	})
	var we *transport.Error
	if err != nil && !opt.Force && errors.As(err, &we) && we.Code == transport.CodeExists {
		// Run again after it finished, a put finds its own file.
		same, serr := c.alreadyThere(ctx, f, fi, &res, opt.blockSize(fi.Size()), nil)
		switch {
		case serr != nil:
			err = serr
		case same:
			res.markSame(opt)
			err = nil
		default:
			err = &transport.Error{Code: we.Code, Msg: we.Msg + " (use -f to replace it)", Path: we.Path}
		}
	}
	if err != nil {
		var se *blocks.SourceError
		if errors.As(err, &se) || errors.Is(err, errSourceChanged) {
			return res, &OpError{Op: "put", Path: local, Err: err}
		}
		return res, opError("put", remote, err)
	}
	res.Links = max(res.Links, 1)
	res.Duration = time.Since(start)
	return res, nil
}

var errSourceChanged = errors.New("file changed while being read; run put again")

func (c *Client) putOnce(ctx context.Context, l *link, f *os.File, fi fs.FileInfo, opt TransferOptions, res *TransferResult, first bool) error {
	fileSize, mtime := fi.Size(), fi.ModTime().UnixNano()
	bs := opt.blockSize(fileSize)
	have := map[int64]blocks.Digest{}
	ask := opt.Resume == ResumeAlways || (opt.Resume == ResumeAuto && fileSize >= resumeMin) || !first
	if first && ask && !opt.Force {
		// A file that would be refused at the commit is refused before
		// any data (or a "resuming" message) goes out, for the price of
		// a round trip that a small file, sent with its request, skips.
		if e, _, err := c.Stat(ctx, res.Remote); err == nil && e.Type == transport.TypeFile {
			return &transport.Error{Code: transport.CodeExists, Msg: "file exists", Path: res.Remote}
		}
	}
	if ask && opt.Resume != ResumeNever || !first {
		held, err := c.resumeQuery(ctx, l, res.Remote, fileSize, mtime, bs)
		if err != nil {
			return err
		}
		// Keep the blocks whose digests match ours.
		buf := make([]byte, bs)
		for idx, d := range held {
			m := min(bs, fileSize-idx*bs)
			if _, err := f.ReadAt(buf[:m], idx*bs); err != nil {
				return &blocks.SourceError{Err: err}
			}
			if blocks.Sum(buf[:m]) == d {
				have[idx] = d
			}
		}
	}
	if !first && len(have) == 0 {
		// The last try may have committed the file and lost only the
		// reply: if the server has our file, we are done.
		if done, err := c.alreadyThere(ctx, f, fi, res, bs, nil); err != nil || done {
			return err
		}
	}
	kept := min(int64(len(have))*bs, fileSize)
	res.LastKept, res.LastSent = kept, 0
	if first {
		res.Resumed = kept
		if kept > 0 {
			opt.notify("put %s: resuming at %s", res.Remote, size.Format(kept))
		}
	}
	j := &journal{hdr: journalHeader{Size: fileSize, Mtime: mtime, BS: bs}, have: have}
	ranges := missingRanges(j, bs)
	done := kept
	if opt.Progress != nil {
		opt.Progress(done, fileSize) // the starting point, before any data
	}
	ds := &digests{ds: make([]blocks.Digest, blocks.Count(fileSize, bs))}
	for idx, d := range have {
		ds.ds[idx] = d
	}
	// A file with nothing missing (or empty) still needs its commit: the
	// empty range at offset 0 does it.
	if len(ranges) == 0 {
		ranges = [][2]int64{{0, 0}}
	}
	fresh := len(have) == 0
	var mu sync.Mutex // the streams of a striped upload account together
	account := func(n int64) {
		mu.Lock()
		res.Sent += n
		res.LastSent += n
		done += n
		d := done
		mu.Unlock()
		pace(ctx, opt.Limiter, n)
		if opt.Progress != nil {
			opt.Progress(min(d, fileSize), fileSize)
		}
	}
	// A striped upload names itself, so that the server refuses a range
	// that arrives after the commit (an endgame copy we canceled).
	var id []byte
	if links := c.stripeLinks(ctx, l, opt, res, fileSize-kept); len(links) > 1 || c.autoStripe(opt, fileSize-kept) {
		id = make([]byte, 16)
		_, _ = rand.Read(id)
		err := c.stripe(ctx, links, ranges, bs, c.autoFor(opt, res, &mu, false), nil, func(ctx context.Context, l *link, off, n int64) error {
			return c.putRange(ctx, l, f, fi, opt, res, off, n, bs, id, false, false, ds, account)
		})
		if err != nil {
			return err
		}
		ranges = [][2]int64{{0, 0}} // all that is left is the commit
		fresh = false
	}
	for i, r := range ranges {
		last := i == len(ranges)-1
		err := c.putRange(ctx, l, f, fi, opt, res, r[0], r[1], bs, id, fresh && i == 0, last, ds, account)
		if err != nil {
			return err
		}
	}
	res.Bytes, res.Digest = fileSize, ds.file(fileSize)
	return nil
}

// digests holds a put's block digests. The copies of a striped upload's
// pieces fill it at once (the endgame runs two copies of one piece; both
// read the same blocks).
type digests struct {
	mu sync.Mutex
	ds []blocks.Digest
}

// set records the digests of the blocks from index first on.
func (d *digests) set(first int64, sent []blocks.Digest) {
	d.mu.Lock()
	defer d.mu.Unlock()
	copy(d.ds[first:], sent)
}

// file returns the file digest of a file of size bytes.
func (d *digests) file(size int64) blocks.Digest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return blocks.FileDigest(size, d.ds)
}

// sameAsRemote reports whether the existing local file is the remote one
// (see alreadyThere), filling res if so.
func (c *Client) sameAsRemote(ctx context.Context, local string, res *TransferResult, opt TransferOptions, remote *transport.Entry) (bool, error) {
	// Stat first: opening a FIFO would block.
	if fi, err := os.Stat(local); err != nil || !fi.Mode().IsRegular() {
		return false, nil
	}
	f, err := os.Open(local)
	if err != nil {
		return false, nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return false, nil
	}
	same, err := c.alreadyThere(ctx, f, fi, res, opt.blockSize(fi.Size()), remote)
	var se *blocks.SourceError
	if errors.As(err, &se) {
		return false, localErr(local, se.Err)
	}
	if err != nil || !same {
		return false, err
	}
	res.markSame(opt)
	return true, nil
}

// markSame records that the destination already held the file, and
// completes its progress.
func (res *TransferResult) markSame(opt TransferOptions) {
	res.Same = true
	if opt.Progress != nil {
		opt.Progress(res.Bytes, res.Bytes)
	}
}

// sameMtime reports whether two mtimes (ns) are the same as far as their
// file systems can tell: equal, or one in whole seconds that is the other
// rounded down or up to a second (HFS+, some network file systems) or to
// an even second (FAT). The contents are compared too (BLAKE3), so this
// only decides whether a copy whose clock rounded counts as the same file.
func sameMtime(a, b int64) bool {
	if a == b {
		return true
	}
	for _, step := range []int64{int64(time.Second), 2 * int64(time.Second)} {
		for _, p := range [][2]int64{{a, b}, {b, a}} {
			coarse, fine := p[0], p[1]
			down := fine - ((fine%step)+step)%step
			if coarse == down || fine != down && coarse == down+step {
				return true
			}
		}
	}
	return false
}

// alreadyThere reports whether the remote file is the local one (same
// size, mtime and BLAKE3), filling res if so. Only a cancel (ctx's error)
// or a local read error (a *blocks.SourceError) is an error; anything
// else that stops the comparison reports false. stat is the remote
// file's, if the caller has it (nil: asked here).
func (c *Client) alreadyThere(ctx context.Context, f *os.File, fi fs.FileInfo, res *TransferResult, bs int64, stat *transport.Entry) (bool, error) {
	var e transport.Entry
	var err error
	if stat != nil {
		e = *stat
	} else {
		e, _, err = c.Stat(ctx, res.Remote)
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil || e.Type != transport.TypeFile || e.Size != fi.Size() || !sameMtime(e.Mtime, fi.ModTime().UnixNano()) {
		return false, nil
	}
	// Both ends hash at once: the server's may take as long as ours.
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type sum struct {
		b   []byte
		err error
	}
	remote := make(chan sum, 1)
	go func() {
		b, err := c.Hash(hctx, res.Remote, transport.AlgoBLAKE3)
		remote <- sum{b, err}
	}()
	whole := blake3.New()
	ds, lerr := hashBlocks(ctx, f, fi.Size(), bs, whole)
	if lerr != nil {
		cancel()
	}
	r := <-remote
	switch {
	case lerr != nil:
		return false, lerr
	case ctx.Err() != nil:
		return false, ctx.Err()
	case r.err != nil:
		return false, nil
	}
	// What was hashed must be the file as it was stat'ed.
	if now, err := f.Stat(); err != nil || now.Size() != fi.Size() || !now.ModTime().Equal(fi.ModTime()) {
		return false, nil
	}
	if !bytes.Equal(whole.Sum(nil), r.b) {
		return false, nil
	}
	res.Bytes, res.Digest = fi.Size(), blocks.FileDigest(fi.Size(), ds)
	res.LastKept, res.LastSent = fi.Size(), 0
	return true, nil
}

// resumeQuery asks which blocks of a partial upload to remote the server
// holds for this source.
func (c *Client) resumeQuery(ctx context.Context, l *link, remote string, fileSize, mtime, bs int64) (map[int64]blocks.Digest, error) {
	str, stop, err := l.openTransfer(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()
	if err := transport.WriteFrame(str, &transport.TransferRequest{Op: transport.OpResume, Path: remote, Size: fileSize, Mtime: mtime, BlockSize: bs}); err != nil {
		return nil, streamErr(ctx, err)
	}
	_ = str.Close()
	var reply transport.TransferReply
	if err := transport.ReadFrame(str, &reply); err != nil {
		return nil, streamErr(ctx, err)
	}
	if reply.Err != nil {
		return nil, reply.Err
	}
	n := blocks.Count(fileSize, bs)
	if reply.Blocks < 0 || reply.Blocks > n {
		return nil, fmt.Errorf("server claims %d blocks of a %d-block file", reply.Blocks, n)
	}
	held := make(map[int64]blocks.Digest, reply.Blocks)
	var rec [recordSize]byte
	for range reply.Blocks {
		if _, err := io.ReadFull(str, rec[:]); err != nil {
			return nil, streamErr(ctx, err)
		}
		idx := int64(binary.LittleEndian.Uint64(rec[:8]))
		if idx < 0 || idx >= n {
			return nil, fmt.Errorf("server sent block %d of a %d-block file", idx, n)
		}
		var d blocks.Digest
		copy(d[:], rec[8:])
		held[idx] = d
	}
	return held, nil
}

// putRange sends one range of the file; with commit it also asks the
// server to publish the file, sending the file digest.
func (c *Client) putRange(ctx context.Context, l *link, f *os.File, fi fs.FileInfo, opt TransferOptions, res *TransferResult, off, length, bs int64, id []byte, fresh, commit bool, ds *digests, account func(n int64)) error {
	fileSize := fi.Size()
	str, stop, err := l.openTransfer(ctx)
	if err != nil {
		return err
	}
	defer stop()
	// readReply fetches the server's verdict; after a refusal it explains
	// why the stream was stopped.
	readReply := func(cause error) error {
		var reply transport.TransferReply
		if err := transport.ReadFrame(str, &reply); err != nil {
			if cause == nil {
				cause = err
			}
			str.CancelRead(transport.StreamCanceled)
			return streamErr(ctx, cause)
		}
		// Our FIN tells the server we have its verdict (see PROTOCOL.md).
		_ = str.Close()
		if reply.Err != nil {
			return reply.Err
		}
		if cause != nil {
			return streamErr(ctx, cause)
		}
		return nil
	}
	hdr := transport.TransferRequest{Op: transport.OpPut, Path: res.Remote, Offset: off, Length: length, Size: fileSize,
		Mtime: fi.ModTime().UnixNano(), Force: opt.Force, BlockSize: bs, Fresh: fresh, Commit: commit, Upload: id, Mode: wireMode(fi), Journal: opt.Resume == ResumeAlways}
	if err := transport.WriteFrame(str, &hdr); err != nil {
		return readReply(err)
	}
	sent, err := blocks.Send(str, io.NewSectionReader(f, off, length), off, length, bs, blocks.SendOptions{Tamper: opt.TestHookTamper, Progress: account})
	ds.set(off/bs, sent)
	if err != nil {
		var se *blocks.SourceError
		if errors.As(err, &se) {
			str.CancelWrite(transport.StreamIO)
			str.CancelRead(transport.StreamCanceled)
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return errSourceChanged
			}
			return err
		}
		var qe *quic.StreamError
		if errors.As(err, &qe) && qe.Remote {
			return readReply(err)
		}
		str.CancelRead(transport.StreamCanceled)
		return streamErr(ctx, err)
	}
	// A file changed under us was sent as a mix of versions: do not let
	// the server publish it.
	if now, err := f.Stat(); err != nil || now.Size() != fileSize || !now.ModTime().Equal(fi.ModTime()) {
		str.CancelWrite(transport.StreamSourceChanged)
		str.CancelRead(transport.StreamCanceled)
		return errSourceChanged
	}
	tr := transport.Trailer{Bytes: length}
	if commit {
		fd := ds.file(fileSize)
		tr.Digest = fd[:]
	}
	if err := transport.WriteFrame(str, &tr); err != nil {
		return readReply(err)
	}
	return readReply(nil)
}

// unwrapPath drops the host path from an *fs.PathError; the caller names
// the file itself.
// localErr names the local file in err, a failure to open or create its
// partial download: otherwise "get f: permission denied" would seem to
// be about the remote file.
func localErr(local string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("local file %s: %w", local, pe.Err)
	}
	return err
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Hash returns the server's digest of a whole remote file with algo
// (transport.AlgoBLAKE3 or AlgoSHA256), as b3sum or sha256sum compute it.
func (c *Client) Hash(ctx context.Context, remote, algo string) ([]byte, error) {
	var digest []byte
	res := TransferResult{}
	err := c.retry(ctx, &res, nil, func(l *link) error {
		str, stop, err := l.openTransfer(ctx)
		if err != nil {
			return err
		}
		defer stop()
		if err := transport.WriteFrame(str, &transport.TransferRequest{Op: transport.OpHash, Path: c.absRemote(remote), Algo: algo}); err != nil {
			return streamErr(ctx, err)
		}
		_ = str.Close()
		var reply transport.TransferReply
		if err := transport.ReadFrame(str, &reply); err != nil {
			return streamErr(ctx, err)
		}
		if reply.Err != nil {
			return reply.Err
		}
		digest = reply.Digest
		return nil
	})
	if err != nil {
		return nil, opError("hash", remote, err)
	}
	return digest, nil
}
