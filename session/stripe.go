package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/qftp/qftp/transport"
	"github.com/qftp/qftp/transport/blocks"
)

// stripeMin is the least data worth spreading over several connections.
const stripeMin = 16 << 20

// stripeChunk is the size of the ranges a striped transfer hands out: big
// enough that a stream's setup is small next to its data, small enough
// that the connections finish together and a lost connection costs little.
const stripeChunk = 8 << 20

// streamsPerLink is how many ranges run at once on each connection, so
// that one range's end does not leave the connection idle.
const streamsPerLink = 4

// maxPieceFailures bounds how often one piece may fail before the whole
// transfer does (and the caller's retry, with a resume, takes over).
const maxPieceFailures = 8

// closeIdleExtras ends a striped transfer: when none is left running, the
// joined connections close. Kept open, each would hold its grown
// flow-control window, which the server counts against the user.
func (c *Client) closeIdleExtras() {
	c.mu.Lock()
	c.striping--
	var extra []*link
	if c.striping == 0 {
		extra, c.extra = c.extra, nil
	}
	c.mu.Unlock()
	for _, l := range extra {
		_ = l.close()
	}
}

// ConnectionsAuto in TransferOptions.Connections lets a transfer widen by
// itself (see autoWidth), up to TransferOptions.MaxConnections.
const ConnectionsAuto = -1

// join opens one more connection into this session with its token.
func (c *Client) join(ctx context.Context) (*link, error) {
	c.mu.Lock()
	tok := c.token
	c.mu.Unlock()
	cfg := c.cfg
	dctx := ctx
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	qc, err := transport.Dial(dctx, cfg.Addr, cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", cfg.Addr, err)
	}
	ctrl, err := qc.OpenStreamSync(dctx)
	if err != nil {
		_ = qc.CloseWithError(transport.ConnNoError, "")
		return nil, transport.Explain(err)
	}
	req := transport.Request{ID: 1, Op: transport.OpJoin, User: cfg.User, Token: tok}
	var resp transport.Response
	err = transport.WriteFrame(ctrl, &req)
	if err == nil {
		err = transport.ReadFrame(ctrl, &resp)
	}
	if err != nil || resp.Err != nil {
		_ = qc.CloseWithError(transport.ConnNoError, "")
		if err == nil {
			err = resp.Err
		}
		return nil, fmt.Errorf("join session: %w", loginErr(err))
	}
	l := &link{qc: qc, ctrl: ctrl, pending: make(map[uint64]*pendingCall), done: make(chan struct{})}
	go l.readLoop()
	return l, nil
}

