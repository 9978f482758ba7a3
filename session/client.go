package session

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/qftp/qftp/transport"
)

// DialConfig says where and as whom a Client logs in.
type DialConfig struct {
	Addr     string // required: "host:port"
	User     string // required
	Password string // required unless GetPassword is set
	// GetPassword, if set, is called once the server's identity is
	// verified, so that a user is asked for a password only then. It is
	// called once; reconnections reuse the answer.
	GetPassword func() (string, error)
	TLS         *tls.Config // required: verifies the server (see certs.Verifier)
	Version     string      // optional: client software, sent at login
	// Timeout bounds the handshake and, separately, the login exchange
	// (not the time GetPassword takes). Zero means no bound but ctx's.
	Timeout time.Duration
	// Retry says how to reconnect when the connection drops; transfers
	// then resume where they stopped. The zero value is DefaultRetry.
	Retry  RetryPolicy
	Logger *slog.Logger // optional
}

// RetryPolicy bounds reconnection and transfer retries.
type RetryPolicy struct {
	// Attempts is how many times one operation is tried in all. Zero
	// means DefaultRetry's; 1 means no retries.
	Attempts int
	// MaxTime bounds the time spent reconnecting for one operation. Zero
	// means DefaultRetry's.
	MaxTime time.Duration
	// Backoff is the first wait between reconnection attempts; it doubles
	// up to maxBackoff. Zero means DefaultRetry's.
	Backoff time.Duration
}

// DefaultRetry is the retry policy of a zero RetryPolicy.
var DefaultRetry = RetryPolicy{Attempts: 20, MaxTime: 2 * time.Minute, Backoff: 250 * time.Millisecond}

// maxBackoff bounds the wait between reconnection attempts: short, so that
// a transfer resumes within moments of the network's return (a blackout,
// a laptop's Wi-Fi dropping makes sends fail at once, ending the QUIC
// connections).
const maxBackoff = 2 * time.Second

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts == 0 {
		p.Attempts = DefaultRetry.Attempts
	}
	if p.MaxTime == 0 {
		p.MaxTime = DefaultRetry.MaxTime
	}
	if p.Backoff == 0 {
		p.Backoff = DefaultRetry.Backoff
	}
	return p
}

// Client is a logged-in qftp session. Its methods may be called from
// several goroutines: control requests are pipelined on the control stream
// and answered in order; every transfer uses a stream of its own. When the
// connection drops, the next operation (and every transfer that was
// running) reconnects, logs in again and returns to the working directory.
type Client struct {
	cfg    DialConfig
	policy RetryPolicy
	log    *slog.Logger
	server string
	// The server's rate cap for this user (bytes/s, 0: none), as the
	// last login or df said: batches pace themselves by it.
	serverRate atomic.Int64

	reconnMu sync.Mutex // one reconnection at a time
	mu       sync.Mutex // guards the fields below
	cur      *link
	extra    []*link // connections that joined the session, for striping
	striping int     // striped transfers running
	token    []byte  // the session's token, to join more connections
	cwd      string
	closed   bool
	closing  chan struct{} // closed by Close, to stop reconnecting
	// refused is why the session cannot go on, once the server ended it
	// for good (the user's password changed, the user was deleted) or
	// refused a login to reconnect: trying again would only fail the same
	// way and count as failed logins against this address.
	refused error
	nextID  uint64

	stallAfter time.Duration // tests: see stallAfter (0: that)
}

// link is one QUIC connection of a Client and its control stream.
type link struct {
	qc      *quic.Conn
	ctrl    *quic.Stream
	wmu     sync.Mutex // serializes frames on the control stream
	mu      sync.Mutex // guards pending and readErr
	pending map[uint64]*pendingCall
	readErr error
	done    chan struct{} // closed when the reader goroutine ends
	// What the server's end of this connection reported last (in get
	// trailers): packets sent and declared lost.
	peerSent, peerLost atomic.Uint64
}

// ErrClosed is returned by calls on a Client whose connection has ended.
var ErrClosed = errors.New("connection closed")

