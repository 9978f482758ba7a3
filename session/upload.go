package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qftp/qftp/fsjail"
	"github.com/qftp/qftp/session/userdb"
	"github.com/qftp/qftp/transport"
	"github.com/qftp/qftp/transport/blocks"
)

// upload is a put stream's hold on a partial upload. Every byte of the
// partial's data is counted in the user's ledger (userdb used); budget is
// reserved on top for the writes to come and given back by close.
type upload struct {
	mu      sync.Mutex // the streams of a striped upload share it
	c       *conn
	vp      string
	p       *fsjail.Partial
	j       *journal
	size    int64 // size of the partial's data file, counted in the ledger
	budget  int64 // reserved beyond size, not yet written
	written int64 // bytes this stream stored
	closed  bool
	gone    error          // why discard removed the partial, for the other streams
	alloc   map[int64]bool // the preallocStep chunks preallocated (see preallocate)
	// discarded is set with gone, for acquireUpload, which holds the
	// server's lock and must not wait for up.mu (discard takes the
	// server's lock under up.mu).
	discarded atomic.Bool
}

// preallocStep is the stretch of an upload's file that is preallocated at
// a time, as its writes reach it.
const preallocStep = 8 << 20

// openUpload opens the partial upload for vp. A partial of another source
// (or fresh) is emptied and its bytes released. An upload under resumeMin
// keeps a journal, and so can be resumed, only if the client asks (put -c).
func (c *conn) openUpload(ctx context.Context, vp string, hdr journalHeader, fresh, keep bool) (*upload, error) {
	// Uploads the client never resumes keep no journal file.
	journaled := hdr.Size >= resumeMin || keep
	p, created, err := c.jail.OpenPartial(vp, journaled)
	if err != nil {
		return nil, err
	}
	up := &upload{c: c, vp: vp, p: p}
	fi, err := p.Data.Stat()
	if err != nil {
		up.close(ctx)
		return nil, err
	}
	up.size = fi.Size()
	if !created && !fresh && journaled {
		if j, ok, err := readJournal(p.Meta); err == nil && ok && j.hdr == hdr && up.size <= hdr.Size {
			// A journal this process did not write or check may list
			// blocks lost in a crash: check them before trusting it.
			if _, err := c.verifyJournal(j, p); err != nil {
				up.close(ctx)
				return nil, err
			}
			up.j = j
			// Space a crash left preallocated past the data goes (see
			// reserve); it was never counted.
			_ = p.Data.Truncate(up.size)
			return up, nil
		}
	}
	if up.size > 0 {
		if err := p.Data.Truncate(0); err != nil {
			up.close(ctx)
			return nil, err
		}
		c.release(ctx, up.size)
		up.size = 0
	}
	if !journaled {
		up.j = &journal{hdr: hdr, have: make(map[int64]blocks.Digest)}
		return up, nil
	}
	if up.j, err = resetJournal(p.Meta, hdr); err != nil {
		up.close(ctx)
		return nil, err
	}
	c.srv.markVerified(c.user.Name, vp)
	return up, nil
}

// write stores a verified block, reserving quota for any growth of the
// file first.
func (up *upload) write(ctx context.Context, b blocks.Block) error {
	if err := up.store(ctx, b); err != nil {
		return err
	}
	// Each 8 MiB stored starts its writeback (see StartWriteback), outside
	// the lock: it may wait for the disk's queue, and the other streams of
	// a striped upload store their blocks meanwhile.
	const chunk = 8 << 20
	if from, to := b.Offset/chunk*chunk, (b.Offset+int64(len(b.Data)))/chunk*chunk; to > from {
		up.p.StartWriteback(from, to-from) // the chunks this block completed
	}
	return nil
}

// store writes a verified block into the partial and journals it.
func (up *upload) store(ctx context.Context, b blocks.Block) error {
	up.mu.Lock()
	defer up.mu.Unlock()
	if d, ok := up.j.have[b.Index]; ok && d == b.Digest {
		return nil // the other copy of an endgame piece stored it
	}
	if up.gone != nil {
		return up.gone
	}
	end := b.Offset + int64(len(b.Data))
	grow := max(end-up.size, 0)
	if grow > up.budget {
		if err := up.reserve(ctx, grow-up.budget); err != nil {
			return err
		}
	}
	if err := up.preallocate(b.Offset, end); err != nil {
		return err
	}
	if _, err := up.p.Data.WriteAt(b.Data, b.Offset); err != nil {
		// The file may have grown in part: count what is on disk.
		if fi, serr := up.p.Data.Stat(); serr == nil && fi.Size() > up.size {
			g := min(fi.Size()-up.size, up.budget)
			up.budget -= g
			up.size += g
		}
		return err
	}
	up.budget -= grow
	up.size = max(up.size, end)
	if err := up.j.add(b.Index, b.Digest); err != nil {
		return err
	}
	up.written += int64(len(b.Data))
	return nil
}

