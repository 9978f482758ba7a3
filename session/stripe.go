package session

import (
	"bytes"
	"cmp"
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
// that one range's end does not leave the connection idle. More would not
// add speed (the streams of a connection share its congestion window) but
// would hand out the file early, to slow connections as much as to fast.
const streamsPerLink = 2

// firstStreams is how many pieces an auto transfer runs at once on its
// first connection (or spread over its first few). With only streamsPerLink,
// each waiting a round trip between pieces, one connection on a clean
// 50 ms link moved 4 MB/s in its first step, and the climb to full speed
// took half of a 256 MiB transfer.
const firstStreams = 8

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

// join opens one more connection into this session with its token, and
// returns it with the token it used.
func (c *Client) join(ctx context.Context) (*link, []byte, error) {
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
		return nil, nil, dialError(ctx, cfg, err)
	}
	ctrl, err := qc.OpenStreamSync(dctx)
	if err != nil {
		_ = qc.CloseWithError(transport.ConnNoError, "")
		return nil, nil, transport.Explain(err)
	}
	// The answer is awaited only as long as ctx lasts: a transfer that
	// finished must not wait on a join.
	stop := context.AfterFunc(dctx, func() { ctrl.CancelRead(transport.StreamCanceled) })
	defer stop()
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
		return nil, nil, fmt.Errorf("join session: %w", loginErr(dctx, err))
	}
	l := &link{qc: qc, ctrl: ctrl, pending: make(map[uint64]*pendingCall), done: make(chan struct{})}
	go l.readLoop()
	return l, tok, nil
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
			l, tok, err := c.join(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			c.mu.Lock()
			// A reconnection while we joined made a new session: this
			// connection belongs to the old one, which the server ends.
			stale := c.closed || !bytes.Equal(tok, c.token)
			if !stale {
				c.extra = append(c.extra, l)
			}
			c.mu.Unlock()
			if stale {
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

// piece is one range of a striped transfer and its state.
type piece struct {
	off, n   int64
	failures int
	done     bool
	queued   bool
	copies   map[*link]context.CancelFunc // running attempts, by link
}

// stripeState hands a striped transfer's pieces to the workers of its
// links. Workers take pieces from the queue; once the queue is empty, an
// idle worker on another connection runs a second copy of the piece with
// the most left to do (the "endgame"), since at the end the slowest
// connection would otherwise decide when the transfer ends. The copy that
// finishes first cancels the other.
type stripeState struct {
	mu        sync.Mutex
	queue     []*piece
	running   []*piece
	remaining int
	workers   int
	retired   map[*link]bool
	hardErr   error
	changed   chan struct{} // closed and replaced on every change
	left      func(off, n int64) (int64, int64)
}

// wake tells waiting workers that something changed. mu must be held.
func (st *stripeState) wake() {
	close(st.changed)
	st.changed = make(chan struct{})
}

// take returns the next piece for a worker on l, the part of it to run
// and the context of this copy (registered in the piece), or ok false
// when the worker should stop.
func (st *stripeState) take(ctx context.Context, l *link) (p *piece, off, n int64, pctx context.Context, ok bool) {
	for {
		st.mu.Lock()
		if st.remaining == 0 || st.retired[l] || st.hardErr != nil || ctx.Err() != nil || !l.alive() {
			st.mu.Unlock()
			return nil, 0, 0, nil, false
		}
		if len(st.queue) > 0 {
			p = st.queue[0]
			st.queue = st.queue[1:]
			p.queued = false
			pctx = st.run(ctx, p, l)
			st.mu.Unlock()
			return p, p.off, p.n, pctx, true
		}
		// Endgame: help the piece, running elsewhere, with most left.
		// A download's second copy skips what the first stored; an
		// upload's sends the whole piece again (pieces are small at the
		// widths where this matters), and the server stores each block
		// once.
		var best *piece
		var bestOff, bestN int64
		for _, q := range st.running {
			if q.done || len(q.copies) != 1 {
				continue
			}
			if _, mine := q.copies[l]; mine {
				continue
			}
			o, m := q.off, q.n
			if st.left != nil {
				o, m = st.left(q.off, q.n)
			}
			if m > bestN {
				best, bestOff, bestN = q, o, m
			}
		}
		if best != nil {
			pctx = st.run(ctx, best, l)
			st.mu.Unlock()
			return best, bestOff, bestN, pctx, true
		}
		ch := st.changed
		st.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, 0, 0, nil, false
		}
	}
}

// isBusy reports whether err is the server's busy refusal.
func isBusy(err error) bool {
	var we *transport.Error
	return errors.As(err, &we) && we.Code == transport.CodeBusy
}

// connLost reports whether err says that the connection itself ended
// (which a stream may report before the connection's context is done).
func connLost(err error) bool {
	var (
		idle  *quic.IdleTimeoutError
		reset *quic.StatelessResetError
		app   *quic.ApplicationError
		te    *quic.TransportError
	)
	return errors.As(err, &idle) || errors.As(err, &reset) || errors.As(err, &app) || errors.As(err, &te) || errors.Is(err, quic.ErrServerClosed)
}

// run registers a copy of p running on l. mu must be held.
func (st *stripeState) run(ctx context.Context, p *piece, l *link) context.Context {
	pctx, cancel := context.WithCancel(ctx)
	p.copies[l] = cancel
	if len(p.copies) == 1 {
		st.running = append(st.running, p)
	}
	return pctx
}

// stripe runs fn over the ranges, cut into pieces, with streamsPerLink
// pieces at a time on each link. A piece that fails is handed to another
// worker (a connection that died stops its workers); it fails only when
// no worker is left or a piece failed for a reason other than its
// connection (that error is returned). left, if not nil, tells which part
// of a piece still lacks (fn stores a range in order), so that a second
// copy fetches only that.
func (c *Client) stripe(ctx context.Context, links []*link, ranges [][2]int64, bs int64, auto *autoWidth, left func(off, n int64) (int64, int64), fn func(ctx context.Context, l *link, off, n int64) error) error {
	c.mu.Lock()
	c.striping++
	c.mu.Unlock()
	defer c.closeIdleExtras()
	// Pieces small enough that every stream of the widest width gets
	// several (so that fast connections take more than slow ones), at
	// least a block, at most stripeChunk.
	widest := len(links)
	if auto != nil {
		widest = max(widest, auto.Max)
	}
	var total int64
	for _, r := range ranges {
		total += r[1]
	}
	chunk := min(stripeChunk, total/int64(widest*streamsPerLink*4))
	chunk = max(chunk/bs, 1) * bs
	st := &stripeState{retired: map[*link]bool{}, changed: make(chan struct{}), left: left}
	for _, r := range ranges {
		for off := r[0]; off < r[0]+r[1]; off += chunk {
			st.queue = append(st.queue, &piece{off: off, n: min(chunk, r[0]+r[1]-off), queued: true, copies: map[*link]context.CancelFunc{}})
		}
	}
	st.remaining = len(st.queue)
	if st.remaining == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	allDone := make(chan struct{})
	var once sync.Once
	finish := func() { once.Do(func() { close(allDone) }) }
	worker := func(l *link) {
		defer func() {
			st.mu.Lock()
			st.workers--
			if st.workers == 0 {
				finish()
			}
			st.wake()
			st.mu.Unlock()
		}()
		for {
			p, off, n, pctx, ok := st.take(ctx, l)
			if !ok {
				return
			}
			err := fn(pctx, l, off, n)
			// A busy server (this user's transfer buffers are all in
			// use) is asked again by the same worker, holding the piece,
			// so that the other workers do not all pile onto it.
			for wait := 100 * time.Millisecond; isBusy(err) && pctx.Err() == nil; wait = min(2*wait, 2*time.Second) {
				select {
				case <-time.After(wait):
					err = fn(pctx, l, off, n)
				case <-pctx.Done():
				}
			}
			st.mu.Lock()
			p.copies[l]()
			delete(p.copies, l)
			if len(p.copies) == 0 {
				st.running = slices.DeleteFunc(st.running, func(q *piece) bool { return q == p })
			}
			if p.done {
				st.mu.Unlock()
				continue // the other copy finished first
			}
			if err == nil {
				p.done = true
				for _, cf := range p.copies {
					cf() // the other copy is no longer needed
				}
				st.remaining--
				if st.remaining == 0 {
					finish()
				}
				st.wake()
				st.mu.Unlock()
				continue
			}
			if len(p.copies) == 0 && !p.queued {
				// Someone else takes it (first, since it was started).
				p.queued = true
				st.queue = slices.Insert(st.queue, 0, p)
				st.wake()
			}
			// Only failures of the piece itself count against it: not
			// a dead connection, nor a copy failing while another runs.
			lost := !l.alive() || connLost(err)
			counted := !lost && len(p.copies) == 0
			if counted {
				p.failures++
			}
			tooMany := p.failures > maxPieceFailures
			nfail := p.failures
			st.mu.Unlock()
			c.log.Debug("piece failed", "offset", off, "bytes", n, "failures", nfail, "connection lost", lost, "err", err)
			if lost {
				return // this connection is gone; the others go on
			}
			// Reset streams (a takeover, a busy server) are worth
			// another try; anything else is the transfer's failure.
			var se *quic.StreamError
			if ctx.Err() == nil && (tooMany || !errors.As(err, &se) && !isBusy(err)) {
				st.mu.Lock()
				if st.hardErr == nil {
					st.hardErr = err
				}
				st.wake()
				st.mu.Unlock()
				cancel()
				return
			}
			// Back off before trying again.
			select {
			case <-time.After(time.Duration(nfail) * 50 * time.Millisecond):
			case <-allDone:
				return
			case <-ctx.Done():
				return
			}
		}
	}
	// start adds a link's workers. The first wave takes one piece per
	// link before any link takes a second, so that every connection
	// gets work even when there are few pieces.
	start := func(per int, ls ...*link) {
		st.mu.Lock()
		st.workers += len(ls) * per
		st.mu.Unlock()
		for range per {
			for _, l := range ls {
				wg.Go(func() { worker(l) })
			}
		}
	}
	retire := func(l *link) {
		st.mu.Lock()
		st.retired[l] = true
		st.wake()
		st.mu.Unlock()
	}
	// (Before uploads had an endgame, their last pieces waited on the
	// slowest connection, and 8 first pieces took auto uploads at 1 %
	// loss to 24 instead of 36 MB/s half the time.)
	first := streamsPerLink
	if auto != nil && len(links) < firstStreams/streamsPerLink {
		first = firstStreams / len(links)
	}
	start(first, links...)
	wg.Go(func() { st.watch(ctx, c, allDone) })
	if auto != nil {
		wg.Go(func() { auto.run(ctx, c, links, allDone, func(l *link) { start(streamsPerLink, l) }, retire) })
	}
	wg.Wait()
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case st.hardErr != nil:
		return st.hardErr
	case st.remaining > 0 && ctx.Err() != nil:
		return ctx.Err()
	case st.remaining > 0:
		return errors.New("every connection failed during the transfer")
	}
	return nil
}