// Dial connects to a server, verifies it through cfg.TLS and logs in. A
// refused login returns an error matching transport.ErrAuth.
func Dial(ctx context.Context, cfg DialConfig) (*Client, error) {
	c := &Client{cfg: cfg, policy: cfg.Retry.withDefaults(), log: cfg.Logger, nextID: 2, closing: make(chan struct{})}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	l, resp, err := c.connect(ctx, true)
	if err != nil {
		return nil, err
	}
	c.cur, c.cwd, c.server, c.token = l, resp.Path, resp.Server, resp.Token
	c.serverRate.Store(resp.Rate)
	return c, nil
}

// connect dials and logs in once.
func (c *Client) connect(ctx context.Context, first bool) (*link, transport.Response, error) {
	cfg := c.cfg
	phase := func() (context.Context, context.CancelFunc) {
		if cfg.Timeout > 0 {
			return context.WithTimeout(ctx, cfg.Timeout)
		}
		return context.WithCancel(ctx)
	}
	dctx, cancel := phase()
	qc, err := transport.Dial(dctx, cfg.Addr, cfg.TLS)
	cancel()
	if err != nil {
		return nil, transport.Response{}, dialError(ctx, cfg, err)
	}
	if first && cfg.GetPassword != nil {
		pw, err := cfg.GetPassword()
		if err != nil {
			_ = qc.CloseWithError(transport.ConnNoError, "")
			return nil, transport.Response{}, err
		}
		c.cfg.Password = pw
		cfg.Password = pw
	}
	lctx, cancel := phase()
	defer cancel()
	l, resp, err := login(lctx, qc, cfg)
	if err != nil {
		_ = qc.CloseWithError(transport.ConnNoError, "")
		return nil, resp, err
	}
	return l, resp, nil
}

// dialError says why dialing cfg.Addr failed. The deadline of our own
// (cfg.Timeout) running out means the server did not answer.
func dialError(ctx context.Context, cfg DialConfig, err error) error {
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		err = &transport.ExplainedError{Text: fmt.Sprintf("no answer from the server in %s", cfg.Timeout), Err: err}
	}
	return fmt.Errorf("connect to %s: %w", cfg.Addr, transport.Explain(err))
}

func login(ctx context.Context, qc *quic.Conn, cfg DialConfig) (*link, transport.Response, error) {
	var resp transport.Response
	ctrl, err := qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, resp, fmt.Errorf("login as %s: %w", cfg.User, transport.Explain(err)) // the server may refuse (busy) before the stream opens
	}
	stop := context.AfterFunc(ctx, func() { ctrl.CancelRead(transport.StreamCanceled) })
	defer stop()
	req := transport.Request{ID: 1, Op: transport.OpLogin, User: cfg.User, Password: cfg.Password, Client: cfg.Version}
	if err := transport.WriteFrame(ctrl, &req); err != nil {
		return nil, resp, fmt.Errorf("login as %s: %w", cfg.User, loginErr(ctx, err))
	}
	if err := transport.ReadFrame(ctrl, &resp); err != nil {
		return nil, resp, fmt.Errorf("login as %s: %w", cfg.User, loginErr(ctx, err))
	}
	if resp.Err != nil {
		return nil, resp, fmt.Errorf("login as %s: %w", cfg.User, resp.Err)
	}
	l := &link{qc: qc, ctrl: ctrl, pending: make(map[uint64]*pendingCall), done: make(chan struct{})}
	go l.readLoop()
	return l, resp, nil
}

// loginErr turns a connection closed with ConnAuthFailed (the server may
// close before its answer arrives) into the same error as a refusal, and
// our own cancel at ctx's end into ctx's error.
func loginErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("no answer to the login: %w", ctx.Err())
	}
	var ae *quic.ApplicationError
	if errors.As(err, &ae) && ae.Remote && ae.ErrorCode == transport.ConnAuthFailed {
		// A refused join says why in the close reason.
		msg := "authentication failed"
		if ae.ErrorMessage != "" && ae.ErrorMessage != msg {
			msg += ": " + ae.ErrorMessage
		}
		return &transport.Error{Code: transport.CodeAuth, Msg: msg}
	}
	return transport.Explain(err)
}

// Close ends the session: it closes the connection, which stops every
// transfer still running, and waits for the reader goroutine.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.closing)
	l, extra := c.cur, c.extra
	c.extra = nil
	c.mu.Unlock()
	for _, x := range extra {
		_ = x.close()
	}
	return l.close()
}