// reserveRest reserves in the ledger what the rest of the file needs (see
// reserve). A put does so before its first byte.
func (up *upload) reserveRest(ctx context.Context) error {
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.gone != nil { // another stream's refusal, which dropped it
		return up.gone
	}
	return up.reserve(ctx, 0)
}

// reserve grows the budget by at least need bytes, and to the rest of the
// file: an upload reserves all it will write before it writes any, with one
// write of the ledger (a database row shared by all of the user's
// sessions). So an upload that starts can finish: reserving a few MiB at a
// time, uploads near the quota could each get part of the way, and all
// fail. A refusal is a quota error with the figures that refused it. up.mu
// is held.
func (up *upload) reserve(ctx context.Context, need int64) error {
	n := max(need, up.j.hdr.Size-up.size-up.budget)
	if n <= 0 {
		return nil
	}
	users, name := up.c.srv.Users, up.c.user.Name
	// The store may commit an update and still report the context's end:
	// reserve outside the stream's lifetime so that the count stays true.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	up.c.srv.settleQuota(ctx, name)
	if err := users.Reserve(ctx, name, n); err != nil {
		if qe := (*userdb.QuotaError)(nil); errors.As(err, &qe) {
			// What the upload holds already counts as free for it.
			return quotaError(up.vp, qe.Need+up.budget, qe.Quota, qe.Used-up.budget)
		}
		return err
	}
	up.budget += n
	return nil
}

// preallocate allocates on disk the chunks of preallocStep bytes that
// [off, end) touches, unless done before: a full disk fails there, before
// the block is written, and the file's blocks lie together. Only chunks
// that writes reach: a client that announces a huge file (within its
// quota) and sends little holds little of the disk. close frees what was
// not written. up.mu is held.
func (up *upload) preallocate(off, end int64) error {
	if up.j.hdr.Size < preallocMin {
		return nil
	}
	for c := off / preallocStep; c*preallocStep < end; c++ {
		if up.alloc[c] {
			continue
		}
		from := c * preallocStep
		if err := fsjail.Preallocate(up.p.Data, from, min(preallocStep, up.j.hdr.Size-from)); err != nil {
			// A file system may keep part of a failed allocation: free
			// all past the data, and forget those chunks.
			_ = up.p.Data.Truncate(up.size)
			for k := range up.alloc {
				if (k+1)*preallocStep > up.size {
					delete(up.alloc, k)
				}
			}
			return err
		}
		if up.alloc == nil {
			up.alloc = make(map[int64]bool)
		}
		up.alloc[c] = true
	}
	return nil
}

// holdReplacedMin is the size from which a file that a put replaces is
// held open across the rename and closed after the reply: freeing the
// blocks of a file that was synced to disk is the slow part of replacing
// it (45 ms for 256 MiB on ext4 on this project's test VM, mostly
// waiting), and a rename that drops the last reference does it before it
// returns, here under the user's lock. (The client's replaced files were
// never synced; freeing them took 12 ms of CPU, which holding them would
// only move.)
const holdReplacedMin = 1 << 20

