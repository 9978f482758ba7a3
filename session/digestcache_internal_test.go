package session

import (
	"testing"

	"github.com/qftp/qftp/fsjail"
	"github.com/qftp/qftp/transport/blocks"
)

func TestDigestCacheBounds(t *testing.T) {
	t.Parallel()
	const bs = blocks.Small
	var dc digestCache
	stamp := func(ino uint64, size int64) fsjail.Stamp {
		return fsjail.Stamp{Dev: 1, Ino: ino, Size: size, Mtime: 5, Ctime: 7}
	}
	ds := func(n int64) []blocks.Digest { return make([]blocks.Digest, n) }

	// Blocks are known only once added, and only for the same version.
	a := stamp(1, 10*bs)
	if dc.known(a, bs) != nil {
		t.Fatal("empty cache knows a file")
	}
	dc.add(a, bs, 2, ds(3), nil)
	k := dc.known(a, bs)
	for idx, want := range []bool{false, false, true, true, true, false} {
		if _, ok := k(int64(idx)); ok != want {
			t.Errorf("block %d known: %v, want %v", idx, ok, want)
		}
	}
	// Digests marked as skipped (sent from the cache) are not recorded.
	dc.add(a, bs, 6, ds(2), []bool{true, false})
	if _, ok := k(6); ok {
		t.Fatal("skipped digest recorded")
	}
	if _, ok := k(7); !ok {
		t.Fatal("digest after a skipped one not recorded")
	}
	changed := a
	changed.Ctime++
	if dc.known(changed, bs) != nil || dc.known(a, 2*bs) != nil {
		t.Fatal("another version or block size is known")
	}
	// A range past the file's end is not recorded.
	dc.add(a, bs, 9, ds(2), nil)
	if _, ok := k(9); ok {
		t.Fatal("range past the end recorded")
	}
	// A newer version replaces the entry.
	dc.add(changed, bs, 0, ds(1), nil)
	if dc.known(a, bs) != nil || len(dc.entries) != 1 {
		t.Fatal("old version kept")
	}
	// Nor is a small file: hashing it again costs less.
	dc.add(stamp(3, minDigestFile-1), bs, 0, ds(1), nil)
	if dc.known(stamp(3, minDigestFile-1), bs) != nil {
		t.Fatal("small file cached")
	}
	// A file whose digests would take more than a quarter is not kept.
	big := stamp(2, (maxDigestBytes/4/33+1)*bs)
	dc.add(big, bs, 0, ds(1), nil)
	if dc.known(big, bs) != nil {
		t.Fatal("huge file cached")
	}
	// Four files of a quarter each fill it; a fifth evicts the least
	// recently used one.
	dc = digestCache{}
	per := int64((maxDigestBytes/4 - entryOverhead) / 33)
	for ino := uint64(10); ino < 14; ino++ {
		dc.add(stamp(ino, per*bs), bs, 0, ds(1), nil)
	}
	dc.known(stamp(10, per*bs), bs)
	dc.add(stamp(14, per*bs), bs, 0, ds(1), nil)
	if dc.bytes > maxDigestBytes {
		t.Fatalf("%d bytes held, bound %d", dc.bytes, maxDigestBytes)
	}
	if dc.known(stamp(11, per*bs), bs) != nil || dc.known(stamp(10, per*bs), bs) == nil || dc.known(stamp(14, per*bs), bs) == nil {
		t.Fatal("evicted another entry than the least recently used")
	}
	// drop forgets whatever version, and of the same version only the
	// blocks asked for.
	dc.drop(stamp(14, 1), bs, 0, 1)
	if dc.known(stamp(14, per*bs), bs) != nil {
		t.Fatal("dropped entry kept")
	}
	dc = digestCache{}
	dc.add(a, bs, 0, ds(10), nil)
	dc.drop(a, bs, 3, 4)
	k = dc.known(a, bs)
	for idx := range int64(10) {
		if _, ok := k(idx); ok != (idx < 3 || idx >= 7) {
			t.Errorf("after dropping blocks 3-6, block %d known: %v", idx, ok)
		}
	}
	dc.drop(a, 2*bs, 0, 1)
	if dc.known(a, bs) != nil {
		t.Fatal("entry of another block size kept")
	}
}
