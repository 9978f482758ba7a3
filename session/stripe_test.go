package session_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/sessiontest"
	"github.com/qftp/qftp/transport"
	"github.com/qftp/qftp/transport/blocks"
	"github.com/qftp/qftp/transport/relay"
)

// A large file spread over several connections through a lossy,
// reordering link arrives byte-exact in both directions.
func TestStripedLossyLink(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	home := ts.AddUser("sam", "pw")
	link := relay.Link{Delay: 5 * time.Millisecond, Loss: 0.01, Reorder: 0.01}
	r, err := relay.New(ts.Addr, link, link, 42)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	c := ts.DialVia(t, r.Addr(), "sam", "pw", session.RetryPolicy{})
	size := 32 << 20
	data := randomBytes(t, size)
	src := filepath.Join(t.TempDir(), "src")
	sessiontest.WriteFile(t, src, data)
	opt := session.TransferOptions{Connections: 4}
	res, err := c.Put(t.Context(), src, "f", opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.Links != 4 {
		t.Fatalf("put used %d connections, want 4", res.Links)
	}
	if !bytes.Equal(sessiontest.ReadFile(t, filepath.Join(home, "f")), data) {
		t.Fatal("uploaded file differs")
	}
	dst := filepath.Join(t.TempDir(), "dst")
	res, err = c.Get(t.Context(), "f", dst, opt)
	if err != nil || res.Links != 4 {
		t.Fatalf("get: %d connections, %v", res.Links, err)
	}
	if !bytes.Equal(sessiontest.ReadFile(t, dst), data) {
		t.Fatal("downloaded file differs")
	}
	if s := r.Stats(); s.Dropped == 0 {
		t.Fatalf("the link dropped nothing: %+v", s)
	}
}

// A striped download disrupted a third of the way in completes without
// anyone stepping in, byte-exact:
//   - a 10-second blackout (every packet dropped, both ways): the
//     connections are closed as stalled, or outlive it;
//   - the server forgetting its connections (it crashed and came back, as
//     after a blackout in which its sends failed): the client's
//     connections, only waiting for data, send nothing big enough to draw
//     a stateless reset, and without the stall watchdog would wait out
//     the 60 s idle timeout.
func TestStripedDisruption(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		disrupt    func(ts *sessiontest.Server, r *relay.Relay) error
		stallAfter time.Duration // 0: the default
	}{
		{"blackout", func(_ *sessiontest.Server, r *relay.Relay) error { r.Blackout(10 * time.Second); return nil }, 0},
		{"server forgets", func(ts *sessiontest.Server, _ *relay.Relay) error { return ts.Crash() }, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := sessiontest.Start(t)
			home := ts.AddUser("bo", "pw")
			r, err := relay.New(ts.Addr, relay.Link{Delay: 2 * time.Millisecond}, relay.Link{Delay: 2 * time.Millisecond}, 7)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })
			c := ts.DialVia(t, r.Addr(), "bo", "pw", session.RetryPolicy{})
			if tc.stallAfter > 0 {
				session.SetStallAfter(c, tc.stallAfter)
			}
			data := randomBytes(t, 32<<20)
			sessiontest.WriteFile(t, filepath.Join(home, "f"), data)
			var disrupted atomic.Bool
			opt := session.TransferOptions{Connections: 3, Progress: func(done, total int64) {
				if done > total/3 && disrupted.CompareAndSwap(false, true) {
					if err := tc.disrupt(ts, r); err != nil {
						t.Error(err)
					}
				}
			}}
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
			defer cancel()
			dst := filepath.Join(t.TempDir(), "dst")
			res, err := c.Get(ctx, "f", dst, opt)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d attempts, %v", res.Attempts, res.Duration)
			if !disrupted.Load() {
				t.Fatal("no disruption happened")
			}
			if !bytes.Equal(sessiontest.ReadFile(t, dst), data) {
				t.Fatal("downloaded file differs")
			}
		})
	}
}