func (l *link) close() error {
	_ = l.ctrl.Close()
	err := l.qc.CloseWithError(transport.ConnNoError, "bye")
	<-l.done
	return err
}

// link returns the current connection.
func (c *Client) link() *link {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// alive reports whether l's connection still works.
func (l *link) alive() bool {
	select {
	case <-l.done:
		return false
	default:
		return l.qc == nil || l.qc.Context().Err() == nil // nil: a test's stand-in
	}
}

// reconnect replaces a dead connection (old) with a new one, with backoff,
// within the retry policy, and returns how long that took. If another
// goroutine already replaced old, it returns at once, and zero.
func (c *Client) reconnect(ctx context.Context, old *link) (time.Duration, error) {
	c.reconnMu.Lock()
	defer c.reconnMu.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, ErrClosed
	}
	if c.cur != old && c.cur.alive() {
		c.mu.Unlock()
		return 0, nil
	}
	if c.refused != nil {
		c.mu.Unlock()
		return 0, &ConnLostError{Err: c.refused} // callers may set its Cause
	}
	cwd := c.cwd
	c.mu.Unlock()
	if old.qc != nil {
		if why := transport.Explain(context.Cause(old.qc.Context())); errors.Is(why, transport.ErrAuth) {
			return 0, c.refuse(fmt.Errorf("the server ended the session: %w", why))
		}
	}
	_ = old.qc.CloseWithError(transport.ConnNoError, "reconnecting")
	<-old.done

	began := time.Now()
	deadline := began.Add(c.policy.MaxTime)
	wait := c.policy.Backoff
	var lastErr error
	tries := 0
	for attempt := 1; attempt <= max(c.policy.Attempts, 1); attempt++ {
		tries = attempt
		actx, cancel := context.WithDeadline(ctx, deadline)
		l, resp, err := c.connect(actx, false)
		if err == nil {
			// Back to the working directory before anyone uses the new
			// connection; if it is gone, the session is at "/" now.
			newCwd := "/"
			if cwd != "/" {
				if out, err := l.call(actx, transport.Request{ID: 1 << 62, Op: transport.OpCd, Path: cwd}); err == nil {
					newCwd = out[len(out)-1].Path
				} else {
					c.log.Warn("return to working directory after reconnecting", "cwd", cwd, "err", err)
				}
			}
			cancel()
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				_ = l.close()
				return 0, ErrClosed
			}
			// The old session's joined connections ended with it.
			old := c.extra
			c.cur, c.cwd, c.token, c.extra = l, newCwd, resp.Token, nil
			c.serverRate.Store(resp.Rate)
			c.mu.Unlock()
			for _, x := range old {
				_ = x.close()
			}
			c.log.Info("reconnected", "addr", c.cfg.Addr, "attempt", attempt)
			return max(time.Since(began), 1), nil
		}
		if actx.Err() != nil && ctx.Err() == nil {
			// The retry time ran out during this try: the server did
			// not answer (a dial's own timeout says so itself).
			err = errors.New("no answer from the server")
		}
		cancel()
		lastErr = err
		c.log.Debug("reconnect failed", "attempt", attempt, "err", err)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if transport.LoginThrottled(err) {
			break // the address waits; the password may be right
		}
		if errors.Is(err, transport.ErrAuth) {
			return 0, c.refuse(err)
		}
		if time.Now().Add(wait).After(deadline) {
			break
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-c.closing:
			return 0, ErrClosed
		}
		wait = min(2*wait, maxBackoff)
	}
	return 0, &ConnLostError{Err: lastErr, Tries: tries, Spent: time.Since(began)}
}

// refuse records that the session cannot go on (see Client.refused) and
// returns the error every reconnection gives from now on.
func (c *Client) refuse(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refused == nil {
		c.refused = err
	}
	return &ConnLostError{Err: c.refused}
}

// ConnLostError is a transfer's failure to reconnect after its connection
// was lost: the server is gone for now, and a batch stops rather than try
// again for each of its files.
type ConnLostError struct {
	Cause error // what ended the connection, if known
	Err   error // why the last try to reconnect failed
	Tries int
	Spent time.Duration // trying
}

