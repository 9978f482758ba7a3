package session_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/qftp/qftp/fsjail"
	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/sessiontest"
	"github.com/qftp/qftp/session/userdb"
	"github.com/qftp/qftp/transport"
	"github.com/qftp/qftp/transport/blocks"
)

const mib = 1 << 20

// used returns the ledger's and the disk's idea of a user's usage.
func used(t *testing.T, ts *sessiontest.Server, name string) (ledger, disk int64) {
	t.Helper()
	u, err := ts.Users.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	j, err := fsjail.Open(filepath.Join(ts.HomeDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	n, err := j.Usage()
	if err != nil {
		t.Fatal(err)
	}
	return u.Used, n
}

// A striped upload of a file that fits the quota with little to spare:
// every range stream checks the quota as it joins, with the bytes the
// upload already reserved counted as its own.
func TestQuotaStripedNearlyFull(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, _ := ts.User(t, "nina")
	setQuota(t, ts, "nina", 20*mib)
	src := filepath.Join(t.TempDir(), "big")
	sessiontest.WriteFile(t, src, randomBytes(t, 18*mib))
	res, err := c.Put(t.Context(), src, "big", session.TransferOptions{Connections: 4})
	if err != nil {
		t.Fatalf("put of 18 MiB with 20 MiB of quota: %v", err)
	}
	if res.Links < 2 {
		t.Fatalf("the upload was not striped (%d connections)", res.Links)
	}
	if l, d := used(t, ts, "nina"); l != 18*mib || d != 18*mib {
		t.Fatalf("ledger %d, disk %d", l, d)
	}
}

// A put that replaces a large file holds the old one open across the
// rename and closes it after the reply: the new content is in place, the
// ledger counts only it, and once the server is idle no descriptor of the
// replaced file stays open.
func TestPutReplacesLargeFile(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "rosa")
	setQuota(t, ts, "rosa", 8*mib)
	local := t.TempDir()
	for i, v := range []byte{'a', 'b', 'c'} {
		src := filepath.Join(local, string(v))
		sessiontest.WriteFile(t, src, bytes.Repeat([]byte{v}, 3*mib+i))
		if _, err := c.Put(t.Context(), src, "big", session.TransferOptions{Force: true}); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		if got := sessiontest.ReadFile(t, filepath.Join(home, "big")); !bytes.Equal(got, bytes.Repeat([]byte{v}, 3*mib+i)) {
			t.Fatalf("put %d: wrong content", i)
		}
	}
	if err := ts.Srv.WaitIdle(t.Context()); err != nil {
		t.Fatal(err)
	}
	if l, d := used(t, ts, "rosa"); l != 3*mib+2 || d != 3*mib+2 {
		t.Fatalf("ledger %d, disk %d", l, d)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd to check for descriptors left open")
	}
	for _, fd := range fds {
		if target, _ := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); strings.HasPrefix(target, filepath.Join(home, "big")) && target != filepath.Join(home, "big") {
			t.Errorf("descriptor %s still open on %s", fd.Name(), target)
		}
	}
}

func setQuota(t *testing.T, ts *sessiontest.Server, name string, q int64) {
	t.Helper()
	if err := ts.Users.SetQuota(context.Background(), name, q); err != nil {
		t.Fatal(err)
	}
}