// stallAfter is how long a connection with pieces running may receive
// nothing at all before watch takes it for dead: at least this, or 16
// round trips. A live server answers our keep-alive PINGs (every
// transport.ClientKeepAlive) even when it has no data for us (a rate
// limit, flow control held by our slow disk), so this is four of them
// unanswered.
const stallAfter = 4 * transport.ClientKeepAlive

// watch closes the links that have pieces running but have received
// nothing for stallAfter, so that their pieces move to other links (or,
// all links gone, the transfer reconnects). Such a link is silently dead:
// after a network outage in which the server's sends failed, the server
// forgets its end of the connection; our end, only waiting for data,
// sends nothing but acknowledgements and pings, too small to draw the
// server's stateless reset (quic-go answers only packets longer than a
// reset), and would wait out the idle timeout (60 s). The lab measured
// 84 s for a 10 s blackout, and once a timeout, before this.
func (st *stripeState) watch(ctx context.Context, c *Client, done <-chan struct{}) {
	limit := cmp.Or(c.stallAfter, stallAfter)
	type seen struct {
		bytes uint64
		since time.Time
	}
	last := map[*link]seen{}
	every := limit / 8
	tick := time.NewTicker(every)
	defer tick.Stop()
	prev := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-tick.C:
		}
		now := time.Now()
		if now.Sub(prev) > 2*every {
			// We did not run (the process was stopped, say): the
			// packets waiting in the socket are not read yet either.
			clear(last)
		}
		prev = now
		active := map[*link]bool{}
		st.mu.Lock()
		for _, p := range st.running {
			for l := range p.copies {
				active[l] = true
			}
		}
		st.mu.Unlock()
		// A link's silence counts only while it has pieces running.
		for l := range last {
			if !active[l] {
				delete(last, l)
			}
		}
		for l := range active {
			cs := l.qc.ConnectionStats()
			s, ok := last[l]
			if !ok || cs.BytesReceived != s.bytes {
				last[l] = seen{cs.BytesReceived, now}
				continue
			}
			if silent := now.Sub(s.since); silent >= max(limit, 16*cs.SmoothedRTT) {
				c.log.Info("connection stalled: closing it", "silent", silent.Round(100*time.Millisecond))
				_ = l.qc.CloseWithError(transport.ConnStalled, fmt.Sprintf("nothing received for %v", silent.Round(time.Second)))
				delete(last, l)
			}
		}
	}
}