func (e *ConnLostError) Error() string {
	if e.Tries == 0 { // not tried: the server ended the session for good
		return e.Err.Error()
	}
	tries := "1 try"
	if e.Tries != 1 {
		tries = fmt.Sprintf("%d tries", e.Tries)
	}
	msg := fmt.Sprintf("could not reconnect (%s in %s): %v", tries, e.Spent.Round(100*time.Millisecond), e.Err)
	if e.Cause != nil {
		return e.Cause.Error() + "; " + msg
	}
	return msg
}

func (e *ConnLostError) Unwrap() error { return e.Err }

// Server returns the server software's name and version from login.
func (c *Client) Server() string { return c.server }

// User returns the name the client logged in as.
func (c *Client) User() string { return c.cfg.User }

// Cwd returns the remote working directory as last reported by the server.
func (c *Client) Cwd() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cwd
}

// readLoop delivers responses to the callers waiting for them.
func (l *link) readLoop() {
	defer close(l.done)
	for {
		var resp transport.Response
		err := transport.ReadFrame(l.ctrl, &resp)
		l.mu.Lock()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = ErrClosed
			}
			l.readErr = transport.Explain(err)
			for id, p := range l.pending {
				close(p.ch)
				delete(l.pending, id)
			}
			l.mu.Unlock()
			return
		}
		p, ok := l.pending[resp.ID]
		if ok && !resp.More {
			delete(l.pending, resp.ID)
		}
		l.mu.Unlock()
		if ok {
			select {
			case p.ch <- resp:
			case <-p.gone: // the caller gave up
			}
			if !resp.More {
				close(p.ch)
			}
		}
	}
}

// pendingCall is a request waiting for its responses.
type pendingCall struct {
	ch   chan transport.Response // closed after the last response
	gone chan struct{}           // closed when the caller stops waiting
}

// errConnLost marks a call that failed because the connection ended.
type errConnLost struct{ error }

func (e errConnLost) Unwrap() error { return e.error }

// call sends req and collects its responses (several for a paged ls). If
// the connection is down it reconnects first; a request whose connection
// fails while it waits is not sent again (it may have run).
func (c *Client) call(ctx context.Context, req transport.Request) ([]transport.Response, error) {
	// Paths go out absolute, made so from the working directory the
	// client knows: after a reconnection the server's session starts at
	// "/", and a relative path must not then name another file.
	if req.Path != "" && req.Op != transport.OpPwd {
		req.Path = c.absRemote(req.Path)
	}
	if req.To != "" {
		req.To = c.absRemote(req.To)
	}
	l := c.link()
	if !l.alive() {
		if _, err := c.reconnect(ctx, l); err != nil {
			return nil, err
		}
		l = c.link()
	}
	c.mu.Lock()
	req.ID = c.nextID
	c.nextID++
	c.mu.Unlock()
	out, err := l.call(ctx, req)
	if err != nil && !l.alive() && ctx.Err() == nil {
		var we *transport.Error
		if !errors.As(err, &we) {
			err = errConnLost{err}
		}
	}
	return out, err
}

func (l *link) call(ctx context.Context, req transport.Request) ([]transport.Response, error) {
	// A request once sent is carried out even if its answer is not
	// awaited: after a cancel (Ctrl-C in rm -r), send nothing more.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := &pendingCall{ch: make(chan transport.Response, 1), gone: make(chan struct{})}
	defer close(p.gone)
	l.mu.Lock()
	if l.readErr != nil {
		err := l.readErr
		l.mu.Unlock()
		return nil, err
	}
	l.pending[req.ID] = p
	l.mu.Unlock()

	l.wmu.Lock()
	err := transport.WriteFrame(l.ctrl, &req)
	l.wmu.Unlock()
	if err != nil {
		l.forget(req.ID)
		return nil, transport.Explain(err)
	}
	var out []transport.Response
	for {
		select {
		case resp, ok := <-p.ch:
			if !ok {
				if n := len(out); n > 0 && !out[n-1].More {
					return out, nil
				}
				l.mu.Lock()
				err := l.readErr
				l.mu.Unlock()
				if err == nil {
					err = ErrClosed
				}
				return nil, err
			}
			if resp.Err != nil {
				return nil, resp.Err
			}
			out = append(out, resp)
		case <-ctx.Done():
			l.forget(req.ID)
			return nil, ctx.Err()
		}
	}
}

func (l *link) forget(id uint64) {
	l.mu.Lock()
	delete(l.pending, id)
	l.mu.Unlock()
}
