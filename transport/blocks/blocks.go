// Package blocks defines how qftp verifies file data: files are cut into
// fixed-size blocks, each hashed with BLAKE3-256, and a file's digest is the
// BLAKE3-256 of its size and the list of its block digests (a two-level
// hash list). On a transfer stream every block travels followed by its
// digest, so the receiver checks each block as it completes, in the same
// pass that stores it.
package blocks

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/zeebo/blake3"
)

// Size is the block size qftp uses. It travels in transfer headers, so a
// later version may change it; offsets of ranges are multiples of it.
const Size = 1 << 20

// Small is the block size of files under SmallUpTo bytes. Striping hands
// out whole blocks, and at high loss many connections each carry little:
// small blocks let fast connections take more of the file than slow ones.
const Small = 256 << 10

// SmallUpTo is the size from which files use Size blocks (a 4 GiB file
// has 16384 blocks of Small; larger files would make journals large).
const SmallUpTo = 4 << 30

// For returns the default block size of a file of the given size.
func For(size int64) int64 {
	if size < SmallUpTo {
		return Small
	}
	return Size
}

// MaxSize bounds a block size a peer may ask for (it sizes buffers).
const MaxSize = 16 << 20

// Digest is the BLAKE3-256 digest of a block or a file.
type Digest [32]byte

func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// Sum returns the digest of one block.
func Sum(b []byte) Digest { return blake3.Sum256(b) }

// Count returns how many blocks of size bs a file of size bytes has.
func Count(size, bs int64) int64 {
	if size <= 0 {
		return 0
	}
	return (size + bs - 1) / bs
}

// FileDigest returns the digest of a file of the given size whose blocks
// have the digests ds: BLAKE3-256 over the size as 8 little-endian bytes
// followed by the block digests in order.
func FileDigest(size int64, ds []Digest) Digest {
	h := blake3.New()
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(size))
	h.Write(n[:])
	for _, d := range ds {
		h.Write(d[:])
	}
	var out Digest
	h.Sum(out[:0])
	return out
}

// ErrMismatch is matched by a *MismatchError.
var ErrMismatch = errors.New("block digest mismatch")

// MismatchError reports blocks that did not verify. Offset is the first bad
// byte offset in the file.
type MismatchError struct {
	Offset int64
	Blocks []int64 // indices of the bad blocks
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("data corrupted in transit at offset %d (%d bad block(s))", e.Offset, len(e.Blocks))
}

func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }

// depth is how many blocks a transfer has in its pipeline: one on the
// wire while the next is read and hashed, so that neither side's disk and
// hashing stall the QUIC stream (quic-go's Write returns only once a
// block is packed, and its window credit returns only as data is read).
const depth = 2

// Pools of buffers for whole blocks of the default sizes and their
// digests; other sizes (the last block of a small file) are allocated.
var (
	smallPool = sync.Pool{New: func() any { b := make([]byte, Small+32); return &b }}
	sizePool  = sync.Pool{New: func() any { b := make([]byte, Size+32); return &b }}
)

// getBuf returns a buffer of n bytes and a function that gives it back.
func getBuf(n int64) ([]byte, func()) {
	var pool *sync.Pool
	switch n {
	case Small + 32:
		pool = &smallPool
	case Size + 32:
		pool = &sizePool
	default:
		return make([]byte, n), func() {}
	}
	bp := pool.Get().(*[]byte)
	return *bp, func() { pool.Put(bp) }
}

// pipeline returns how many buffers Send or Receive use for a range of n
// bytes in blocks of bs, and their size.
func pipeline(n, bs int64) (count int, size int64) {
	return int(min(depth, max(Count(n, bs), 1))), min(bs, n) + 32
}

// Memory returns the buffer bytes Send or Receive hold for a range of n
// bytes in blocks of bs, so that a server can budget them.
func Memory(n, bs int64) int64 {
	if bs <= 0 || n < 0 {
		return 0
	}
	count, size := pipeline(n, bs)
	return int64(count) * size
}

// buffers returns a channel holding the pipeline's buffers, their number,
// and the function that gives them back.
func buffers(n, bs int64) (free chan []byte, count int, release func()) {
	count, size := pipeline(n, bs)
	free = make(chan []byte, count)
	puts := make([]func(), 0, count)
	for range count {
		b, put := getBuf(size)
		puts = append(puts, put)
		free <- b
	}
	return free, count, func() {
		for _, put := range puts {
			put()
		}
	}
}

// SendOptions are Send's optional hooks.
type SendOptions struct {
	// Known, if not nil, returns the digest of block idx if the caller
	// knows it already (from an earlier read of the same unchanged file),
	// so that Send need not hash it. The receiver verifies every block
	// all the same: a wrong digest costs a retry, never wrong data.
	Known func(idx int64) (Digest, bool)
	// Tamper, if not nil, may change a block after it was hashed (tests
	// use it to corrupt data on purpose).
	Tamper func(off int64, b []byte)
	// Progress, if not nil, gets the bytes of each block sent.
	Progress func(int64)
}

