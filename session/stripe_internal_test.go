package session

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// A connection that never finishes its pieces: once the queue is empty,
// the other connection runs second copies of them (only what the first
// copy lacks), the stalled copies are canceled, and every piece is done
// exactly once.
func TestStripeEndgame(t *testing.T) {
	t.Parallel()
	const bs = 1024
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c := &Client{log: slog.New(slog.DiscardHandler)}
	slow := &link{done: make(chan struct{})}
	fast := &link{done: make(chan struct{})}
	var (
		mu       sync.Mutex
		done     []int64 // piece starts completed by fast
		seconds  []int64 // offsets of second copies
		canceled int
	)
	// A second copy skips the first half block the stalled copy "has".
	left := func(off, n int64) (int64, int64) { return off + bs/2, n - bs/2 }
	// fast starts only once slow holds a piece on each of its streams.
	slowHolds := make(chan struct{})
	var held int
	fn := func(ctx context.Context, l *link, off, n int64) error {
		if l == slow {
			mu.Lock()
			if held++; held == streamsPerLink {
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
		if off%bs != 0 {
			seconds = append(seconds, off)
			off -= bs / 2
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
	// At least the pieces slow held were finished by second copies, and
	// every stalled copy was canceled.
	if len(seconds) < streamsPerLink || canceled != held {
		t.Fatalf("%d second copies (%v), %d of %d stalled copies canceled", len(seconds), seconds, canceled, held)
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
