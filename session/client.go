package session

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
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
	// verified, so that a user is asked for a password only then.
	GetPassword func() (string, error)
	TLS         *tls.Config // required: verifies the server (see certs.Verifier)
	Version     string      // optional: client software, sent at login
	// Timeout bounds the handshake and, separately, the login exchange
	// (not the time GetPassword takes). Zero means no bound but ctx's.
	Timeout time.Duration
	Logger  *slog.Logger
}

// Client is a logged-in qftp session. Its methods may be called from
// several goroutines: control requests are pipelined on the control stream
// and answered in order; every Get and Put uses a stream of its own.
type Client struct {
	qc     *quic.Conn
	ctrl   *quic.Stream
	server string
	user   string

	wmu     sync.Mutex // serializes frames on the control stream
	mu      sync.Mutex // guards the fields below
	nextID  uint64
	pending map[uint64]*pendingCall
	cwd     string
	readErr error
	done    chan struct{} // closed when the reader goroutine ends
}

// ErrClosed is returned by calls on a Client whose connection has ended.
var ErrClosed = errors.New("connection closed")

// Dial connects to a server, verifies it through cfg.TLS and logs in. A
// refused login returns an error matching transport.ErrAuth.
func Dial(ctx context.Context, cfg DialConfig) (*Client, error) {
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
		return nil, fmt.Errorf("connect to %s: %w", cfg.Addr, err)
	}
	if cfg.GetPassword != nil {
		pw, err := cfg.GetPassword()
		if err != nil {
			_ = qc.CloseWithError(transport.ConnNoError, "")
			return nil, err
		}
		cfg.Password = pw
	}
	lctx, cancel := phase()
	defer cancel()
	c, err := login(lctx, qc, cfg)
	if err != nil {
		_ = qc.CloseWithError(transport.ConnNoError, "")
		return nil, err
	}
	return c, nil
}

func login(ctx context.Context, qc *quic.Conn, cfg DialConfig) (*Client, error) {
	ctrl, err := qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("open control stream: %w", transport.Explain(err))
	}
	stop := context.AfterFunc(ctx, func() { ctrl.CancelRead(transport.StreamCanceled) })
	defer stop()
	req := transport.Request{ID: 1, Op: transport.OpLogin, User: cfg.User, Password: cfg.Password, Client: cfg.Version}
	if err := transport.WriteFrame(ctrl, &req); err != nil {
		return nil, fmt.Errorf("login as %s: %w", cfg.User, loginErr(err))
	}
	var resp transport.Response
	if err := transport.ReadFrame(ctrl, &resp); err != nil {
		return nil, fmt.Errorf("login as %s: %w", cfg.User, loginErr(err))
	}
	if resp.Err != nil {
		return nil, fmt.Errorf("login as %s: %w", cfg.User, resp.Err)
	}
	c := &Client{
		qc: qc, ctrl: ctrl, server: resp.Server, user: cfg.User,
		nextID: 2, pending: make(map[uint64]*pendingCall),
		cwd: resp.Path, done: make(chan struct{}),
	}
	go c.readLoop()
	return c, nil
}

// loginErr turns a connection closed with ConnAuthFailed (the server may
// close before its answer arrives) into the same error as a refusal.
func loginErr(err error) error {
	var ae *quic.ApplicationError
	if errors.As(err, &ae) && ae.Remote && ae.ErrorCode == transport.ConnAuthFailed {
		return &transport.Error{Code: transport.CodeAuth, Msg: "authentication failed"}
	}
	return transport.Explain(err)
}

// Close ends the session: it closes the connection, which stops every
// transfer still running, and waits for the reader goroutine.
func (c *Client) Close() error {
	_ = c.ctrl.Close()
	err := c.qc.CloseWithError(transport.ConnNoError, "bye")
	<-c.done
	return err
}

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Server returns the server software's name and version from login.
func (c *Client) Server() string { return c.server }

// User returns the name the client logged in as.
func (c *Client) User() string { return c.user }

// Cwd returns the remote working directory as last reported by the server.
func (c *Client) Cwd() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cwd
}

// readLoop delivers responses to the callers waiting for them.
func (c *Client) readLoop() {
	defer close(c.done)
	for {
		var resp transport.Response
		err := transport.ReadFrame(c.ctrl, &resp)
		c.mu.Lock()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = ErrClosed
			}
			c.readErr = transport.Explain(err)
			for id, p := range c.pending {
				close(p.ch)
				delete(c.pending, id)
			}
			c.mu.Unlock()
			return
		}
		p, ok := c.pending[resp.ID]
		if ok && !resp.More {
			delete(c.pending, resp.ID)
		}
		c.mu.Unlock()
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

// call sends req and collects its responses (several for a paged ls).
func (c *Client) call(ctx context.Context, req transport.Request) ([]transport.Response, error) {
	p := &pendingCall{ch: make(chan transport.Response, 1), gone: make(chan struct{})}
	defer close(p.gone)
	c.mu.Lock()
	if c.readErr != nil {
		err := c.readErr
		c.mu.Unlock()
		return nil, err
	}
	req.ID = c.nextID
	c.nextID++
	c.pending[req.ID] = p
	c.mu.Unlock()

	c.wmu.Lock()
	err := transport.WriteFrame(c.ctrl, &req)
	c.wmu.Unlock()
	if err != nil {
		c.forget(req.ID)
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
				c.mu.Lock()
				err := c.readErr
				c.mu.Unlock()
				if err == nil {
					err = ErrClosed
				}
				return nil, err
			}
			if resp.Err != nil {
				// Keep draining in the reader: gone is closed on return.
				return nil, resp.Err
			}
			out = append(out, resp)
		case <-ctx.Done():
			c.forget(req.ID)
			return nil, ctx.Err()
		}
	}
}

func (c *Client) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// OpenRawStream opens a bare transfer stream on c's connection. It exists
// for protocol tests that need to send what a correct client never would.
func OpenRawStream(ctx context.Context, c *Client) (*quic.Stream, error) {
	return c.qc.OpenStreamSync(ctx)
}