// autoWidth grows a striped transfer's connections while that pays. It
// starts with the links given and, every step (several round trips), looks
// at the goodput and at the packet loss of the sending side (the server's,
// from get trailers, for downloads):
//
//   - With random loss (≥ lossyRate), each connection is held back by its
//     own congestion window: widen by 4 while goodput rises by half or
//     more per step, else by 2. A step that does not raise goodput by a
//     tenth gets one more step (new connections start slowly); if it
//     still falls short and loss grew with the width, the bottleneck is
//     full: the step is taken back. If loss did not grow, something else
//     limits (such as CPU): the width stays. Below minJudged connections
//     such a step widens all the same (too noisy to judge by).
//   - Without loss: widen by 2 while goodput rises by a tenth or more; a
//     step that does not pay (after one more step) is taken back, so a
//     clean or congested link ends where it started or one step up.
type autoWidth struct {
	Max      int       // most connections
	Width    func(int) // told the current width (for display); optional
	Download bool      // loss is the server's (reported in trailers)
}

// lossyRate is the packet loss from which a link counts as lossy.
const lossyRate = 0.002

// minLossSample is the number of packets sent in a step below which its
// loss counts as unknown: at lossyRate, 1000 packets show 2 lost. (A
// download learns the server's counts from trailers, at the end of
// pieces, so its first steps often see only a few.)
const minLossSample = 1000