// Widen makes the session have n connections (at least 1), opening the
// missing ones in parallel, and returns how many it has. Connections that
// died are dropped first.
func (c *Client) Widen(ctx context.Context, n int) (int, error) {
	c.mu.Lock()
	var live, dead []*link
	for _, l := range c.extra {
		if l.alive() {
			live = append(live, l)
		} else {
			dead = append(dead, l)
		}
	}
	c.extra = live
	missing := n - 1 - len(c.extra)
	c.mu.Unlock()
	for _, l := range dead {
		_ = l.close()
	}
	if missing <= 0 {
		return 1 + len(live), nil
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range missing {
		wg.Go(func() {
			l, err := c.join(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			c.mu.Lock()
			closed := c.closed
			if !closed {
				c.extra = append(c.extra, l)
			}
			c.mu.Unlock()
			if closed {
				_ = l.close()
			}
		})
	}
	wg.Wait()
	c.mu.Lock()
	have := 1 + len(c.extra)
	c.mu.Unlock()
	return have, firstErr
}

// stripeLinks returns the connections to spread remaining bytes over:
// just primary unless the options ask for more and the data is big
// enough. Failing to open more is not an error: fewer will do.
func (c *Client) stripeLinks(ctx context.Context, primary *link, opt TransferOptions, res *TransferResult, remaining int64) (links []*link) {
	defer func() { res.Links = max(res.Links, len(links)) }()
	if opt.Connections == ConnectionsAuto {
		return []*link{primary}
	}
	c.mu.Lock()
	noToken := len(c.token) == 0 // a server without session groups
	c.mu.Unlock()
	if opt.Connections <= 1 || remaining < stripeMin || noToken {
		return []*link{primary}
	}
	want := int(min(int64(opt.Connections), max(remaining/blocks.Size, 1)))
	if _, err := c.Widen(ctx, want); err != nil {
		c.log.Info("could not open all connections", "want", want, "err", err)
	}
	out := []*link{primary}
	c.mu.Lock()
	for _, l := range c.extra {
		if len(out) == want {
			break
		}
		if l.alive() {
			out = append(out, l)
		}
	}
	c.mu.Unlock()
	return out
}

// stripe runs fn over the ranges, cut into stripeChunk pieces, with
// streamsPerLink pieces at a time on each link. A piece that fails is
// handed to another worker (a connection that died stops its workers);
// it fails only when no worker is left or a piece failed for a reason
// other than its connection (that error is returned).
func (c *Client) stripe(ctx context.Context, links []*link, ranges [][2]int64, bs int64, auto *autoWidth, fn func(l *link, off, n int64) error) error {
	c.mu.Lock()
	c.striping++
	c.mu.Unlock()
	defer c.closeIdleExtras()
	// Pieces small enough that every stream of the widest width gets a
	// few (the slowest piece decides when the transfer ends), at least a
	// block, at most stripeChunk.
	widest := len(links)
	if auto != nil {
		widest = max(widest, auto.Max)
	}
	var total int64
	for _, r := range ranges {
		total += r[1]
	}
	chunk := min(stripeChunk, total/int64(widest*streamsPerLink))
	chunk = max(chunk/bs, 1) * bs
	var pieces [][2]int64
	for _, r := range ranges {
		for off := r[0]; off < r[0]+r[1]; off += chunk {
			pieces = append(pieces, [2]int64{off, min(chunk, r[0]+r[1]-off)})
		}
	}
	queue := make(chan [2]int64, len(pieces))
	for _, p := range pieces {
		queue <- p
	}
	var (
		mu        sync.Mutex
		remaining = len(pieces)
		workers   = len(links) * streamsPerLink
		hardErr   error
		allDone   = make(chan struct{})
	)
	if remaining == 0 {
		return nil
	}
	finish := func() { close(allDone) }
	var once sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	failures := map[[2]int64]int{}
	retired := map[*link]bool{}
	retire := func(l *link) {
		mu.Lock()
		retired[l] = true
		mu.Unlock()
	}
	start := func(l *link) {
		mu.Lock()
		workers += streamsPerLink
		mu.Unlock()
		for range streamsPerLink {
			wg.Go(func() {
				defer func() {
					mu.Lock()
					workers--
					if workers == 0 {
						once.Do(finish)
					}
					mu.Unlock()
				}()
				for {
					mu.Lock()
					stop := retired[l]
					mu.Unlock()
					if stop {
						return
					}
					var p [2]int64
					select {
					case p = <-queue:
					case <-allDone:
						return
					case <-ctx.Done():
						return
					}
					mu.Lock()
					stop = retired[l]
					mu.Unlock()
					if stop {
						queue <- p
						return
					}
					err := fn(l, p[0], p[1])
					if err == nil {
						mu.Lock()
						remaining--
						if remaining == 0 {
							once.Do(finish)
						}
						mu.Unlock()
						continue
					}
					queue <- p // someone else takes it
					mu.Lock()
					failures[p]++
					tooMany := failures[p] > maxPieceFailures
					n := failures[p]
					mu.Unlock()
					var se *quic.StreamError
					if ctx.Err() == nil && (tooMany || l.alive() && !errors.As(err, &se)) {
						mu.Lock()
						if hardErr == nil {
							hardErr = err
						}
						mu.Unlock()
						cancel()
						return
					}
					if !l.alive() {
						return // this connection is gone; the others go on
					}
					// Reset streams on a live connection (a takeover, a
					// server that refuses): back off before trying again.
					select {
					case <-time.After(time.Duration(n) * 50 * time.Millisecond):
					case <-ctx.Done():
						return
					}
				}
			})
		}
	}
	workers = 0
	for _, l := range links {
		start(l)
	}
	if auto != nil {
		wg.Go(func() { auto.run(ctx, c, links, allDone, start, retire) })
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	switch {
	case hardErr != nil:
		return hardErr
	case remaining > 0 && ctx.Err() != nil:
		return ctx.Err()
	case remaining > 0:
		return errors.New("every connection failed during the transfer")
	}
	return nil
}

// autoWidth grows a striped transfer's connections while that pays: it
// starts with the links given and doubles their number while the
// transfer's goodput rises by a tenth or more per step (judged over two
// steps, since new connections start slowly). A step that does not pay is
// taken back (its connections finish their piece and stop), so
// a clean or congested link ends where it started or one step up; a lossy
// one, where each connection's congestion window is what limits, keeps
// widening up to Max. (Loss itself is not a usable signal for downloads:
// the receiver's QUIC stack does not see it.)
type autoWidth struct {
	Max   int          // most connections
	Moved func() int64 // bytes moved so far
	Width func(int)    // told the current width (for display); optional
}

func (a *autoWidth) run(ctx context.Context, c *Client, links []*link, done <-chan struct{}, start func(*link), retire func(*link)) {
	// Dialing more connections stops as soon as the data is all there.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ended := make(chan struct{})
	defer close(ended)
	go func() {
		select {
		case <-done:
			cancel()
		case <-ended:
		}
	}()
	width := len(links)
	if a.Width != nil {
		a.Width(width)
	}
	var lastRate float64
	var lastAdded []*link
	graced := false
	lastBytes, lastT := a.Moved(), time.Now()
	for {
		// A step lasts several round trips, at least half a second.
		rtt := links[0].qc.ConnectionStats().SmoothedRTT
		step := max(500*time.Millisecond, 6*rtt)
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-time.After(step):
		}
		now, moved := time.Now(), a.Moved()
		rate := float64(moved-lastBytes) / now.Sub(lastT).Seconds()
		if lastRate > 0 && rate < lastRate*11/10 && !graced {
			// New connections start slowly: give the step one more round.
			graced = true
			continue
		}
		if lastRate > 0 && rate < lastRate*11/10 {
			// The last step did not pay: take it back.
			for _, l := range lastAdded {
				retire(l)
			}
			width -= len(lastAdded)
			if a.Width != nil {
				a.Width(width)
			}
			c.log.Debug("width settled", "connections", width, "rate", rate)
			return
		}
		if width >= a.Max {
			return
		}
		next := min(width*2, a.Max)
		if _, err := c.Widen(ctx, next); err != nil {
			c.log.Info("could not widen", "want", next, "err", err)
		}
		c.mu.Lock()
		var added []*link
		for _, l := range c.extra {
			if !slices.Contains(links, l) && len(links)+len(added) < next && l.alive() {
				added = append(added, l)
			}
		}
		c.mu.Unlock()
		if len(added) == 0 {
			return
		}
		for _, l := range added {
			start(l)
		}
		links = append(links, added...)
		width = len(links)
		if a.Width != nil {
			a.Width(width)
		}
		c.log.Debug("widened", "connections", width, "rate", rate)
		lastRate, lastAdded, lastBytes, lastT, graced = rate, added, a.Moved(), time.Now(), false
	}
}

// autoStripe reports whether a transfer of remaining bytes widens by
// itself.
func (c *Client) autoStripe(opt TransferOptions, remaining int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return opt.Connections == ConnectionsAuto && remaining >= stripeMin && len(c.token) > 0
}

// autoFor returns the width controller for a transfer, or nil for a fixed
// width. mu guards res.
func (c *Client) autoFor(opt TransferOptions, res *TransferResult, mu *sync.Mutex) *autoWidth {
	if opt.Connections != ConnectionsAuto {
		return nil
	}
	maxConns := opt.MaxConnections
	if maxConns <= 0 {
		maxConns = 32
	}
	return &autoWidth{
		Max: maxConns,
		Moved: func() int64 {
			mu.Lock()
			defer mu.Unlock()
			return res.LastSent
		},
		Width: func(n int) {
			mu.Lock()
			res.Links = max(res.Links, n)
			mu.Unlock()
			if opt.Width != nil {
				opt.Width(n)
			}
		},
	}
}
