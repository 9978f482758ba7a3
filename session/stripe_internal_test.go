package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"golang.org/x/time/rate"
	"time"

	"github.com/qftp/qftp/session/userdb"
)

// A connection that never finishes its pieces: once the queue is empty,
// the other connection runs second copies of them (a download's only what
// the first copy lacks, an upload's the whole piece), the stalled copies
// are canceled, and every piece is done exactly once.
func TestStripeEndgame(t *testing.T) {
	t.Parallel()
	const bs = 1024
	for _, tc := range []struct {
		name string
		skip int64 // what left says the first copy has
	}{
		{"get", bs / 2},
		{"put", 0}, // no left func
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			c := &Client{log: slog.New(slog.DiscardHandler)}
			slow := &link{done: make(chan struct{})}
			fast := &link{done: make(chan struct{})}
			var (
				mu        sync.Mutex
				done      []int64            // piece starts completed by fast
				slowHeld  = map[int64]bool{} // piece starts slow ran
				slowCalls int
				seconds   int // second copies of them, each of what left says
				canceled  int
			)
			var left func(off, n int64) (int64, int64)
			if tc.skip > 0 {
				left = func(off, n int64) (int64, int64) { return off + tc.skip, n - tc.skip }
			}
			// fast starts only once slow holds a piece on each of its streams.
			slowHolds := make(chan struct{})
			fn := func(ctx context.Context, l *link, off, n int64) error {
				if l == slow {
					mu.Lock()
					slowHeld[off-off%bs] = true // a second copy starts inside the piece
					if slowCalls++; slowCalls == streamsPerLink {
						close(slowHolds)
					}
					mu.Unlock()
					<-ctx.Done()
					mu.Lock()
					canceled++
					mu.Unlock()
					return ctx.Err()
				}
				select {
				case <-slowHolds:
				case <-ctx.Done():
					return ctx.Err()
				}
				mu.Lock()
				defer mu.Unlock()
				if start := off - tc.skip; slowHeld[start] {
					if n != bs-tc.skip {
						t.Errorf("second copy of %d runs %d+%d", start, off, n)
					}
					seconds++
					off = start
				}
				done = append(done, off)
				return nil
			}
			err := c.stripe(ctx, []*link{slow, fast}, [][2]int64{{0, 16 * bs}}, bs, nil, left, fn)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			slices.Sort(done)
			want := []int64{}
			for off := int64(0); off < 16*bs; off += bs {
				want = append(want, off)
			}
			if !slices.Equal(done, want) {
				t.Fatalf("pieces done %v, want each of %v once", done, want)
			}
			// At least the pieces slow held first were finished by second
			// copies (slow may also run second copies of fast's pieces),
			// and every stalled copy was canceled.
			if seconds < streamsPerLink || canceled != slowCalls {
				t.Fatalf("%d second copies, %d of %d stalled copies canceled", seconds, canceled, slowCalls)
			}
		})
	}
}

// A piece that fails on a live connection for a reason other than its
// stream (a local write error, say) fails the transfer with that error,
// and stripe returns only once every worker has stopped.
func TestStripeHardError(t *testing.T) {
	t.Parallel()
	c := &Client{log: slog.New(slog.DiscardHandler)}
	a, b := &link{done: make(chan struct{})}, &link{done: make(chan struct{})}
	boom := errors.New("disk full")
	var running sync.WaitGroup
	fn := func(ctx context.Context, l *link, off, n int64) error {
		running.Add(1)
		defer running.Done()
		if off == 3*4096 { // pieces of 64 KiB / (2 links × streams × 4)
			return boom
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
			return nil
		}
	}
	err := c.stripe(t.Context(), []*link{a, b}, [][2]int64{{0, 64 * 1024}}, 1024, nil, nil, fn)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	running.Wait() // would race with a still-running worker's Add
}

