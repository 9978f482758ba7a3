package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/size"
)

// progress draws live bars for transfers on a terminal, with mpb: one bar
// per running transfer and, for batches, a total line. Without a terminal
// (or with --no-progress) it draws nothing and the caller prints one
// summary line per file instead.
type progress struct {
	p     *mpb.Progress // nil: no bars
	total *mpb.Bar
	mu    sync.Mutex
	bars  map[*mpb.Bar]bool // running file bars, to abort on cancel
}

// widthDecor shows the connections a striped transfer runs over.
func widthDecor(width *atomic.Int64) decor.Decorator {
	return decor.Any(func(decor.Statistics) string {
		if n := width.Load(); n > 1 {
			return fmt.Sprintf("×%d conns", n)
		}
		return ""
	}, decor.WCSyncSpace)
}

// newProgress starts a display on w if enabled. files and bytes size the
// total line; files 0 means a single transfer without one.
func newProgress(ctx context.Context, w io.Writer, enabled bool, files int, bytes int64) *progress {
	pr := &progress{bars: map[*mpb.Bar]bool{}}
	if !enabled {
		return pr
	}
	// Bars are enabled only on a terminal, where mpb refreshes anyway;
	// forcing it lets tests read the bars from a buffer.
	pr.p = mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithWidth(80), mpb.WithRefreshRate(150*time.Millisecond), mpb.WithAutoRefresh())
	if files > 0 {
		pr.total = pr.p.AddBar(bytes,
			mpb.BarPriority(1<<30), // the total stays at the bottom
			mpb.PrependDecorators(
				decor.Name("total", decor.WCSyncSpaceR),
				counters(),
			),
			mpb.AppendDecorators(
				decor.Percentage(decor.WCSyncSpace),
				decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace),
				decor.OnComplete(decor.AverageETA(decor.ET_STYLE_GO, decor.WCSyncSpace), "done"),
			),
		)
	}
	return pr
}

// counters shows "done / total" in the units of qftp's other lines
// (mpb's own counters print bytes as "b").
func counters() decor.Decorator {
	return decor.Any(func(s decor.Statistics) string {
		return size.Format(s.Current) + " / " + size.Format(s.Total)
	}, decor.WCSyncSpace)
}

// println prints a message above the bars (or plainly without bars), so
// that it does not tear the display.
func (pr *progress) println(w io.Writer, msg string) {
	if pr.p != nil {
		fmt.Fprintln(pr.p, msg)
		return
	}
	fmt.Fprintln(w, msg)
}

// enabled reports whether bars are drawn.
func (pr *progress) enabled() bool { return pr.p != nil }

// file returns the callbacks of one transfer's bar: its progress, and the
// connections it runs over (each bar shows its own).
func (pr *progress) file(name string, keep bool) session.FileHooks {
	if pr.p == nil {
		return session.FileHooks{}
	}
	var (
		mu    sync.Mutex // striped transfers report from several goroutines
		bar   *mpb.Bar
		last  int64
		lastT time.Time
		width atomic.Int64
	)
	progress := func(done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		if bar == nil {
			opts := []mpb.BarOption{
				mpb.PrependDecorators(
					decor.Name(shorten(displayName(name), 24), decor.WCSyncSpaceR),
					counters(),
				),
				mpb.AppendDecorators(
					decor.Percentage(decor.WCSyncSpace),
					decor.EwmaSpeed(decor.SizeB1024(0), "% .1f", 30, decor.WCSyncSpace),
					decor.OnComplete(decor.EwmaETA(decor.ET_STYLE_GO, 30, decor.WCSyncSpace), "verified"),
					widthDecor(&width),
				),
			}
			if !keep {
				opts = append(opts, mpb.BarRemoveOnComplete())
			}
			bar = pr.p.AddBar(total, opts...)
			// A resumed transfer starts where it left off (and one that
			// found its file already there, done).
			bar.SetCurrent(done)
			if pr.total != nil {
				pr.total.IncrInt64(done)
			}
			last, lastT = done, time.Now()
			pr.mu.Lock()
			pr.bars[bar] = true
			pr.mu.Unlock()
			if total == 0 {
				bar.SetTotal(0, true)
			}
			return
		}
		if done < last {
			return // reports from parallel ranges may arrive out of order
		}
		now := time.Now()
		bar.EwmaSetCurrent(done, now.Sub(lastT))
		if pr.total != nil && done > last {
			pr.total.IncrInt64(done - last)
		}
		last, lastT = done, now
		if done >= total {
			pr.mu.Lock()
			delete(pr.bars, bar)
			pr.mu.Unlock()
		}
	}
	return session.FileHooks{Progress: progress, Width: func(n int) { width.Store(int64(n)) }}
}

// finish stops the display: completed bars stay, running ones (after a
// Ctrl-C or an error) are aborted, and the output is complete before the
// shell prints its prompt again.
func (pr *progress) finish() {
	if pr.p == nil {
		return
	}
	pr.mu.Lock()
	for b := range pr.bars {
		b.Abort(false)
	}
	pr.bars = map[*mpb.Bar]bool{}
	pr.mu.Unlock()
	if pr.total != nil && !pr.total.Completed() {
		pr.total.Abort(false)
	}
	pr.p.Wait()
}

func shorten(s string, n int) string {
	r := []rune(s)
	switch {
	case len(r) <= n:
		return fmt.Sprintf("%-*s", n, s)
	case strings.Contains(s, "/"):
		return "…" + string(r[len(r)-n+1:]) // a path: its end tells files apart
	}
	return string(r[:n-1]) + "…"
}

// summaryLine is the one line per transfer printed without bars:
// "put a.iso 1.2 GiB in 4.1s, 301 MiB/s, verified".
func summaryLine(op, name string, res session.TransferResult) string {
	name = displayName(name)
	if res.Same {
		return fmt.Sprintf("%s %s: already there (same size, time and BLAKE3)", op, name)
	}
	secs := res.Duration.Seconds()
	rate := "-"
	moved := res.Bytes - res.Resumed
	if secs > 0 {
		rate = size.Format(int64(float64(moved)/secs)) + "/s"
	}
	extra := ""
	if res.Resumed > 0 {
		extra = ", " + size.Format(res.Resumed) + " resumed"
	}
	return fmt.Sprintf("%s %s %s in %s, %s%s, verified", op, name, size.Format(res.Bytes), res.Duration.Round(time.Millisecond), rate, extra)
}