// commit publishes a complete upload with mode: every block verified, the
// file digest equal to the client's (if it sent one).
func (up *upload) commit(ctx context.Context, c *conn, clientDigest []byte, force bool, mtimeNs int64, mode fs.FileMode) (_ blocks.Digest, replaced io.Closer, _ error) {
	up.mu.Lock()
	defer up.mu.Unlock()
	// The connection that opened a striped upload may be gone; the one
	// committing is alive.
	up.c = c
	hdr := up.j.hdr
	ds, err := up.j.complete()
	if err != nil {
		return blocks.Digest{}, nil, userError(transport.CodeProtocol, up.vp, "commit of an incomplete upload: "+err.Error())
	}
	fd := blocks.FileDigest(hdr.Size, ds)
	if clientDigest != nil && !bytes.Equal(clientDigest, fd[:]) {
		err := userError(transport.CodeIntegrity, up.vp, "file digest does not match the client's; upload discarded")
		up.discardLocked(ctx, err)
		return fd, nil, err
	}
	if up.size != hdr.Size {
		return fd, nil, userError(transport.CodeProtocol, up.vp, fmt.Sprintf("upload has %d bytes, want %d", up.size, hdr.Size))
	}
	var mtime time.Time
	if mtimeNs != 0 {
		mtime = time.Unix(0, mtimeNs)
	}
	finished, err := up.p.Finish(mode)
	if err != nil {
		return fd, nil, err
	}
	if err := up.p.Data.Sync(); err != nil {
		return fd, nil, err
	}
	ours, oursOK := up.stamp()
	journaled := up.p.Meta != nil
	// A new name (the common case, and all of a tree upload) needs no
	// user lock: committed without replacing, it displaced nothing whose
	// bytes must be released, and a file that appeared meanwhile makes
	// the no-clobber commit fail (then the locked path decides). Many
	// small files would otherwise queue on the lock.
	if _, err := up.c.jail.Lstat(up.vp); errors.Is(err, fs.ErrNotExist) {
		up.closeFiles()
		err := up.c.jail.CommitPartial(up.vp, false, finished, journaled, mtime, mode)
		if err == nil {
			up.c.srv.forgetVerified(up.c.user.Name, up.vp)
			up.learn(ours, oursOK, ds, mtimeNs)
			return fd, nil, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return fd, nil, err
		}
	}
	mu := up.c.srv.userLock(up.c.user.Name)
	mu.Lock()
	defer mu.Unlock()
	var old int64
	switch fi, err := up.c.jail.Lstat(up.vp); {
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fd, nil, err
	case err != nil: // the common case: a new file
	case fi.Mode().IsRegular():
		if !force {
			return fd, nil, &fs.PathError{Op: "put", Path: up.vp, Err: fs.ErrExist}
		}
		old = fi.Size()
	default:
		// A directory, or a symlink that may lead to one.
		if err := up.c.checkDest(up.vp, force); err != nil {
			return fd, nil, err
		}
	}
	// Held open, the replaced file is freed when the caller closes it
	// after replying (see holdReplacedMin). Windows refuses to rename
	// over a file held open.
	if old >= holdReplacedMin && runtime.GOOS != "windows" {
		if f, _, err := up.c.jail.Open(up.vp); err == nil {
			replaced = f
		}
	}
	up.closeFiles()
	if err := up.c.jail.CommitPartial(up.vp, force, finished, journaled, mtime, mode); err != nil {
		if replaced != nil {
			_ = replaced.Close()
		}
		return fd, nil, err
	}
	// The partial's bytes now are the file's; the replaced file's go.
	up.c.release(ctx, old)
	up.c.srv.forgetVerified(up.c.user.Name, up.vp)
	up.learn(ours, oursOK, ds, mtimeNs)
	return fd, replaced, nil
}

// stamp returns the partial's stamp (its inode is the committed file's),
// or false where there are none or its digests are not worth keeping
// (then learn does nothing, and a small file's put costs no stat).
func (up *upload) stamp() (fsjail.Stamp, bool) {
	if !worthRemembering(up.j.hdr.Size) {
		return fsjail.Stamp{}, false
	}
	fi, err := up.p.Data.Stat()
	if err != nil {
		return fsjail.Stamp{}, false
	}
	return fsjail.StampOf(fi)
}

// learn gives the server's digest cache the block digests ds of the file
// just committed, so that its first get need not hash it: the server
// hashed every block as it arrived. They are filed under the stamp the
// file has now, and only if that is still our inode with the size and the
// mtime that the commit gave it (a writer in between would have changed
// the mtime to its own time). A get uses them only once the file's ctime
// is digestTrustAge old, as it would digests it hashed itself.
func (up *upload) learn(ours fsjail.Stamp, ok bool, ds []blocks.Digest, mtimeNs int64) {
	if !ok || mtimeNs == 0 {
		return
	}
	fi, err := up.c.jail.Lstat(up.vp)
	if err != nil {
		return
	}
	st, ok := fsjail.StampOf(fi)
	if !ok || st.Dev != ours.Dev || st.Ino != ours.Ino || st.Size != up.j.hdr.Size || st.Mtime != mtimeNs {
		return
	}
	up.c.srv.digests.add(st, up.j.hdr.BS, 0, ds, nil)
}