func TestJudgeStep(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                         string
		width                        int
		rate, loss, lastRate, lastLs float64
		graced                       bool
		want                         stepVerdict
		factor                       int
	}{
		{"first step, clean", 16, 50e6, 0, 0, 0, false, stepWiden, 2},
		{"first step, lossy", 16, 0.5e6, 0.01, 0, 0, false, stepWiden, 4},
		{"clean, gained a tenth", 16, 55e6, 0, 50e6, 0, false, stepWiden, 2},
		{"clean, nearly doubled", 16, 95e6, 0, 50e6, 0, false, stepWiden, 4},
		{"lossy, gained half", 16, 2e6, 0.01, 1e6, 0.01, false, stepWiden, 4},
		{"lossy, gained a fifth", 16, 1.2e6, 0.01, 1e6, 0.01, false, stepWiden, 2},
		{"clean, no gain: one more step", 16, 50e6, 0, 50e6, 0, false, stepWait, 0},
		{"clean, still no gain", 16, 50e6, 0, 50e6, 0, true, stepTakeBack, 0},
		{"lossy, no gain, loss grew: full bottleneck", 16, 11e6, 0.03, 11e6, 0.01, true, stepTakeBack, 0},
		{"lossy, no gain, same loss: something else limits", 16, 30e6, 0.01, 30e6, 0.01, true, stepSettle, 0},
		{"tiny loss is clean", 16, 50e6, 0.001, 50e6, 0.001, true, stepTakeBack, 0},
		{"first step moved nothing", 16, 0, 0.05, 0, 0, false, stepWait, 0},
		{"a stalled step is no gain", 16, 0, 0, 10e6, 0, true, stepTakeBack, 0},
		{"lossy, no gain at 2 connections: too few to judge", 2, 0.72e6, 0.017, 0.82e6, 0, true, stepWiden, 2},
		{"lossy, loss grew at 4 connections: too few to judge", 4, 2e6, 0.03, 2e6, 0.01, true, stepWiden, 2},
		{"clean, no gain at 2 connections", 2, 50e6, 0, 50e6, 0, true, stepTakeBack, 0},
		{"lossy, stalled at 2 connections", 2, 0, 0.05, 1e6, 0.01, true, stepTakeBack, 0},
		{"first step, loss unknown: lossy", 1, 4e6, -1, 0, 0, false, stepWiden, 4},
		{"no gain at 4, loss unknown: keep", 4, 4e6, -1, 4e6, -1, true, stepSettle, 0},
		{"stalled, loss unknown: keep", 4, 0, -1, 4e6, 0.01, true, stepSettle, 0},
		{"no gain at 16, loss unknown: keep", 16, 30e6, -1, 30e6, 0.01, true, stepSettle, 0},
		{"no gain at 16, loss before unknown: keep", 16, 30e6, 0.03, 30e6, -1, true, stepSettle, 0},
		{"clean at the clean cap: keep", 32, 110e6, 0, 44e6, 0, false, stepSettle, 0},
		{"lossy at the clean cap: widen", 32, 40e6, 0.01, 20e6, 0.01, false, stepWiden, 4},
	} {
		v, f := judgeStep(tc.width, tc.rate, tc.loss, tc.lastRate, tc.lastLs, tc.graced)
		if v != tc.want || f != tc.factor {
			t.Errorf("%s: got verdict %d factor %d, want %d, %d", tc.name, v, f, tc.want, tc.factor)
		}
	}
}

// A commit waits for the other streams of its shared upload to let go
// (the endgame's canceled copy, whose reset comes on another connection),
// and gives up after its wait.
func TestUploadStreamsWait(t *testing.T) {
	t.Parallel()
	s := &Server{}
	const key = "ann\x00/f"
	slot := &uploadSlot{refs: 2, done: make(chan struct{}), let: make(chan struct{})}
	s.uploads = map[string]*uploadSlot{key: slot}
	if n := s.uploadStreams(t.Context(), "ann", "/f", time.Millisecond); n != 2 {
		t.Fatalf("with the other stream holding on: %d streams", n)
	}
	other := s.releaseUpload(key, slot, nil, t.Context())
	go other()
	if n := s.uploadStreams(t.Context(), "ann", "/f", time.Minute); n != 1 {
		t.Fatalf("after the other stream let go: %d streams", n)
	}
	if n := s.uploadStreams(t.Context(), "bob", "/f", time.Minute); n != 0 {
		t.Fatalf("no upload: %d streams", n)
	}
}