// A striped download throttled so hard that its connections' windows
// stay full for longer than the stall limit is not taken for dead: the
// server answers the client's keep-alives while its data waits.
func TestStripedThrottledNotStalled(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	home := ts.AddUser("th", "pw")
	sessiontest.WriteFile(t, filepath.Join(home, "f"), randomBytes(t, 20<<20))
	var logged bytes.Buffer
	var mu sync.Mutex
	c, err := session.Dial(t.Context(), session.DialConfig{Addr: ts.Addr, User: "th", Password: "pw", TLS: ts.TLSConfig(t),
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	// 32 KiB/s: each 256 KiB block waits 8 s to be let through, while the
	// server, its windows full, has nothing to send.
	lim := rate.NewLimiter(32<<10, 256<<10)
	lim.AllowN(time.Now(), 256<<10) // start empty
	ctx, cancel := context.WithTimeout(t.Context(), 11*time.Second)
	defer cancel()
	_, err = c.Get(ctx, "f", filepath.Join(t.TempDir(), "dst"), session.TransferOptions{Connections: 2, Limiter: lim})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("get: %v, want the test's deadline", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logged.String(), "stalled") {
		t.Fatalf("a live connection was taken for stalled:\n%s", logged.String())
	}
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// On a lossy link, auto width adds connections by itself.
func TestStripedAutoWidth(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	home := ts.AddUser("aw", "pw")
	link := relay.Link{Delay: 10 * time.Millisecond, Loss: 0.02}
	r, err := relay.New(ts.Addr, link, link, 9)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	c := ts.DialVia(t, r.Addr(), "aw", "pw", session.RetryPolicy{})
	data := randomBytes(t, 32<<20)
	sessiontest.WriteFile(t, filepath.Join(home, "f"), data)
	var widths []int
	opt := session.TransferOptions{Connections: session.ConnectionsAuto, MaxConnections: 8, Width: func(n int) { widths = append(widths, n) }}
	dst := filepath.Join(t.TempDir(), "dst")
	res, err := c.Get(t.Context(), "f", dst, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sessiontest.ReadFile(t, dst), data) {
		t.Fatal("downloaded file differs")
	}
	if res.Links < 2 {
		t.Fatalf("auto width stayed at %d connections (widths %v)", res.Links, widths)
	}
	t.Logf("get: widths %v, %.1f MB/s", widths, float64(len(data))/res.Duration.Seconds()/1e6)
	// Uploads widen too (their progress counts what QUIC sent, so a
	// first block still being packed is not read as a stall).
	widths = nil
	res, err = c.Put(t.Context(), dst, "g", opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.Links < 2 {
		t.Fatalf("put: auto width stayed at %d connections (widths %v)", res.Links, widths)
	}
	if !bytes.Equal(sessiontest.ReadFile(t, filepath.Join(home, "g")), data) {
		t.Fatal("uploaded file differs")
	}
	t.Logf("put: widths %v, %.1f MB/s", widths, float64(len(data))/res.Duration.Seconds()/1e6)
}

// The server caps the connections of a session per user.
func TestPerUserConnectionCap(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t, func(s *session.Server) { s.MaxGroupConns = 8 })
	ts.AddUser("cap", "pw")
	if err := ts.Users.SetMaxConns(t.Context(), "cap", 3); err != nil {
		t.Fatal(err)
	}
	c := ts.Login(t, "cap", "pw")
	n, err := c.Widen(t.Context(), 6)
	if n != 3 || err == nil || !strings.Contains(err.Error(), "at most 3") {
		t.Fatalf("widen to 6 with a cap of 3: %d, %v", n, err)
	}
	// Without a per-user cap the server's applies.
	if err := ts.Users.SetMaxConns(t.Context(), "cap", 0); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Widen(t.Context(), 10); n != 8 || err == nil {
		t.Fatalf("widen to 10 with a server cap of 8: %d, %v", n, err)
	}
}

// The server caps the connections of all of one user's sessions together:
// joins and then logins beyond it are refused with a message that says
// so, and other users are not affected.
func TestUserConnectionsCap(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t, func(s *session.Server) { s.MaxUserConns = 3 })
	ts.AddUser("cap", "pw")
	c := ts.Login(t, "cap", "pw")
	n, err := c.Widen(t.Context(), 5)
	if n != 3 || err == nil || !strings.Contains(err.Error(), "too many connections for user cap (at most 3 in all sessions)") {
		t.Fatalf("widen to 5 with a cap of 3: %d, %v", n, err)
	}
	if _, err := ts.Dial(t, "cap", "pw"); err == nil || !strings.Contains(err.Error(), "too many connections for user cap") {
		t.Fatalf("a second session over the cap: %v", err)
	}
	other, _ := ts.User(t, "other")
	if _, err := other.Widen(t.Context(), 3); err != nil {
		t.Fatalf("another user's connections: %v", err)
	}
	// The first session still works.
	if _, err := c.Df(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// A batch with a fixed number of connections spreads its files over them.
func TestBatchOverConnections(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "many")
	src := filepath.Join(t.TempDir(), "tree")
	for i := range 12 {
		sessiontest.WriteFile(t, filepath.Join(src, fmt.Sprintf("f%02d", i)), []byte(fmt.Sprint(i)))
	}
	p, err := c.PlanPutTree(t.Context(), src, "", session.TreeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.RunPlan(t.Context(), p, session.BatchOptions{Jobs: 6, Transfer: session.TransferOptions{Connections: 3}})
	if err != nil || res.Files != 12 || len(res.Failures) != 0 {
		t.Fatalf("%+v, %v", res, err)
	}
	for i := range 12 {
		if got := sessiontest.ReadFile(t, filepath.Join(home, "tree", fmt.Sprintf("f%02d", i))); string(got) != fmt.Sprint(i) {
			t.Fatalf("file %d = %q", i, got)
		}
	}
}

// A server whose per-user buffer budget is smaller than a striped
// transfer's streams need refuses some pieces as busy; the client tries
// them again, and the file arrives whole, both ways.
func TestStripedBusyBuffers(t *testing.T) {
	t.Parallel()
	const bs = 256 << 10
	ts := sessiontest.Start(t, func(s *session.Server) {
		// Two streams' worth of 1 MiB pieces; the client runs eight.
		s.MaxUserBuffers = 2 * blocks.Memory(1<<20, bs)
	})
	home := ts.AddUser("bb", "pw")
	c := ts.Login(t, "bb", "pw")
	data := randomBytes(t, 24<<20)
	src := filepath.Join(t.TempDir(), "src")
	sessiontest.WriteFile(t, src, data)
	opt := session.TransferOptions{Connections: 4, BlockSize: bs}
	// The busy pieces are asked again inside the striped transfer; the
	// transfer itself needs no second attempt.
	if res, err := c.Put(t.Context(), src, "f", opt); err != nil || res.Attempts != 1 {
		t.Fatalf("put: %d attempts, %v", res.Attempts, err)
	}
	if !bytes.Equal(sessiontest.ReadFile(t, filepath.Join(home, "f")), data) {
		t.Fatal("uploaded file differs")
	}
	dst := filepath.Join(t.TempDir(), "dst")
	if res, err := c.Get(t.Context(), "f", dst, opt); err != nil || res.Attempts != 1 {
		t.Fatalf("get: %d attempts, %v", res.Attempts, err)
	}
	if !bytes.Equal(sessiontest.ReadFile(t, dst), data) {
		t.Fatal("downloaded file differs")
	}
}

// Two sessions put the same file, both striped: the later upload takes
// over, the earlier one fails saying so (its ranges, which a striped
// upload tries again, do not take the file back), and the later one's
// file is published whole.
func TestStripedPutTakeover(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	ts.AddUser("tia", "pw")
	first := ts.Login(t, "tia", "pw")
	second := ts.Login(t, "tia", "pw")
	ctx := t.Context()
	dir := t.TempDir()
	older, newer := filepath.Join(dir, "older"), filepath.Join(dir, "newer")
	sessiontest.WriteFile(t, older, randomBytes(t, 20<<20))
	want := randomBytes(t, 20<<20)
	sessiontest.WriteFile(t, newer, want)
	var once sync.Once
	var errNewer error
	// The older upload is slowed down so that it is still under way when
	// it has sent 4 MiB; then the newer one runs to its end.
	lim := rate.NewLimiter(rate.Limit(8<<20), 1<<20)
	opt := session.TransferOptions{Connections: 4, Force: true, Limiter: lim, Progress: func(done, total int64) {
		if done < 4<<20 {
			return
		}
		once.Do(func() {
			_, errNewer = second.Put(ctx, newer, "same", session.TransferOptions{Connections: 4, Force: true})
		})
	}}
	_, errOlder := first.Put(ctx, older, "same", opt)
	if errNewer != nil {
		t.Fatalf("newer put: %v", errNewer)
	}
	if errOlder == nil || !strings.Contains(errOlder.Error(), "took over") {
		t.Fatalf("older put: %v, want it to say the other upload took over", errOlder)
	}
	if got := sessiontest.ReadFile(t, filepath.Join(ts.HomeDir, "tia", "same")); !bytes.Equal(got, want) {
		t.Fatal("the published file is not the newer upload's")
	}
	if l, d := used(t, ts, "tia"); l != d {
		t.Fatalf("ledger %d, disk %d", l, d)
	}
}

// A server told to stop lets striped transfers under way finish within
// its grace period, their later pieces included, in both directions,
// without a retry; a new transfer is refused meanwhile.
func TestShutdownLetsStripedTransfersFinish(t *testing.T) {
	t.Parallel()
	for _, put := range []bool{false, true} {
		t.Run(fmt.Sprintf("put=%v", put), func(t *testing.T) {
			t.Parallel()
			ts := sessiontest.Start(t)
			c, home := ts.User(t, "una")
			data := randomBytes(t, 40<<20) // five 8 MiB pieces, two at a time per connection
			local := filepath.Join(t.TempDir(), "f")
			if put {
				sessiontest.WriteFile(t, local, data)
			} else {
				sessiontest.WriteFile(t, filepath.Join(home, "f"), data)
			}
			stopped := make(chan error, 1)
			var once sync.Once
			lim := rate.NewLimiter(rate.Limit(32<<20), 1<<20)
			opt := session.TransferOptions{Connections: 2, Limiter: lim, Progress: func(done, total int64) {
				if done > 0 {
					once.Do(func() { go func() { stopped <- ts.Stop(30 * time.Second) }() })
				}
			}}
			var res session.TransferResult
			var err error
			if put {
				res, err = c.Put(t.Context(), local, "f", opt)
			} else {
				res, err = c.Get(t.Context(), "f", local, opt)
			}
			if err != nil || res.Attempts != 1 || res.Links != 2 {
				t.Fatalf("transfer during shutdown: %+v, %v", res, err)
			}
			if err := <-stopped; err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			got := sessiontest.ReadFile(t, local)
			if put {
				got = sessiontest.ReadFile(t, filepath.Join(home, "f"))
			}
			if !bytes.Equal(got, data) {
				t.Fatal("copy differs")
			}
		})
	}
}

// rm of a striped upload's partial while it runs stops the upload, which
// says that rm removed it (not that another upload took over), and
// leaves nothing counted.
func TestStripedPutPartialRemoved(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	ts.AddUser("ulf", "pw")
	c := ts.Login(t, "ulf", "pw")
	other := ts.Login(t, "ulf", "pw")
	ctx := t.Context()
	src := filepath.Join(t.TempDir(), "src")
	sessiontest.WriteFile(t, src, randomBytes(t, 20<<20))
	var once sync.Once
	var rmErr error
	lim := rate.NewLimiter(rate.Limit(8<<20), 1<<20)
	opt := session.TransferOptions{Connections: 4, Limiter: lim, Progress: func(done, total int64) {
		if done >= 4<<20 {
			once.Do(func() { rmErr = other.Remove(ctx, "big") })
		}
	}}
	_, err := c.Put(ctx, src, "big", opt)
	if rmErr != nil {
		t.Fatalf("rm of the partial: %v", rmErr)
	}
	if err == nil || !strings.Contains(err.Error(), "removed (rm)") {
		t.Fatalf("put whose partial was removed: %v", err)
	}
	if err := ts.Srv.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if l, d := used(t, ts, "ulf"); l != d {
		t.Fatalf("ledger %d, disk %d", l, d)
	}
}

// A server stopped right after a striped transfer ended waits for a next
// piece only within its grace, and reports no transfer cut off.
func TestShutdownAfterStripedTransfer(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "vic")
	sessiontest.WriteFile(t, filepath.Join(home, "f"), randomBytes(t, 20<<20))
	if _, err := c.Get(t.Context(), "f", filepath.Join(t.TempDir(), "f"), session.TransferOptions{Connections: 2}); err != nil {
		t.Fatal(err)
	}
	if err := ts.Stop(100 * time.Millisecond); err != nil {
		t.Fatalf("shutdown right after a striped get: %v", err)
	}
}

// A striped upload keeps the quota it reserved between its pieces, when
// no stream of it runs: an upload that competes for the last of the quota
// then cannot take it, and the upload that started can finish. Idle, the
// server gives it back.
func TestStripedQuotaHeldBetweenPieces(t *testing.T) {
	t.Parallel()
	held := make(chan int64, 1)
	ts := sessiontest.Start(t, func(s *session.Server) {
		session.SetHoldHook(s, func(_ string, n int64) { held <- n })
	})
	ts.AddUser("lin", "pw")
	setQuota(t, ts, "lin", 40*mib)
	a, b := ts.Login(t, "lin", "pw"), ts.Login(t, "lin", "pw")
	ctx := t.Context()
	// Pieces of a 24 MiB striped upload, as a client sends them.
	const size, bs = 24 * mib, 256 << 10
	piece := func(try string, off int64) *transport.Error {
		t.Helper()
		str, err := session.OpenRawStream(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		defer str.Close()
		hdr := transport.TransferRequest{Op: transport.OpPut, Path: "/f", Size: size, Offset: off, Length: bs, BlockSize: bs, Upload: []byte(try)}
		if err := transport.WriteFrame(str, &hdr); err != nil {
			t.Fatal(err)
		}
		_, _ = blocks.Send(str, bytes.NewReader(randomBytes(t, bs)), off, bs, bs, blocks.SendOptions{})
		_ = transport.WriteFrame(str, &transport.Trailer{Bytes: bs})
		var reply transport.TransferReply
		if err := transport.ReadFrame(str, &reply); err != nil {
			t.Fatalf("piece at %d: %v", off, err)
		}
		return reply.Err
	}
	waitHeld := func(want int64) {
		t.Helper()
		select {
		case n := <-held:
			if n != want {
				t.Fatalf("held %d bytes, want %d", n, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the server did not hold the upload's quota after its piece")
		}
	}
	if err := piece("try-1", 0); err != nil {
		t.Fatal(err)
	}
	waitHeld(size - bs)
	// Between pieces: 24 MiB of 40 taken, a 20 MiB put does not fit.
	src := filepath.Join(t.TempDir(), "b")
	sessiontest.WriteFile(t, src, randomBytes(t, 20*mib))
	if _, err := b.Put(ctx, src, "b", session.TransferOptions{}); !errors.Is(err, transport.ErrQuota) {
		t.Fatalf("competing put between pieces: %v", err)
	}
	if u, err := b.Df(ctx); err != nil || u.Used != size {
		t.Fatalf("df between pieces: %+v, %v", u, err)
	}
	// A new try takes over: try-1's hold goes (try-2 reserves anew), and
	// a late range of try-1 is refused.
	if err := piece("try-2", bs); err != nil {
		t.Fatal(err)
	}
	waitHeld(size - 2*bs)
	if err := piece("try-1", 2*bs); err == nil || !strings.Contains(err.Msg, "took over") {
		t.Fatalf("late range of the old try: %v", err)
	}
	if u, err := b.Df(ctx); err != nil || u.Used != size {
		t.Fatalf("df after the new try: %+v, %v", u, err)
	}
	if err := ts.Srv.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if l, d := used(t, ts, "lin"); l != d || l != 2*bs {
		t.Fatalf("idle: ledger %d, disk %d, want %d", l, d, 2*bs)
	}
}
