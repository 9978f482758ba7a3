package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/qftp/qftp/transport"
	"github.com/qftp/qftp/transport/blocks"
)

// journalHeader starts a partial upload's journal (and a client's partial
// download's): the source it belongs to. Records of verified blocks follow.
type journalHeader struct {
	Path  string `cbor:"path"`
	Size  int64  `cbor:"size"`
	Mtime int64  `cbor:"mtime"`
	BS    int64  `cbor:"bs"`
}

// recordSize is one journal record: block index (8 bytes, little endian)
// and the block's digest.
const recordSize = 8 + 32

// journal tracks which blocks of a partial file are written and verified.
// A record is appended after its block is written; without fsync, a crash
// may lose a record (the block is sent again) or keep a record whose block
// did not reach the disk (the block fails re-verification on resume and is
// sent again). Either way nothing unverified is ever published.
type journal struct {
	f    *os.File
	hdr  journalHeader
	have map[int64]blocks.Digest
}

// readJournal loads f. It reports ok=false (and no error) if f is empty or
// unreadable as a journal, which callers treat as "no usable partial".
func readJournal(f *os.File) (*journal, bool, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, false, err
	}
	j := &journal{f: f, have: make(map[int64]blocks.Digest)}
	if err := transport.ReadFrame(f, &j.hdr); err != nil {
		return j, false, nil
	}
	if j.hdr.BS <= 0 || j.hdr.BS > blocks.MaxSize || j.hdr.Size < 0 {
		return j, false, nil
	}
	n := blocks.Count(j.hdr.Size, j.hdr.BS)
	var rec [recordSize]byte
	for {
		if _, err := io.ReadFull(f, rec[:]); err != nil {
			// A torn last record (crash mid-append) is dropped.
			break
		}
		idx := int64(binary.LittleEndian.Uint64(rec[:8]))
		if idx < 0 || idx >= n {
			continue
		}
		var d blocks.Digest
		copy(d[:], rec[8:])
		j.have[idx] = d
	}
	return j, true, nil
}

// resetJournal empties f and writes hdr.
func resetJournal(f *os.File, hdr journalHeader) (*journal, error) {
	if f == nil { // kept in memory only
		return &journal{hdr: hdr, have: make(map[int64]blocks.Digest)}, nil
	}
	if err := f.Truncate(0); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if err := transport.WriteFrame(f, &hdr); err != nil {
		return nil, err
	}
	return &journal{f: f, hdr: hdr, have: make(map[int64]blocks.Digest)}, nil
}

// add appends a record for a verified block (only in memory for a journal
// without a file).
func (j *journal) add(idx int64, d blocks.Digest) error {
	if j.f == nil {
		j.have[idx] = d
		return nil
	}
	var rec [recordSize]byte
	binary.LittleEndian.PutUint64(rec[:8], uint64(idx))
	copy(rec[8:], d[:])
	if _, err := j.f.Seek(0, io.SeekEnd); err != nil {
		return err
	}
	if _, err := j.f.Write(rec[:]); err != nil {
		return err
	}
	j.have[idx] = d
	return nil
}

// complete returns the digests of all blocks in order, or an error naming
// the first missing block.
func (j *journal) complete() ([]blocks.Digest, error) {
	n := blocks.Count(j.hdr.Size, j.hdr.BS)
	if int64(len(j.have)) < n {
		for i := range n {
			if _, ok := j.have[i]; !ok {
				return nil, fmt.Errorf("block %d (offset %d) is missing", i, i*j.hdr.BS)
			}
		}
	}
	ds := make([]blocks.Digest, n)
	for i := range n {
		d, ok := j.have[i]
		if !ok {
			return nil, fmt.Errorf("block %d (offset %d) is missing", i, i*j.hdr.BS)
		}
		ds[i] = d
	}
	return ds, nil
}

// verify re-reads every recorded block from data and drops the records
// whose data no longer matches (lost in a crash, changed on disk). It
// returns the indices kept, in order.
func (j *journal) verify(data io.ReaderAt) ([]int64, error) {
	buf := make([]byte, j.hdr.BS)
	var kept []int64
	n := blocks.Count(j.hdr.Size, j.hdr.BS)
	for i := range n {
		d, ok := j.have[i]
		if !ok {
			continue
		}
		m := min(j.hdr.BS, j.hdr.Size-i*j.hdr.BS)
		if _, err := data.ReadAt(buf[:m], i*j.hdr.BS); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		} else if err != nil {
			delete(j.have, i)
			continue
		}
		if blocks.Sum(buf[:m]) != d {
			delete(j.have, i)
			continue
		}
		kept = append(kept, i)
	}
	return kept, nil
}

// rewrite writes the journal file anew from memory: the header and one
// record per block held.
func (j *journal) rewrite() error {
	have := j.have
	nj, err := resetJournal(j.f, j.hdr)
	if err != nil {
		return err
	}
	for i := range blocks.Count(j.hdr.Size, j.hdr.BS) {
		if d, ok := have[i]; ok {
			if err := nj.add(i, d); err != nil {
				return err
			}
		}
	}
	j.have = nj.have
	return nil
}