// Each connection that leaves its session gives its place under
// MaxUserConns back.
func TestUserConnsReleased(t *testing.T) {
	t.Parallel()
	s := &Server{MaxUserConns: 2}
	ann := func() *conn { return &conn{user: userdb.User{Name: "ann"}} }
	c1, c2 := ann(), ann()
	g1, err := s.newGroup(c1)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := s.newGroup(c2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.newGroup(ann()); err == nil {
		t.Fatal("a third session over a cap of 2")
	}
	if _, err := s.newGroup(&conn{user: userdb.User{Name: "bob"}}); err != nil {
		t.Fatalf("another user: %v", err)
	}
	s.leaveGroup(g1, c1)
	if _, err := s.newGroup(ann()); err != nil {
		t.Fatalf("after one left: %v", err)
	}
	s.leaveGroup(g2, c2)
	if n := s.userConns["ann"]; n != 1 {
		t.Fatalf("ann has %d connections counted, want 1", n)
	}
}

// The server remembers at least the last recentGen committed upload
// IDs of each user, however many came before.
func TestCommittedIDsRemembered(t *testing.T) {
	t.Parallel()
	s := &Server{}
	id := func(i int) []byte { return []byte(fmt.Sprintf("id-%08d", i)) }
	const n = 3*recentGen + 10
	for i := range n {
		s.retireUpload("ann", "/f", nil, id(i))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := n - recentGen; i < n; i++ {
		if !s.wasCommitted("ann", id(i)) {
			t.Fatalf("forgot upload %d of the last %d", i, recentGen)
		}
	}
	if s.wasCommitted("bob", id(n-1)) || s.wasCommitted("ann", nil) {
		t.Fatal("another user's ID, or no ID, counts as committed")
	}
	if s.wasCommitted("ann", id(0)) {
		t.Fatal("memory not bounded: the first ID is still there")
	}
}

func TestBatchBudget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		lim              Limiter
		server           int64 // the server's cap on the user
		budget, mostFile int64
	}{
		{nil, 0, autoInFlight, autoInFlight / 4},
		{rate.NewLimiter(rate.Inf, 1<<20), 0, autoInFlight, autoInFlight / 4},
		{rate.NewLimiter(rate.Limit(100<<20), 10<<20), 0, autoInFlight, autoInFlight / 4}, // fast enough
		{rate.NewLimiter(rate.Limit(10<<20), 1<<20), 0, 20 << 20, 20 << 20},               // a big file runs alone
		{rate.NewLimiter(rate.Limit(100<<10), 64<<10), 0, 1 << 20, 1 << 20},               // at least a megabyte
		{nil, 5 << 20, 10 << 20, 10 << 20},                                                // the server's cap alone
		{nil, 1 << 30, autoInFlight, autoInFlight / 4},                                    // a cap that is fast enough
		{rate.NewLimiter(rate.Limit(10<<20), 1<<20), 5 << 20, 10 << 20, 10 << 20},         // the lower cap counts
		{rate.NewLimiter(rate.Limit(5<<20), 1<<20), 10 << 20, 10 << 20, 10 << 20},
		{rate.NewLimiter(rate.Inf, 1<<20), 5 << 20, 10 << 20, 10 << 20},
	} {
		budget, most := (BatchOptions{Transfer: TransferOptions{Limiter: tc.lim}}).budget(tc.server)
		if budget != tc.budget || most != tc.mostFile {
			t.Errorf("budget with %v and server cap %d: %d, %d; want %d, %d", tc.lim, tc.server, budget, most, tc.budget, tc.mostFile)
		}
	}
}

func TestSameMtime(t *testing.T) {
	t.Parallel()
	const s = int64(time.Second)
	base := int64(1_700_000_000) * s
	for _, tc := range []struct {
		a, b int64
		want bool
	}{
		{base + 123, base + 123, true},
		{base + 123, base + 124, false},   // both precise: any difference counts
		{base, base + 1*s + 999, true},    // FAT's 2 s steps
		{base + 1*s + 999, base, true},    // either way round
		{base, base + 2*s, false},         // a whole step apart
		{base + 3*s/2, base + s, true},    // HFS+ seconds
		{base + 3*s/2, base + 3*s, false}, // no rounding of 1.5 s
		{base, base + s, true},            // FAT: 1 s down to an even second
		{base + s, base + 3*s, false},     // no rounding of 3 s gives 1 s
		{base + 3*s, base + 5*s/2, true},  // 2.5 s up to a second
	} {
		if got := sameMtime(tc.a, tc.b); got != tc.want {
			t.Errorf("sameMtime(%d, %d) = %v, want %v", tc.a-base, tc.b-base, got, tc.want)
		}
	}
}