// journaled reports whether the upload keeps a journal file, so that a
// later put can resume it (files of resumeMin or more).
func (up *upload) journaled() bool { return up.p.Meta != nil }

// isClosed reports whether the upload's files are closed (committed or
// discarded).
func (up *upload) isClosed() bool {
	up.mu.Lock()
	defer up.mu.Unlock()
	return up.closed
}

// discard removes the partial upload and releases its bytes. The upload's
// other streams (a striped upload's) then fail with why. c is the
// connection discarding it: the one that opened it (and its jail) may be
// gone.
func (up *upload) discard(ctx context.Context, c *conn, why error) {
	up.mu.Lock()
	defer up.mu.Unlock()
	up.c = c
	up.discardLocked(ctx, why)
}

// discardLocked is discard with up.mu held.
func (up *upload) discardLocked(ctx context.Context, why error) {
	if up.gone == nil && why != nil {
		// The stream that discards it reports why; the others only
		// repeat it to their clients.
		up.gone = alreadyReported{why}
	}
	up.discarded.Store(true)
	up.c.srv.forgetVerified(up.c.user.Name, up.vp)
	mu := up.c.srv.userLock(up.c.user.Name)
	mu.Lock()
	defer mu.Unlock()
	up.closeFiles()
	n, err := up.c.jail.RemovePartial(up.vp)
	if err != nil {
		up.c.ulog.Error("remove partial upload", "vpath", up.vp, "err", err)
	}
	up.c.release(ctx, n)
	up.size = 0
}

func (up *upload) closeFiles() {
	if !up.closed {
		up.closed = true
		_ = up.p.Close()
	}
}

// alreadyReported is an error that another stream of the same upload has
// already reported (and logged): the log notes it at debug only.
type alreadyReported struct{ error }

func (e alreadyReported) Unwrap() error { return e.error }

// takeBudget takes the upload's unused reservation away from it (close
// then gives back nothing), for the server to hold between the pieces of
// a striped upload.
func (up *upload) takeBudget() int64 {
	up.mu.Lock()
	defer up.mu.Unlock()
	n := up.budget
	up.budget = 0
	return n
}

// addBudget gives the upload a reservation made before, still counted in
// the ledger.
func (up *upload) addBudget(n int64) {
	up.mu.Lock()
	defer up.mu.Unlock()
	up.budget += n
}

// close gives back the unused budget and closes the files; the partial
// stays for a later resume unless committed or discarded.
func (up *upload) close(ctx context.Context) {
	up.mu.Lock()
	defer up.mu.Unlock()
	if !up.closed && len(up.alloc) > 0 {
		_ = up.p.Data.Truncate(up.size) // frees the space preallocated past it
	}
	up.closeFiles()
	up.c.release(ctx, up.budget)
	up.budget = 0
}

// verifyJournal re-reads and checks every block j lists, dropping the
// ones whose data does not match (and rewriting the journal without
// them), unless this server process already did so or wrote the journal
// itself. It returns the blocks kept.
func (c *conn) verifyJournal(j *journal, p *fsjail.Partial) ([]int64, error) {
	if !c.srv.isVerified(c.user.Name, j.hdr.Path) {
		before := len(j.have)
		if _, err := j.verify(p.Data); err != nil {
			return nil, err
		}
		if len(j.have) != before {
			if err := j.rewrite(); err != nil {
				return nil, err
			}
		}
		c.srv.markVerified(c.user.Name, j.hdr.Path)
	}
	kept := make([]int64, 0, len(j.have))
	for i := range blocks.Count(j.hdr.Size, j.hdr.BS) {
		if _, ok := j.have[i]; ok {
			kept = append(kept, i)
		}
	}
	return kept, nil
}

// release gives n bytes back to the user's ledger (see releaseQuota).
func (c *conn) release(ctx context.Context, n int64) {
	err := c.srv.releaseQuota(ctx, c.user.Name, n)
	switch {
	case errors.Is(err, userdb.ErrNotFound):
		c.ulog.Debug("release quota: the user was deleted", "bytes", n)
	case err != nil:
		c.ulog.Error("release quota", "bytes", n, "retry", errors.Is(err, userdb.ErrNotWritten), "err", err)
	}
}