// stepVerdict is what auto width does after a step.
type stepVerdict int

const (
	stepWiden    stepVerdict = iota // add connections
	stepWait                        // judge again after one more step
	stepSettle                      // keep the width, stop widening
	stepTakeBack                    // retire connections of the last step, stop
)

// cleanMax is the width that auto does not widen past on a link without
// loss: there a connection is not held back by its congestion window, and
// more connections only add work (in the lab, at 50 ms RTT, 16 or 32
// fixed connections moved 108-112 MB/s, 64 100, 128 85-95; auto, going to
// 128 and back to 64, averaged 62 over 256 MiB).
const cleanMax = 32

// minStep is the shortest step of auto width. In the lab at 50 ms RTT
// (256 MiB gets and puts, alternating with the 500 ms it was before),
// 300 ms raised auto gets on the clean link from 70 to 80 MB/s and gets
// and puts at 1 % loss by 9-14 %, left clean puts and the 100 Mbit/s
// link as they were;
// the judging rules need no more packets than that gives them.
const minStep = 300 * time.Millisecond

// minJudged is the width below which a lossy step that did not pay
// widens all the same. A few connections at random loss each follow
// Reno's sawtooth, so that a step of them is a noisy sample (and
// a new connection's first step has seen too few packets to show loss):
// in the lab, right after a reconnection at 1 % loss, 2 connections once
// measured less than 1 had, with "more" loss, and the transfer stayed on
// one connection at 0.7 MB/s.
const minJudged = 8

// judgeStep decides after a step that moved rate bytes/s with the given
// packet loss at width connections, against the step before (lastRate 0:
// this was the first), graced if the step was already given one more
// round. It returns the verdict and, to widen, the factor.
func judgeStep(width int, rate, loss, lastRate, lastLoss float64, graced bool) (stepVerdict, int) {
	// Loss measured on too few packets (negative) may hide random loss:
	// taken as lossy, it costs a clean link a few connections, where
	// taken as clean it could leave a lossy one on one connection.
	unknown := loss < 0
	lossy := unknown || loss >= lossyRate
	if !lossy && width >= cleanMax {
		return stepSettle, 0
	}
	// A step that moved nothing (a stall, a blackout, busy refusals)
	// shows no gain, even the first.
	if rate > 0 && (lastRate == 0 || rate >= lastRate*11/10) {
		// Goodput that nearly doubled with the width (or, with loss,
		// rose by half) means each connection is held back by its own
		// window: take a bigger step.
		if lossy && (lastRate == 0 || rate >= lastRate*3/2) || lastRate > 0 && rate >= lastRate*9/5 {
			return stepWiden, 4
		}
		return stepWiden, 2
	}
	if !graced {
		return stepWait, 0 // new connections start slowly
	}
	if lossy && !unknown && rate > 0 && width < minJudged {
		return stepWiden, 2 // too few connections to judge by
	}
	if !lossy || !unknown && lastLoss >= 0 && loss > lastLoss*3/2+lossyRate {
		return stepTakeBack, 0 // no gain: a clean link, or a full bottleneck
	}
	return stepSettle, 0 // random loss did not grow: something else limits
}