func TestQuota(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, _ := ts.User(t, "quinn")
	setQuota(t, ts, "quinn", 10*mib)
	ctx := t.Context()
	local := t.TempDir()
	six := filepath.Join(local, "six")
	sessiontest.WriteFile(t, six, randomBytes(t, 6*mib))
	three := filepath.Join(local, "three")
	sessiontest.WriteFile(t, three, randomBytes(t, 3*mib))

	if _, err := c.Put(ctx, six, "a", session.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Put(ctx, six, "b", session.TransferOptions{})
	if !errors.Is(err, transport.ErrQuota) || !strings.Contains(err.Error(), "quota exceeded: need 6 MiB, 4 MiB free") {
		t.Fatalf("over quota: %v", err)
	}
	if res.Sent > 2*mib {
		// Refused before the data, but the client may have sent what fit in
		// flight before the refusal arrived; it is never stored.
		t.Logf("sent %d bytes before the refusal", res.Sent)
	}
	if l, d := used(t, ts, "quinn"); l != 6*mib || d != 6*mib {
		t.Fatalf("after refusal: ledger %d, disk %d", l, d)
	}
	u, err := c.Df(ctx)
	if err != nil || u.Used != 6*mib || u.Quota != 10*mib {
		t.Fatalf("df = %+v, %v", u, err)
	}
	// Replacing releases the old file's bytes.
	if _, err := c.Put(ctx, three, "a", session.TransferOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if l, d := used(t, ts, "quinn"); l != 3*mib || d != 3*mib {
		t.Fatalf("after replace: ledger %d, disk %d", l, d)
	}
	if err := c.Remove(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if l, d := used(t, ts, "quinn"); l != 0 || d != 0 {
		t.Fatalf("after rm: ledger %d, disk %d", l, d)
	}
	// A quota set while the user is online applies at once.
	setQuota(t, ts, "quinn", mib)
	if _, err := c.Put(ctx, three, "a", session.TransferOptions{}); !errors.Is(err, transport.ErrQuota) {
		t.Fatalf("after quota change: %v", err)
	}
	// One byte over: sizes that round alike are given in bytes.
	over := filepath.Join(local, "over")
	sessiontest.WriteFile(t, over, randomBytes(t, mib+1))
	if _, err := c.Put(ctx, over, "a", session.TransferOptions{}); !strings.Contains(fmt.Sprint(err), "need 1048577 bytes, 1048576 bytes free") {
		t.Fatalf("one byte over the quota: %v", err)
	}
}

// A release of quota that the ledger refuses (its disk full, say) is kept
// and made once the ledger takes writes again: at the user's next quota
// check, or by the server's periodic retry. The bytes are never counted
// twice: a failure that may have been written is not retried, nor is one
// that a walk of the home (rescan) has counted since.
func TestQuotaReleaseRetried(t *testing.T) {
	t.Parallel()
	var failing atomic.Pointer[error] // what the ledger's releases fail with
	ts := sessiontest.Start(t, func(s *session.Server) {
		session.SetReleaseHook(s, func(string, int64) error {
			if err := failing.Load(); err != nil {
				return *err
			}
			return nil
		})
	})
	c, _ := ts.User(t, "rhea")
	setQuota(t, ts, "rhea", 10*mib)
	ctx := t.Context()
	six := filepath.Join(t.TempDir(), "six")
	sessiontest.WriteFile(t, six, randomBytes(t, 6*mib))
	check := func(when string, wantLedger, wantDisk int64) {
		t.Helper()
		if l, d := used(t, ts, "rhea"); l != wantLedger || d != wantDisk {
			t.Fatalf("%s: ledger %d, disk %d; want %d, %d", when, l, d, wantLedger, wantDisk)
		}
	}
	full := fmt.Errorf("database or disk is full: %w", userdb.ErrNotWritten)

	if _, err := c.Put(ctx, six, "a", session.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	failing.Store(&full)
	if err := c.Remove(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	check("rm while the ledger fails", 6*mib, 0)
	if _, err := c.Put(ctx, six, "b", session.TransferOptions{}); !errors.Is(err, transport.ErrQuota) {
		t.Fatalf("put while the ledger still fails: %v, want a quota refusal", err)
	}
	check("refused put", 6*mib, 0)
	// The ledger works again: the next put's quota check makes the
	// release first.
	failing.Store(nil)
	if _, err := c.Put(ctx, six, "b", session.TransferOptions{}); err != nil {
		t.Fatalf("put once the ledger works: %v", err)
	}
	check("put after the retry", 6*mib, 6*mib)
	session.SettleQuotas(ts.Srv) // nothing is owed: nothing changes
	check("nothing owed", 6*mib, 6*mib)

	// The periodic retry.
	failing.Store(&full)
	if err := c.Remove(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	session.SettleQuotas(ts.Srv)
	check("retried while still failing", 6*mib, 0)
	failing.Store(nil)
	session.SettleQuotas(ts.Srv)
	check("retried once it works", 0, 0)

	// A rescan while a release is owed counts it already: the retry must
	// not release the bytes again (that would leave "keep" uncounted).
	keep := filepath.Join(t.TempDir(), "keep")
	sessiontest.WriteFile(t, keep, randomBytes(t, 3*mib))
	if _, err := c.Put(ctx, keep, "keep", session.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, six, "d", session.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	failing.Store(&full)
	if err := c.Remove(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	check("rm while the ledger fails, again", 9*mib, 3*mib)
	failing.Store(nil)
	if _, err := session.Rescan(ctx, ts.Users, ts.HomeDir, "rhea", 0); err != nil {
		t.Fatal(err)
	}
	session.SettleQuotas(ts.Srv)
	check("retry after a rescan", 3*mib, 3*mib)
	if err := c.Remove(ctx, "keep"); err != nil {
		t.Fatal(err)
	}

	// A failure that may have been written is not made again (that could
	// count the bytes twice); the next rescan corrects the ledger.
	if _, err := c.Put(ctx, six, "c", session.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	unsure := errors.New("disk I/O error")
	failing.Store(&unsure)
	if err := c.Remove(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	failing.Store(nil)
	session.SettleQuotas(ts.Srv)
	check("after an unsure failure", 6*mib, 0)
}

// Concurrent uploads from several sessions of one user, each of which fits
// alone, never pass the quota together; the ones stopped leave nothing.
// Each reserves all it needs before its first byte, so as many succeed as
// fit, and the others are refused with figures that show why.
func TestQuotaConcurrent(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	ts.AddUser("rita", "pw")
	setQuota(t, ts, "rita", 10*mib)
	clients := []*session.Client{ts.Login(t, "rita", "pw"), ts.Login(t, "rita", "pw")}
	local := t.TempDir()
	const n = 6
	var wg sync.WaitGroup
	var ok, refused atomic.Int64
	for i := range n {
		src := filepath.Join(local, fmt.Sprint(i))
		sessiontest.WriteFile(t, src, randomBytes(t, 3*mib))
		wg.Go(func() {
			_, err := clients[i%2].Put(t.Context(), src, fmt.Sprintf("f%d", i), session.TransferOptions{})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, transport.ErrQuota):
				refused.Add(1)
				if !strings.Contains(err.Error(), "need 3 MiB, 1 MiB free") {
					t.Errorf("put %d: %v", i, err)
				}
			default:
				t.Errorf("put %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 3 || ok.Load()+refused.Load() != n {
		t.Fatalf("%d uploads succeeded, %d refused", ok.Load(), refused.Load())
	}
	l, d := used(t, ts, "rita")
	if l != ok.Load()*3*mib || d != l {
		t.Fatalf("ledger %d, disk %d, want %d", l, d, ok.Load()*3*mib)
	}
}

// The same with striped uploads: the losers are refused for the quota
// (not failed by their other streams' writes into a removed partial), and
// the winners complete.
func TestQuotaConcurrentStriped(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	ts.AddUser("stella", "pw")
	setQuota(t, ts, "stella", 40*mib)
	local := t.TempDir()
	const n, size = 3, 17 * mib
	var wg sync.WaitGroup
	var ok, refused atomic.Int64
	var loser atomic.Int64
	clients := make([]*session.Client, n)
	for i := range n {
		c := ts.Login(t, "stella", "pw")
		clients[i] = c
		src := filepath.Join(local, fmt.Sprint(i))
		sessiontest.WriteFile(t, src, randomBytes(t, size))
		wg.Go(func() {
			_, err := c.Put(t.Context(), src, fmt.Sprintf("f%d", i), session.TransferOptions{Connections: 4})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, transport.ErrQuota) && strings.Contains(err.Error(), "need 17 MiB, 6 MiB free"):
				refused.Add(1)
				loser.Store(int64(i))
			default:
				t.Errorf("put %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 2 || refused.Load() != 1 {
		t.Fatalf("%d uploads succeeded, %d refused", ok.Load(), refused.Load())
	}
	l, d := used(t, ts, "stella")
	if l != 2*size || d != l {
		t.Fatalf("ledger %d, disk %d, want %d", l, d, 2*size)
	}
	// Room made, the refused put goes through on the same session.
	i := int(loser.Load())
	if err := clients[i].Remove(t.Context(), fmt.Sprintf("f%d", (i+1)%n)); err != nil {
		t.Fatal(err)
	}
	if _, err := clients[i].Put(t.Context(), filepath.Join(local, fmt.Sprint(i)), fmt.Sprintf("f%d", i), session.TransferOptions{Connections: 4}); err != nil {
		t.Fatalf("put again after rm: %v", err)
	}
	if l, d := used(t, ts, "stella"); l != 2*size || d != l {
		t.Fatalf("ledger %d, disk %d, want %d", l, d, 2*size)
	}
}

func TestHash(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "hal")
	data := randomBytes(t, 3*mib+5)
	sessiontest.WriteFile(t, filepath.Join(home, "f"), data)
	b3 := blake3.Sum256(data)
	s2 := sha256.Sum256(data)
	got, err := c.Hash(t.Context(), "f", transport.AlgoBLAKE3)
	if err != nil || !bytes.Equal(got, b3[:]) {
		t.Fatalf("blake3 = %x, %v", got, err)
	}
	got, err = c.Hash(t.Context(), "/f", transport.AlgoSHA256)
	if err != nil || !bytes.Equal(got, s2[:]) {
		t.Fatalf("sha256 = %x, %v", got, err)
	}
	if _, err := c.Hash(t.Context(), "nope", ""); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}

// flipOnce corrupts one byte of the block at offset off, the first time
// only, as a bad link or bad memory would.
func flipOnce(off int64) func(int64, []byte) {
	var done atomic.Bool
	return func(o int64, b []byte) {
		if o == off && done.CompareAndSwap(false, true) {
			b[len(b)/2] ^= 0x40
		}
	}
}

func TestIntegrityPut(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "ian")
	data := randomBytes(t, 5*mib+123)
	src := filepath.Join(t.TempDir(), "src")
	sessiontest.WriteFile(t, src, data)

	res, err := c.Put(t.Context(), src, "f", session.TransferOptions{TestHookTamper: flipOnce(2 * mib)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sessiontest.ReadFile(t, filepath.Join(home, "f")), data) {
		t.Fatal("stored file differs")
	}
	// The corrupt block alone was sent again.
	bs := blocks.For(int64(len(data)))
	if res.Attempts != 2 || res.Sent != int64(len(data))+bs {
		t.Fatalf("attempts %d, sent %d, want 2 and %d", res.Attempts, res.Sent, int64(len(data))+bs)
	}
	b3 := blake3.Sum256(data)
	if got, _ := c.Hash(t.Context(), "f", ""); !bytes.Equal(got, b3[:]) {
		t.Fatal("hash differs")
	}

	// Corrupted on every try: the error names the file and the offset,
	// and nothing becomes visible.
	always := func(o int64, b []byte) {
		if o == 3*mib {
			b[0] ^= 1
		}
	}
	_, err = c.Put(t.Context(), src, "g", session.TransferOptions{TestHookTamper: always})
	if !errors.Is(err, transport.ErrIntegrity) || !strings.Contains(err.Error(), "put /g:") || !strings.Contains(err.Error(), "offset 3145728") {
		t.Fatalf("persistent corruption: %v", err)
	}
	if _, _, err := c.Stat(t.Context(), "g"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("corrupt upload visible: %v", err)
	}
}

func TestIntegrityGet(t *testing.T) {
	t.Parallel()
	var tamper atomic.Pointer[func(int64, []byte)]
	ts := sessiontest.Start(t, func(s *session.Server) {
		s.TestHookTamper = func(vp string, off int64, b []byte) {
			if f := tamper.Load(); f != nil {
				(*f)(off, b)
			}
		}
	})
	c, home := ts.User(t, "jo")
	data := randomBytes(t, 4*mib+7)
	sessiontest.WriteFile(t, filepath.Join(home, "f"), data)
	local := t.TempDir()

	once := flipOnce(mib)
	tamper.Store(&once)
	res, err := c.Get(t.Context(), "f", filepath.Join(local, "a"), session.TransferOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sessiontest.ReadFile(t, filepath.Join(local, "a")), data) {
		t.Fatal("downloaded file differs")
	}
	bs := blocks.For(int64(len(data)))
	if res.Attempts != 2 || res.Sent != int64(len(data))+bs {
		t.Fatalf("attempts %d, sent %d, want 2 and %d", res.Attempts, res.Sent, int64(len(data))+bs)
	}

	always := func(o int64, b []byte) {
		if o == 2*mib {
			b[5] ^= 1
		}
	}
	tamper.Store(&always)
	_, err = c.Get(t.Context(), "f", filepath.Join(local, "b"), session.TransferOptions{})
	if !errors.Is(err, blocks.ErrMismatch) || !strings.Contains(err.Error(), "get f:") || !strings.Contains(err.Error(), "offset 2097152") {
		t.Fatalf("persistent corruption: %v", err)
	}
	if _, err := os.Stat(filepath.Join(local, "b")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("corrupt download visible: %v", err)
	}
}

// A file downloaded again unchanged is sent with the digests its first
// download computed. A change that keeps size and mtime is seen by its
// ctime; digests that are wrong all the same (a change within one tick of
// the file system's clock) cost a retry with fresh ones, never wrong data.
func TestDigestCache(t *testing.T) {
	t.Parallel()
	if _, ok := fsjail.StampOf(statOf(t, t.TempDir())); !ok {
		t.Skip("no file stamps on this platform: nothing is cached")
	}
	ts := sessiontest.Start(t, func(s *session.Server) { session.TrustDigestsAfter(s, time.Nanosecond) })
	c, home := ts.User(t, "di")
	remote := filepath.Join(home, "f")
	data := randomBytes(t, 3*mib+5)
	sessiontest.WriteFile(t, remote, data)
	n := blocks.Count(int64(len(data)), blocks.For(int64(len(data))))
	dst := filepath.Join(t.TempDir(), "a")
	get := func(what string, want []byte, attempts int, hits int64) {
		t.Helper()
		res, err := c.Get(t.Context(), "f", dst, session.TransferOptions{Force: true})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if !bytes.Equal(sessiontest.ReadFile(t, dst), want) {
			t.Fatalf("%s: downloaded file differs", what)
		}
		if res.Attempts != attempts || session.DigestCacheHits(ts.Srv) != hits {
			t.Fatalf("%s: %d attempts, %d blocks sent with remembered digests; want %d and %d", what, res.Attempts, session.DigestCacheHits(ts.Srv), attempts, hits)
		}
	}
	get("first get", data, 1, 0)
	get("second get", data, 1, n)

	fi := statOf(t, remote)
	changed := bytes.Clone(data)
	changed[mib] ^= 1
	sessiontest.WriteFile(t, remote, changed)
	if err := os.Chtimes(remote, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	get("get after a change", changed, 1, n)

	session.SpoilDigestCache(ts.Srv)
	get("get with stale digests", changed, 2, 2*n)
	get("get after the retry", changed, 1, 3*n)
}

// The server keeps the digests it computed while receiving a put, so the
// file's first get need not hash it; like digests from a get, they are
// used only once the file's ctime is old enough.
func TestDigestsFromPut(t *testing.T) {
	t.Parallel()
	if _, ok := fsjail.StampOf(statOf(t, t.TempDir())); !ok {
		t.Skip("no file stamps on this platform: nothing is cached")
	}
	for _, tc := range []struct {
		name     string
		trust    time.Duration
		remember bool
	}{
		{"old enough", time.Nanosecond, true},
		{"too new", time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := sessiontest.Start(t, func(s *session.Server) { session.TrustDigestsAfter(s, tc.trust) })
			c, _ := ts.User(t, "dp")
			local := t.TempDir()
			src, dst := filepath.Join(local, "src"), filepath.Join(local, "dst")
			var hits int64
			for i, data := range [][]byte{randomBytes(t, 3*mib+5), randomBytes(t, 3*mib+5)} {
				// The second put replaces the first file (a new inode):
				// the get must not be sent the first one's digests.
				sessiontest.WriteFile(t, src, data)
				if _, err := c.Put(t.Context(), src, "f", session.TransferOptions{Force: true}); err != nil {
					t.Fatal(err)
				}
				res, err := c.Get(t.Context(), "f", dst, session.TransferOptions{Force: true})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(sessiontest.ReadFile(t, dst), data) || res.Attempts != 1 {
					t.Fatalf("put %d: downloaded file differs or took %d attempts", i, res.Attempts)
				}
				if tc.remember {
					hits += blocks.Count(int64(len(data)), blocks.For(int64(len(data))))
				}
				if got := session.DigestCacheHits(ts.Srv); got != hits {
					t.Fatalf("put %d: %d blocks sent with remembered digests, want %d", i, got, hits)
				}
			}
		})
	}
}

func statOf(t *testing.T, p string) fs.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// Kill the connection at a random point of a put and a get: the client
// reconnects by itself, resumes, and sends only what the other side lacks.
func TestResumeAfterKill(t *testing.T) {
	t.Parallel()
	size := 64 * mib
	if testing.Short() {
		size = 16 * mib
	}
	ts := sessiontest.Start(t)
	ts.AddUser("kit", "pw")
	data := randomBytes(t, size)
	local := t.TempDir()
	src := filepath.Join(local, "src")
	sessiontest.WriteFile(t, src, data)
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			c := ts.Login(t, "kit", "pw")
			rng := mrand.New(mrand.NewPCG(seed, 7))
			killAt := int64(2*mib + rng.IntN(size-4*mib))
			remote := fmt.Sprintf("/f%d", seed)
			var killed atomic.Bool
			var notes []string
			opts := session.TransferOptions{
				Progress: func(done, total int64) {
					if done >= killAt && killed.CompareAndSwap(false, true) {
						session.BreakConnection(c)
					}
				},
				Notify: func(m string) { notes = append(notes, m) },
			}
			res, err := c.Put(t.Context(), src, remote, opts)
			if err != nil {
				t.Fatal(err)
			}
			checkResumed(t, "put", res, int64(size))
			if !bytes.Equal(sessiontest.ReadFile(t, filepath.Join(ts.HomeDir, "kit", remote)), data) {
				t.Fatal("uploaded file differs")
			}

			killed.Store(false)
			dst := filepath.Join(t.TempDir(), "dst")
			res, err = c.Get(t.Context(), remote, dst, opts)
			if err != nil {
				t.Fatal(err)
			}
			checkResumed(t, "get", res, int64(size))
			if !bytes.Equal(sessiontest.ReadFile(t, dst), data) {
				t.Fatal("downloaded file differs")
			}
		})
	}
	if err := ts.Srv.WaitIdle(t.Context()); err != nil {
		t.Fatal(err)
	}
	if l, d := used(t, ts, "kit"); l != d {
		t.Fatalf("ledger %d, disk %d", l, d)
	}
}

// checkResumed asserts that a transfer cut once was resumed: a retry,
// and the bytes sent in all are the file plus at most what was in flight
// when the connection died (never a restart from zero).
func checkResumed(t *testing.T, op string, res session.TransferResult, size int64) {
	t.Helper()
	// A third try happens when the server has not yet noticed the old
	// connection's end and reports the upload busy; it sends nothing.
	if res.Attempts < 2 || res.Attempts > 4 {
		t.Fatalf("%s: %d attempts, want 2 (or a few more if busy)", op, res.Attempts)
	}
	// Kept + resent = size; resent = size - kept; the first attempt sent
	// at least kept. So Sent - size is what was lost in flight: bounded by
	// the stream's flow-control window plus a block.
	lost := res.Sent - size
	if lost < 0 || lost > 20*mib {
		t.Fatalf("%s: sent %d bytes for %d (lost %d)", op, res.Sent, size, lost)
	}
	if res.LastKept <= 0 || res.LastSent != size-res.LastKept {
		t.Fatalf("%s: resumed with %d kept, sent %d more; want only the missing %d", op, res.LastKept, res.LastSent, size-res.LastKept)
	}
}

func TestResumeAfterServerRestart(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	ts.AddUser("lou", "pw")
	c := ts.Login(t, "lou", "pw")
	data := randomBytes(t, 24*mib)
	src := filepath.Join(t.TempDir(), "src")
	sessiontest.WriteFile(t, src, data)
	restart := make(chan struct{})
	restarted := make(chan error, 1)
	go func() {
		<-restart
		restarted <- ts.Restart(0)
	}()
	var once atomic.Bool
	var mu sync.Mutex
	var notices []string
	res, err := c.Put(t.Context(), src, "f", session.TransferOptions{Progress: func(done, total int64) {
		if done > 10*mib && once.CompareAndSwap(false, true) {
			close(restart)
		}
	}, Notify: func(msg string) {
		mu.Lock()
		notices = append(notices, msg)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	// The user hears of the reconnection, once.
	mu.Lock()
	if n := strings.Count(strings.Join(notices, "\n"), "connection lost; reconnected after"); n != 1 {
		t.Errorf("notices %q: want one reconnection", notices)
	}
	mu.Unlock()
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sessiontest.ReadFile(t, filepath.Join(ts.HomeDir, "lou", "f")), data) {
		t.Fatal("uploaded file differs")
	}
	if res.Attempts < 2 || res.LastKept <= 0 || res.LastSent != int64(len(data))-res.LastKept {
		t.Fatalf("attempts %d, kept %d, last sent %d", res.Attempts, res.LastKept, res.LastSent)
	}
	if err := ts.Srv.WaitIdle(t.Context()); err != nil {
		t.Fatal(err)
	}
	if l, d := used(t, ts, "lou"); l != d || l != int64(len(data)) {
		t.Fatalf("ledger %d, disk %d", l, d)
	}
}

// putInterrupted puts src as remote, canceled once at bytes have gone,
// and waits until the server has let go of the upload.
func putInterrupted(t *testing.T, ts *sessiontest.Server, c *session.Client, src, remote string, at int64, resume session.Resume) {
	t.Helper()
	ctx, opts, cancel := interrupt(at)
	opts.Resume = resume
	_, err := c.Put(ctx, src, remote, opts)
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted put: %v", err)
	}
	if err := ts.Srv.WaitIdle(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// interrupt runs a transfer and cancels it once done passes at.
func interrupt(at int64) (context.Context, session.TransferOptions, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	return ctx, session.TransferOptions{Progress: func(done, total int64) {
		if done > at {
			cancel()
		}
	}}, cancel
}

func TestResumeManual(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "max")
	local := t.TempDir()
	src := filepath.Join(local, "src")
	data := randomBytes(t, 12*mib)
	sessiontest.WriteFile(t, src, data)

	// put: interrupted, then resumed by the next put of the same file.
	putInterrupted(t, ts, c, src, "f", 5*mib, session.ResumeAuto)
	entries, _, _ := c.List(t.Context(), "/")
	if len(entries) != 0 {
		t.Fatalf("partial upload listed: %v", entries)
	}
	if l, d := used(t, ts, "max"); l != d || l == 0 {
		t.Fatalf("partial not counted: ledger %d, disk %d", l, d)
	}
	var notes []string
	res, err := c.Put(t.Context(), src, "f", session.TransferOptions{Notify: func(m string) { notes = append(notes, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed == 0 || res.Sent != int64(len(data))-res.Resumed || len(notes) != 1 || !strings.Contains(notes[0], "resuming at") {
		t.Fatalf("resume: resumed %d, sent %d, notes %q", res.Resumed, res.Sent, notes)
	}
	if !bytes.Equal(sessiontest.ReadFile(t, filepath.Join(home, "f")), data) {
		t.Fatal("uploaded file differs")
	}

	// put: the local file changed after the interruption: start over.
	putInterrupted(t, ts, c, src, "g", 5*mib, session.ResumeAuto)
	data2 := randomBytes(t, 12*mib)
	sessiontest.WriteFile(t, src, data2)
	if err := os.Chtimes(src, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	res, err = c.Put(t.Context(), src, "g", session.TransferOptions{})
	if err != nil || res.Resumed != 0 || res.Sent != int64(len(data2)) {
		t.Fatalf("changed source: resumed %d, sent %d, %v", res.Resumed, res.Sent, err)
	}
	if !bytes.Equal(sessiontest.ReadFile(t, filepath.Join(home, "g")), data2) {
		t.Fatal("uploaded file differs")
	}

	// get: interrupted, then resumed.
	dst := filepath.Join(local, "dst")
	ctx, opts, cancel := interrupt(5 * mib)
	_, _ = c.Get(ctx, "g", dst, opts)
	cancel()
	notes = nil
	res, err = c.Get(t.Context(), "g", dst, session.TransferOptions{Notify: func(m string) { notes = append(notes, m) }})
	if err != nil || res.Resumed == 0 || res.Sent != int64(len(data2))-res.Resumed || len(notes) != 1 {
		t.Fatalf("get resume: resumed %d, sent %d, notes %q, %v", res.Resumed, res.Sent, notes, err)
	}
	if !bytes.Equal(sessiontest.ReadFile(t, dst), data2) {
		t.Fatal("downloaded file differs")
	}

	// get: the remote file changed meanwhile: start over, and say so.
	dst2 := filepath.Join(local, "dst2")
	ctx, opts, cancel = interrupt(5 * mib)
	_, _ = c.Get(ctx, "g", dst2, opts)
	cancel()
	sessiontest.WriteFile(t, filepath.Join(home, "g"), data)
	if err := os.Chtimes(filepath.Join(home, "g"), time.Now(), time.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	notes = nil
	res, err = c.Get(t.Context(), "g", dst2, session.TransferOptions{Notify: func(m string) { notes = append(notes, m) }})
	if err != nil || res.Resumed != 0 || res.Sent != int64(len(data)) || len(notes) != 1 || !strings.Contains(notes[0], "changed") {
		t.Fatalf("changed remote: resumed %d, sent %d, notes %q, %v", res.Resumed, res.Sent, notes, err)
	}
	if !bytes.Equal(sessiontest.ReadFile(t, dst2), data) {
		t.Fatal("downloaded file differs")
	}
	des, _ := os.ReadDir(local)
	for _, d := range des {
		if strings.Contains(d.Name(), ".qftp-part") {
			t.Fatalf("left behind: %s", d.Name())
		}
	}
}

// put -c keeps even a small file's upload resumable; without -c, the
// next put sends it whole.
func TestPutSmallResume(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "sue")
	src := filepath.Join(t.TempDir(), "src")
	data := randomBytes(t, 3*mib)
	sessiontest.WriteFile(t, src, data)
	putInterrupted(t, ts, c, src, "f", 2*mib, session.ResumeAlways)
	res, err := c.Put(t.Context(), src, "f", session.TransferOptions{Resume: session.ResumeAlways})
	if err != nil || res.Resumed == 0 || res.Sent != int64(len(data))-res.Resumed {
		t.Fatalf("put -c again: resumed %d, sent %d, %v", res.Resumed, res.Sent, err)
	}
	if !bytes.Equal(sessiontest.ReadFile(t, filepath.Join(home, "f")), data) {
		t.Fatal("uploaded file differs")
	}
	sessiontest.NoTempFiles(t, home)
}

// A remote file that changes during a striped get: the get starts over
// (its other ranges must not scribble records into the emptied journal,
// which left a file "in the way" of every later try), and ends with the
// new contents.
func TestGetStripedRemoteChanges(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "cha")
	remote := filepath.Join(home, "g")
	sessiontest.WriteFile(t, remote, randomBytes(t, 24*mib))
	data := randomBytes(t, 25*mib)
	dst := filepath.Join(t.TempDir(), "dst")
	var once sync.Once
	opt := session.TransferOptions{Connections: 4, Progress: func(done, total int64) {
		if done > 6*mib {
			once.Do(func() {
				// Replaced in place, as an editor or a log writer would.
				f, err := os.OpenFile(remote, os.O_WRONLY, 0)
				if err == nil {
					_, err = f.WriteAt(data, 0)
					_ = f.Close()
				}
				if err != nil {
					t.Error(err)
				}
				if err := os.Chtimes(remote, time.Now(), time.Now().Add(time.Hour)); err != nil {
					t.Error(err)
				}
			})
		}
	}}
	for try := range 2 { // the first may give up, saying why; the next must work
		_, err := c.Get(t.Context(), "g", dst, opt)
		if err == nil {
			break
		}
		if strings.Contains(err.Error(), "in the way") || try == 1 {
			t.Fatalf("get %d: %v", try, err)
		}
	}
	if !bytes.Equal(sessiontest.ReadFile(t, dst), data) {
		t.Fatal("downloaded file differs from the remote file as it is now")
	}
}

func TestReconcileAndSweep(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "ned")
	// Files changed out of band.
	sessiontest.WriteFile(t, filepath.Join(home, "a"), make([]byte, 1000))
	sessiontest.WriteFile(t, filepath.Join(home, "sub", "b"), make([]byte, 500))
	// An interrupted upload.
	src := filepath.Join(t.TempDir(), "src")
	sessiontest.WriteFile(t, src, randomBytes(t, 8*mib))
	ctx, opts, cancel := interrupt(3 * mib)
	_, _ = c.Put(ctx, src, "big", opts)
	cancel()
	if err := ts.Srv.WaitIdle(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := ts.Srv.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	l, d := used(t, ts, "ned")
	if l != d || l <= 1500 {
		t.Fatalf("after reconcile: ledger %d, disk %d", l, d)
	}
	// Age the partial past the limit: the next sweep removes it.
	des, _ := os.ReadDir(home)
	old := time.Now().Add(-8 * 24 * time.Hour)
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".qftp-") {
			if err := os.Chtimes(filepath.Join(home, de.Name()), old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := ts.Srv.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if l, d := used(t, ts, "ned"); l != 1500 || d != 1500 {
		t.Fatalf("after sweep: ledger %d, disk %d", l, d)
	}
}

func TestLedgerEdgeCases(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "edge")
	ctx := t.Context()
	local := t.TempDir()
	src := filepath.Join(local, "a")
	sessiontest.WriteFile(t, src, randomBytes(t, 5*mib+3))
	if _, err := c.Put(ctx, src, "a", session.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	// mv -f onto itself frees nothing.
	for _, to := range []string{"a", "/", "/a"} {
		_ = c.Rename(ctx, "a", to, true)
	}
	if l, d := used(t, ts, "edge"); l != d || l != 5*mib+3 {
		t.Fatalf("after mv -f onto itself: ledger %d, disk %d", l, d)
	}

	// All blocks arrived but the commit did not: the next put only commits
	// (the file's size is not a multiple of the block size).
	str, err := session.OpenRawStream(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(src)
	f, _ := os.Open(src)
	defer f.Close()
	hdr := transport.TransferRequest{Op: transport.OpPut, Path: "/b", Size: fi.Size(), Length: fi.Size(), Mtime: fi.ModTime().UnixNano(), BlockSize: blocks.For(fi.Size())}
	if err := transport.WriteFrame(str, &hdr); err != nil {
		t.Fatal(err)
	}
	if _, err := blocks.Send(str, f, 0, fi.Size(), blocks.For(fi.Size()), blocks.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := transport.WriteFrame(str, &transport.Trailer{Bytes: fi.Size()}); err != nil {
		t.Fatal(err)
	}
	var reply transport.TransferReply
	if err := transport.ReadFrame(str, &reply); err != nil || reply.Err != nil {
		t.Fatalf("range without commit: %+v, %v", reply, err)
	}
	_ = str.Close()
	if err := ts.Srv.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := c.Put(ctx, src, "b", session.TransferOptions{})
	if err != nil || res.Sent != 0 || res.Resumed != fi.Size() {
		t.Fatalf("commit only: %+v, %v", res, err)
	}

	// rm of a name with only a partial upload drops the partial.
	ctx2, opts, cancel := interrupt(2 * mib)
	_, _ = c.Put(ctx2, src, "c", opts)
	cancel()
	if err := ts.Srv.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(ctx, "c"); err != nil {
		t.Fatalf("rm of a partial: %v", err)
	}
	if l, d := used(t, ts, "edge"); l != d || l != 2*(5*mib+3) {
		t.Fatalf("after rm of partial: ledger %d, disk %d", l, d)
	}

	// A get of a missing file leaves nothing locally.
	if _, err := c.Get(ctx, "nope", filepath.Join(local, "nope"), session.TransferOptions{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if des, _ := os.ReadDir(local); len(des) != 1 {
		t.Fatalf("local dir: %v", des)
	}

	// Absurd sizes are refused, not a crash.
	for _, size := range []int64{1 << 60, 1<<63 - 1} {
		str, err := session.OpenRawStream(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		_ = transport.WriteFrame(str, &transport.TransferRequest{Op: transport.OpPut, Path: "/huge", Size: size, Length: 0, Commit: true, BlockSize: 4096})
		var reply transport.TransferReply
		if err := transport.ReadFrame(str, &reply); err != nil || reply.Err == nil || reply.Err.Code != transport.CodeInvalid {
			t.Fatalf("size %d: %+v, %v", size, reply, err)
		}
	}

	// After a reconnection, relative paths still mean the old directory.
	if err := c.Mkdir(ctx, "d", false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cd(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	sessiontest.WriteFile(t, filepath.Join(home, "important"), []byte("keep"))
	session.BreakConnection(c)
	if err := c.Remove(ctx, "important"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("rm after reconnect: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "important")); err != nil {
		t.Fatal("wrong file removed")
	}
	if c.Cwd() != "/d" {
		t.Fatalf("cwd after reconnect %q", c.Cwd())
	}
}

// A user's rate cap holds for the sum of all their sessions' transfers.
// (A lower bound on time only: a cap cannot make anything faster.)
func TestUserRate(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	home := ts.AddUser("rat", "pw")
	if err := ts.Users.SetRate(context.Background(), "rat", mib); err != nil {
		t.Fatal(err)
	}
	sessiontest.WriteFile(t, filepath.Join(home, "f"), randomBytes(t, 3*mib/2))
	a, b := ts.Login(t, "rat", "pw"), ts.Login(t, "rat", "pw")
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range []*session.Client{a, b} {
		wg.Go(func() {
			if _, err := c.Get(t.Context(), "f", filepath.Join(t.TempDir(), fmt.Sprint(i)), session.TransferOptions{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// 3 MiB at 1 MiB/s with a 1 MiB burst: at least 2 s.
	if d := time.Since(start); d < 1800*time.Millisecond {
		t.Fatalf("3 MiB took %v under a 1 MiB/s cap", d)
	}
	// The client knows the cap from its login, and df says it and
	// brings it up to date; batches pace themselves by it.
	if got := session.ServerRate(a); got != mib {
		t.Fatalf("rate cap known from the login: %d", got)
	}
	if err := ts.Users.SetRate(t.Context(), "rat", 0); err != nil {
		t.Fatal(err)
	}
	if u, err := a.Df(t.Context()); err != nil || u.Rate != 0 || session.ServerRate(a) != 0 {
		t.Fatalf("df after lifting the cap: %+v, %v; known %d", u, err, session.ServerRate(a))
	}
	if err := ts.Users.SetRate(t.Context(), "rat", 3*mib); err != nil {
		t.Fatal(err)
	}
	if u, err := b.Df(t.Context()); err != nil || u.Rate != 3*mib || session.ServerRate(b) != 3*mib {
		t.Fatalf("df after a new cap: %+v, %v; known %d", u, err, session.ServerRate(b))
	}
}

// A user deleted while logged in is logged out at their next transfer.
// A user deleted, or whose password was changed, since login is logged
// out: at the next transfer, and by the server's periodic check in a
// session that only sends control requests. Other changes log nobody out.
func TestRevokedSessionsEnd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(ctx context.Context, u *userdb.Store) error
		why    string // "" for a change that ends no session
	}{
		{"delete", func(ctx context.Context, u *userdb.Store) error { return u.Delete(ctx, "ann") }, "user no longer exists"},
		{"passwd", func(ctx context.Context, u *userdb.Store) error { return u.SetPassword(ctx, "ann", "new") }, "password changed since login; log in again"},
		{"quota", func(ctx context.Context, u *userdb.Store) error { return u.SetQuota(ctx, "ann", 1<<30) }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := sessiontest.Start(t)
			home := ts.AddUser("ann", "pw")
			sessiontest.WriteFile(t, filepath.Join(home, "f"), []byte("x"))
			mover, lister := ts.Login(t, "ann", "pw"), ts.Login(t, "ann", "pw")
			if err := tc.change(t.Context(), ts.Users); err != nil {
				t.Fatal(err)
			}
			// A join with the session's token is refused at once.
			if n, err := mover.Widen(t.Context(), 2); tc.why == "" && (err != nil || n != 2) || tc.why != "" && (err == nil || n != 1) {
				t.Fatalf("join after the change: %d connections, %v", n, err)
			}
			_, err := mover.Get(t.Context(), "f", filepath.Join(t.TempDir(), "f"), session.TransferOptions{})
			if tc.why == "" {
				if err != nil {
					t.Fatalf("get: %v", err)
				}
			} else if !errors.Is(err, transport.ErrAuth) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("get: %v, want an authentication error saying %q", err, tc.why)
			}
			session.CheckSessions(ts.Srv)
			// The lister's connection was closed, saying why. The client
			// does not log in again with the old password: each try would
			// count as a failed login from this address, and enough of
			// them lock out everyone behind it.
			ts.AddUser("bob", "pw")
			for range 12 {
				_, _, err = lister.List(t.Context(), "/")
				if tc.why == "" && err != nil || tc.why != "" && (!errors.Is(err, transport.ErrAuth) || !strings.Contains(err.Error(), tc.why)) {
					t.Fatalf("list after the check: %v", err)
				}
			}
			ts.Login(t, "bob", "pw")
		})
	}
}

// rmdir of a directory that looks empty but holds an interrupted upload
// drops the partial upload (as rm of its name would), gives its bytes back
// to the quota and removes the directory.
func TestRmdirDropsPartialUploads(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "ria")
	src := filepath.Join(t.TempDir(), "src")
	sessiontest.WriteFile(t, src, randomBytes(t, 8*mib))
	if err := c.Mkdir(t.Context(), "d", false); err != nil {
		t.Fatal(err)
	}
	ctx, opts, cancel := interrupt(2 * mib)
	_, err := c.Put(ctx, src, "d/big", opts)
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted put: %v", err)
	}
	if err := ts.Srv.WaitIdle(t.Context()); err != nil {
		t.Fatal(err)
	}
	if l, d := used(t, ts, "ria"); l == 0 || l != d {
		t.Fatalf("after the interrupted put: ledger %d, disk %d", l, d)
	}
	if entries, _, err := c.List(t.Context(), "d"); err != nil || len(entries) != 0 {
		t.Fatalf("ls d: %v, %v", entries, err)
	}
	// Written to a moment ago, the partial may be a striped upload's
	// between its pieces: rmdir waits for it to be quiet a while.
	if err := c.Rmdir(t.Context(), "d"); !errors.Is(err, syscall.ENOTEMPTY) || !strings.Contains(err.Error(), "try again in a moment") {
		t.Fatalf("rmdir right after the upload: %v", err)
	}
	parts, _ := filepath.Glob(filepath.Join(home, "d", fsjail.ReservedPrefix+"*"))
	old := time.Now().Add(-time.Minute)
	for _, p := range parts {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Rmdir(t.Context(), "d"); err != nil {
		t.Fatalf("rmdir of a directory holding only a partial upload: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "d")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("d still there: %v", err)
	}
	if l, d := used(t, ts, "ria"); l != 0 || d != 0 {
		t.Fatalf("after rmdir: ledger %d, disk %d", l, d)
	}
}

// rmdir leaves a directory alone while an upload into it runs, even one
// whose partial it could lock at that moment, and the upload completes.
func TestRmdirWhileUploading(t *testing.T) {
	t.Parallel()
	// The server paces the upload (the user's rate cap): its hook says
	// when the server is receiving it.
	receiving := make(chan struct{})
	var once sync.Once
	ts := sessiontest.Start(t, func(s *session.Server) {
		session.SetPaceHook(s, func(string, int64) { once.Do(func() { close(receiving) }) })
	})
	c, home := ts.User(t, "rudi")
	if err := ts.Users.SetRate(t.Context(), "rudi", 4*mib); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src")
	data := randomBytes(t, 2*mib)
	sessiontest.WriteFile(t, src, data)
	if err := c.Mkdir(t.Context(), "d", false); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Put(t.Context(), src, "d/f", session.TransferOptions{})
		done <- err
	}()
	select {
	case <-receiving:
	case err := <-done:
		t.Fatalf("the upload ended before the server paced it: %v", err)
	}
	if err := c.Rmdir(t.Context(), "d"); !errors.Is(err, syscall.ENOTEMPTY) || !strings.Contains(err.Error(), "an upload into it") {
		t.Fatalf("rmdir during an upload: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the upload: %v", err)
	}
	if got := sessiontest.ReadFile(t, filepath.Join(home, "d", "f")); !bytes.Equal(got, data) {
		t.Fatal("uploaded file differs")
	}
}
