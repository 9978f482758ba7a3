package session

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qftp/qftp/fsjail"
	"github.com/qftp/qftp/transport/blocks"
)

// digestCache remembers the block digests of files the server has sent or
// received, by the file's stamp (inode, size, mtime and ctime), so that a
// file downloaded again unchanged, or after its upload, is not hashed
// again: on loopback hashing is a tenth of a get's CPU on the server's
// side.
//
// A stamp may stay the same across a change made within the same tick of
// the file system's clock as the change before it. So a get keeps digests
// only for a file whose ctime was at least digestTrustAge old when its
// blocks were read: any later change gives it a newer ctime. A put's
// digests are filed under the stamp just after the commit, if the mtime
// is still the one the commit set; a change in that same tick that also
// restored the mtime would go unseen (on file systems with coarse change
// times). Gets use digests of either kind only for a file whose ctime is
// digestTrustAge old. What is left (that; a writer through a shared
// mapping, which updates times lazily; a clock set back) costs no wrong
// data: the client verifies every block against the digest it is sent,
// and asks again with Rehash, which bypasses and drops the entry, when
// one does not verify.
type digestCache struct {
	mu      sync.Mutex
	entries map[fileKey]*list.Element // of *digestEntry
	lru     list.List                 // front: most recently used
	bytes   int64                     // digest bytes held
	hits    atomic.Int64              // blocks served without hashing (tests)
}

type fileKey struct{ dev, ino uint64 }

type digestEntry struct {
	key   fileKey
	stamp fsjail.Stamp
	bs    int64
	ds    []blocks.Digest
	have  []bool
}

const (
	// digestTrustAge is how old a file's ctime must be for its digests
	// to be kept: far beyond any file system's timestamp granularity.
	digestTrustAge = 2 * time.Second
	// maxDigestBytes bounds the cache: 16 MiB of digests cover 128 GiB
	// of files in 256 KiB blocks. One file may use a quarter of it. Each
	// entry counts entryOverhead bytes more (its map slot, list element
	// and headers), so that a tree of small files cannot fill the heap.
	maxDigestBytes = 16 << 20
	entryOverhead  = 256
	// minDigestFile is the size below which a file's digests are not
	// kept: hashing it again costs less than remembering it.
	minDigestFile = 1 << 20
)

// worthRemembering reports whether the digests of a file of size bytes
// are kept.
func worthRemembering(size int64) bool { return size >= minDigestFile }

func keyOf(st fsjail.Stamp) fileKey { return fileKey{st.Dev, st.Ino} }

// known returns a lookup of the digests held for the file with stamp st
// in blocks of bs, or nil if none are.
func (dc *digestCache) known(st fsjail.Stamp, bs int64) func(idx int64) (blocks.Digest, bool) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	el := dc.entries[keyOf(st)]
	if el == nil {
		return nil
	}
	e := el.Value.(*digestEntry)
	if e.stamp != st || e.bs != bs {
		return nil
	}
	dc.lru.MoveToFront(el)
	return func(idx int64) (blocks.Digest, bool) {
		dc.mu.Lock()
		defer dc.mu.Unlock()
		if idx < 0 || idx >= int64(len(e.have)) || !e.have[idx] {
			return blocks.Digest{}, false
		}
		dc.hits.Add(1)
		return e.ds[idx], true
	}
}

// add records the digests ds of the blocks from index first on, read from
// the file with stamp st in blocks of bs, except those that skip (if not
// nil) marks. An entry for another version of the file is replaced.
func (dc *digestCache) add(st fsjail.Stamp, bs, first int64, ds []blocks.Digest, skip []bool) {
	n := blocks.Count(st.Size, bs)
	if !worthRemembering(st.Size) || n*int64(len(blocks.Digest{})+1) > maxDigestBytes/4 || first < 0 || first+int64(len(ds)) > n {
		return
	}
	dc.mu.Lock()
	defer dc.mu.Unlock()
	k := keyOf(st)
	var e *digestEntry
	if el := dc.entries[k]; el != nil {
		e = el.Value.(*digestEntry)
		if e.stamp == st && e.bs == bs {
			dc.lru.MoveToFront(el)
		} else {
			dc.removeLocked(el)
			e = nil
		}
	}
	if e == nil {
		e = &digestEntry{key: k, stamp: st, bs: bs, ds: make([]blocks.Digest, n), have: make([]bool, n)}
		if dc.entries == nil {
			dc.entries = make(map[fileKey]*list.Element)
		}
		dc.entries[k] = dc.lru.PushFront(e)
		dc.bytes += entryBytes(e)
		for dc.bytes > maxDigestBytes {
			dc.removeLocked(dc.lru.Back())
		}
	}
	for i, d := range ds {
		if i < len(skip) && skip[i] {
			continue
		}
		e.ds[first+int64(i)] = d
		e.have[first+int64(i)] = true
	}
}

// drop forgets the digests of n blocks of bs from index first of the file
// with stamp st, and everything kept of its inode in another version or
// block size. A striped download's ranges each ask for fresh digests
// when retried; dropping only their own blocks keeps what another range
// has just hashed.
func (dc *digestCache) drop(st fsjail.Stamp, bs, first, n int64) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	el := dc.entries[keyOf(st)]
	if el == nil {
		return
	}
	e := el.Value.(*digestEntry)
	if e.stamp != st || e.bs != bs {
		dc.removeLocked(el)
		return
	}
	for i := max(first, 0); i < min(first+n, int64(len(e.have))); i++ {
		e.have[i] = false
	}
}

func (dc *digestCache) removeLocked(el *list.Element) {
	e := dc.lru.Remove(el).(*digestEntry)
	delete(dc.entries, e.key)
	dc.bytes -= entryBytes(e)
}

func entryBytes(e *digestEntry) int64 {
	return entryOverhead + int64(len(e.ds))*int64(len(blocks.Digest{})+1)
}