// moved returns the bytes the links have moved so far, as their QUIC
// connections count them (received for a download, sent for an upload).
// Counting whole blocks instead would make a lossy link's first steps,
// in which one block can take longer than a step, look like stalls.
func (a *autoWidth) moved(links []*link) int64 {
	var n uint64
	for _, l := range links {
		cs := l.qc.ConnectionStats()
		if a.Download {
			n += cs.BytesReceived
		} else {
			n += cs.BytesSent
		}
	}
	return int64(n)
}

// lossCounters returns the packets sent and lost so far by the sending
// end of the links.
func (a *autoWidth) lossCounters(links []*link) (sent, lost uint64) {
	for _, l := range links {
		if a.Download {
			sent += l.peerSent.Load()
			lost += l.peerLost.Load()
			continue
		}
		cs := l.qc.ConnectionStats()
		sent += cs.PacketsSent
		lost += cs.PacketsLost
	}
	return sent, lost
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
	var lastRate, lastLoss float64
	var lastAdded []*link
	graced := false
	lastBytes, lastT := a.moved(links), time.Now()
	sent0, lost0 := a.lossCounters(links)
	sentAll, lostAll := sent0, lost0 // since the start, for small steps
	for {
		// A step lasts six round trips, and at least minStep.
		rtt := links[0].qc.ConnectionStats().SmoothedRTT
		step := max(minStep, 6*rtt)
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-time.After(step):
		}
		now, moved := time.Now(), a.moved(links)
		rate := float64(moved-lastBytes) / now.Sub(lastT).Seconds()
		sent, lost := a.lossCounters(links)
		loss := -1.0 // unknown
		switch {
		case sent >= sent0+minLossSample:
			loss = float64(max(int64(lost)-int64(lost0), 0)) / float64(sent-sent0)
		case sent >= sentAll+minLossSample:
			// Too few for this step alone: the transfer's loss so far.
			loss = float64(max(int64(lost)-int64(lostAll), 0)) / float64(sent-sentAll)
		}
		verdict, factor := judgeStep(width, rate, loss, lastRate, lastLoss, graced)
		switch verdict {
		case stepWait:
			graced = true
			continue
		case stepSettle, stepTakeBack:
			if verdict == stepTakeBack {
				// All of a doubling; after a bigger step, back to half
				// the width (the best width lies inside the step).
				back := lastAdded
				if len(lastAdded) > width/2 {
					back = lastAdded[len(lastAdded)-len(lastAdded)*2/3:]
				}
				for _, l := range back {
					retire(l)
				}
				width -= len(back)
				if a.Width != nil {
					a.Width(width)
				}
			}
			c.log.Debug("width settled", "connections", width, "rate", rate, "loss", loss, "taken back", verdict == stepTakeBack)
			return
		}
		if width >= a.Max {
			return
		}
		next := min(width*factor, a.Max)
		if loss >= 0 && loss < lossyRate {
			next = min(next, max(width, cleanMax))
		}
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
		c.log.Debug("widened", "connections", width, "rate", rate, "loss", loss)
		lastRate, lastLoss, lastAdded, graced = rate, loss, added, false
		lastBytes, lastT = a.moved(links), time.Now()
		sent0, lost0 = a.lossCounters(links)
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
func (c *Client) autoFor(opt TransferOptions, res *TransferResult, mu *sync.Mutex, download bool) *autoWidth {
	if opt.Connections != ConnectionsAuto {
		return nil
	}
	maxConns := opt.MaxConnections
	if maxConns <= 0 {
		maxConns = 128
	}
	return &autoWidth{
		Max:      maxConns,
		Download: download,
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
