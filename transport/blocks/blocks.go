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

	"lukechampine.com/blake3"
)

// Size is the block size qftp uses. It travels in transfer headers, so a
// later version may change it; offsets of ranges are multiples of it.
const Size = 1 << 20

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
	h := blake3.New(32, nil)
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

// Send writes n bytes of the file read from r, which starts at file offset
// off (a multiple of bs), to w: each block's bytes followed by its digest.
// tamper, if not nil, may change a block after it was hashed (tests use it
// to corrupt data on purpose). progress, if not nil, gets the bytes sent.
// It returns the digests of the blocks sent. buf must hold min(bs, n)+32
// bytes.
func Send(w io.Writer, r io.Reader, off, n, bs int64, buf []byte, tamper func(off int64, b []byte), progress func(int64)) ([]Digest, error) {
	if bs <= 0 || off%bs != 0 || int64(len(buf)) < min(bs, n)+32 {
		return nil, fmt.Errorf("blocks: bad send arguments (offset %d, block size %d)", off, bs)
	}
	ds := make([]Digest, 0, Count(n, bs))
	var sent int64
	for sent < n {
		m := min(bs, n-sent)
		b := buf[:m]
		if _, err := io.ReadFull(r, b); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return ds, &SourceError{Err: err}
		}
		d := Sum(b)
		ds = append(ds, d)
		if tamper != nil {
			tamper(off+sent, b)
		}
		// One write per block and digest keeps syscalls and stream
		// frames few.
		out := append(b, d[:]...)
		if _, err := w.Write(out); err != nil {
			return ds, err
		}
		sent += m
		if progress != nil {
			progress(m)
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
// whole range; an error from r or fn stops it at once.
func Receive(r io.Reader, off, n, bs int64, buf []byte, fn func(Block) error) error {
	if bs <= 0 || off%bs != 0 || int64(len(buf)) < min(bs, n)+32 {
		return fmt.Errorf("blocks: bad receive arguments (offset %d, block size %d)", off, bs)
	}
	var bad *MismatchError
	var got int64
	for got < n {
		m := min(bs, n-got)
		b := buf[:m+32]
		if _, err := io.ReadFull(r, b); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		var want Digest
		copy(want[:], b[m:])
		blk := Block{Index: (off + got) / bs, Offset: off + got, Data: b[:m], Digest: want}
		blk.OK = Sum(blk.Data) == want
		if !blk.OK {
			if bad == nil {
				bad = &MismatchError{Offset: blk.Offset}
			}
			bad.Blocks = append(bad.Blocks, blk.Index)
		}
		if err := fn(blk); err != nil {
			return err
		}
		got += m
	}
	if bad != nil {
		return bad
	}
	return nil
}

// WireLength is the number of bytes Send writes for n bytes of data.
func WireLength(n, bs int64) int64 { return n + 32*Count(n, bs) }