// Send writes n bytes of the file read from r, which starts at file offset
// off (a multiple of bs), to w: each block's bytes followed by its digest.
// The next blocks are read and hashed while one is being written.
// It returns the digests of the blocks sent.
func Send(w io.Writer, r io.Reader, off, n, bs int64, opt SendOptions) ([]Digest, error) {
	if bs <= 0 || bs > MaxSize || off%bs != 0 || n < 0 {
		return nil, fmt.Errorf("blocks: bad send arguments (offset %d, block size %d)", off, bs)
	}
	ds := make([]Digest, 0, Count(n, bs))
	type filled struct {
		b   []byte // block and digest
		err error
	}
	free, nbuf, release := buffers(n, bs)
	defer release()
	full := make(chan filled, nbuf)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	wg.Go(func() {
		defer close(full)
		for read := int64(0); read < n; {
			var buf []byte
			select {
			case buf = <-free:
			case <-stop:
				return
			}
			m := min(bs, n-read)
			b := buf[:m]
			if _, err := io.ReadFull(r, b); err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				full <- filled{err: &SourceError{Err: err}}
				return
			}
			d, ok := Digest{}, false
			if opt.Known != nil {
				d, ok = opt.Known((off + read) / bs)
			}
			if !ok {
				d = Sum(b)
			}
			if opt.Tamper != nil {
				opt.Tamper(off+read, b)
			}
			full <- filled{b: append(b, d[:]...)}
			read += m
		}
	})
	for f := range full {
		if f.err != nil {
			return ds, f.err
		}
		m := int64(len(f.b) - 32)
		ds = append(ds, Digest(f.b[m:]))
		// One write per block and digest keeps syscalls and stream
		// frames few.
		if _, err := w.Write(f.b); err != nil {
			return ds, err
		}
		free <- f.b[:cap(f.b)]
		if opt.Progress != nil {
			opt.Progress(m)
		}
	}
	return ds, nil
}

// SourceError is a failure to read the data being sent (as opposed to a
// failure to send it).
type SourceError struct{ Err error }

func (e *SourceError) Error() string { return "read source: " + e.Err.Error() }
func (e *SourceError) Unwrap() error { return e.Err }

// Block is one received block handed to a Receive callback.
type Block struct {
	Index  int64  // block index in the file
	Offset int64  // file offset of its first byte
	Data   []byte // valid only during the callback
	Digest Digest // digest the sender sent
	OK     bool   // Data hashes to Digest
}

// Receive reads n bytes sent by Send for the range starting at file offset
// off, and calls fn for each block in order, verified or not. fn stores
// good blocks; a bad one costs only itself. It returns the indices of
// blocks that failed verification as a *MismatchError, after reading the
// whole range; an error from r or fn stops it (fn is not called again,
// and no more is read from r once the error is seen).
//
// Blocks are verified as they are read and handed to fn on a second
// goroutine while the next ones are read from r, so that a slow disk does
// not hold back the stream's flow-control credit.
func Receive(r io.Reader, off, n, bs int64, fn func(Block) error) error {
	if bs <= 0 || bs > MaxSize || off%bs != 0 || n < 0 {
		return fmt.Errorf("blocks: bad receive arguments (offset %d, block size %d)", off, bs)
	}
	free, nbuf, release := buffers(n, bs)
	defer release()
	type read struct {
		b   []byte
		off int64
		ok  bool // b hashes to its digest
	}
	work := make(chan read, nbuf)
	var (
		bad     *MismatchError
		fnErr   error
		failed  atomic.Bool
		checked = make(chan struct{})
	)
	go func() {
		defer close(checked)
		for rd := range work {
			if failed.Load() {
				free <- rd.b
				continue
			}
			m := int64(len(rd.b) - 32)
			blk := Block{Index: rd.off / bs, Offset: rd.off, Data: rd.b[:m], Digest: Digest(rd.b[m:])}
			blk.OK = rd.ok
			if !blk.OK {
				if bad == nil {
					bad = &MismatchError{Offset: blk.Offset}
				}
				bad.Blocks = append(bad.Blocks, blk.Index)
			}
			if err := fn(blk); err != nil {
				fnErr = err
				failed.Store(true)
			}
			free <- rd.b[:cap(rd.b)]
		}
	}()
	var readErr error
	for got := int64(0); got < n && !failed.Load(); {
		m := min(bs, n-got)
		b := (<-free)[:m+32]
		if failed.Load() {
			break // fn failed while we waited for a buffer
		}
		if _, err := io.ReadFull(r, b); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			readErr = err
			break
		}
		// Hashing here, right after the copy, finds the block still in
		// this core's cache: on loopback get and put ran 3-4 % faster
		// than when the second goroutine hashed it.
		work <- read{b: b, off: off + got, ok: Sum(b[:m]) == Digest(b[m:])}
		got += m
	}
	close(work)
	<-checked
	switch {
	case fnErr != nil:
		return fnErr
	case readErr != nil:
		return readErr
	case bad != nil:
		return bad
	}
	return nil
}

// WireLength is the number of bytes Send writes for n bytes of data.
func WireLength(n, bs int64) int64 { return n + 32*Count(n, bs) }
