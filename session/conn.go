package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/qftp/qftp/fsjail"
	"github.com/qftp/qftp/session/userdb"
	"github.com/qftp/qftp/transport"
)

// conn is the server side of one client connection: before login a bare
// QUIC connection, after it a user's session with a jailed home and a
// working directory.
type conn struct {
	srv *Server
	qc  *quic.Conn
	log *slog.Logger // with the remote address

	// Set once by login, before authed is closed; read-only afterwards.
	user   userdb.User
	jail   *fsjail.Jail
	ulog   *slog.Logger  // log with the user name
	grp    *group        // the session this connection belongs to
	authed chan struct{} // closed once logged in (made by Serve)
	unpend func()        // ends the count of this connection as awaiting login
	joined bool          // joined a session (logs its comings and goings at debug)

	mu  sync.Mutex
	cwd string // virtual working directory
}

func (c *conn) getCwd() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cwd
}

func (c *conn) setCwd(p string) {
	c.mu.Lock()
	c.cwd = p
	c.mu.Unlock()
}

func (c *conn) isAuthed() bool {
	select {
	case <-c.authed:
		return true
	default:
		return false
	}
}

// run serves the connection until it closes. It owns the stream-accepting
// goroutine and every transfer goroutine and waits for them.
func (c *conn) run() {
	ctx := c.qc.Context()
	var wg sync.WaitGroup
	defer func() {
		c.unpend()
		// Closing is idempotent; it unblocks the accept loop and transfers.
		_ = c.qc.CloseWithError(transport.ConnNoError, "")
		wg.Wait()
		if c.grp != nil {
			c.srv.leaveGroup(c.grp, c)
		}
		c.srv.untrackWindow(c.qc)
		if c.jail != nil {
			_ = c.jail.Close()
		}
	}()

	// One deadline covers the whole login: opening the control stream,
	// sending the login and checking the password.
	deadline := time.Now().Add(c.srv.loginTimeout())
	loginCtx, cancel := context.WithDeadline(ctx, deadline)
	ctrl, err := c.qc.AcceptStream(loginCtx)
	cancel()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			_ = c.qc.CloseWithError(transport.ConnLoginTimeout, "login timed out")
		}
		return
	}
	// Streams other than the control stream: refused until login
	// completes, transfers afterwards.
	wg.Go(func() { c.acceptStreams(ctx, &wg) })

	if !c.login(ctx, ctrl, deadline) {
		return
	}
	c.serveControl(ctx, ctrl)
}

// acceptStreams accepts transfer streams for the life of the connection.
func (c *conn) acceptStreams(ctx context.Context, wg *sync.WaitGroup) {
	for {
		str, err := c.qc.AcceptStream(ctx)
		if err != nil {
			return
		}
		if !c.isAuthed() {
			str.CancelRead(transport.StreamNotAuthenticated)
			str.CancelWrite(transport.StreamNotAuthenticated)
			c.log.Warn("stream before login refused")
			continue
		}
		if !c.srv.beginTransfer() {
			wg.Go(func() { c.serveDraining(ctx, str) })
			continue
		}
		wg.Go(func() {
			defer c.srv.endTransfer()
			c.serveTransfer(ctx, str)
		})
	}
}

// login reads the first control message, which must be a login, and
// authenticates it. It reports whether the session may go on; on failure
// the connection is closed.
func (c *conn) login(ctx context.Context, ctrl *quic.Stream, deadline time.Time) bool {
	_ = ctrl.SetReadDeadline(deadline)
	var req transport.Request
	if err := transport.ReadFrame(ctrl, &req); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			_ = c.qc.CloseWithError(transport.ConnLoginTimeout, "login timed out")
			return false
		}
		c.log.Info("login: bad first message", "err", err)
		_ = c.qc.CloseWithError(transport.ConnProtocol, "first message must be a login")
		return false
	}
	_ = ctrl.SetReadDeadline(time.Time{})
	if req.Op == transport.OpJoin {
		return c.join(ctrl, &req)
	}
	if req.Op != transport.OpLogin {
		c.log.Info("login: first message is not a login", "op", req.Op)
		_ = c.qc.CloseWithError(transport.ConnProtocol, "first message must be a login")
		return false
	}
	log := c.log.With("user", logName(req.User))
	addr := addrKey(c.qc.RemoteAddr())
	if wait := c.srv.loginBlocked(addr); wait > 0 {
		log.Warn("login refused: too many failures from this address", "wait", wait.Round(time.Second))
		_ = transport.WriteFrame(ctrl, &transport.Response{ID: req.ID, Err: &transport.Error{Code: transport.CodeAuth, Msg: "authentication failed: " + transport.MsgLoginThrottled}})
		_ = ctrl.Close()
		_ = c.qc.CloseWithError(transport.ConnAuthFailed, transport.MsgLoginThrottled)
		return false
	}
	actx, cancel := context.WithDeadline(ctx, deadline)
	u, err := c.srv.Users.Authenticate(actx, req.User, req.Password)
	cancel()
	if err == nil || errors.Is(err, userdb.ErrBadCredentials) {
		c.srv.loginResult(addr, err == nil)
	}
	if err != nil {
		if !errors.Is(err, userdb.ErrBadCredentials) {
			// Not a verdict on the password (the user store failed, or
			// no hashing slot came free in time): the client may try
			// again, and must not take it as a refusal.
			log.Error("login failed", "err", err)
			const msg = "the server cannot check passwords right now; try again later"
			_ = transport.WriteFrame(ctrl, &transport.Response{ID: req.ID, Err: &transport.Error{Code: transport.CodeBusy, Msg: msg}})
			_ = ctrl.Close()
			_ = c.qc.CloseWithError(transport.ConnBusy, msg)
			return false
		}
		log.Warn("login failed")
		_ = transport.WriteFrame(ctrl, &transport.Response{ID: req.ID, Err: &transport.Error{Code: transport.CodeAuth, Msg: "authentication failed"}})
		_ = ctrl.Close()
		_ = c.qc.CloseWithError(transport.ConnAuthFailed, "authentication failed")
		return false
	}
	home, err := EnsureHome(c.srv.HomeDir, u.Name)
	if err == nil {
		c.jail, err = fsjail.Open(home)
	}
	if err != nil {
		log.Error("open home", "err", err)
		_ = transport.WriteFrame(ctrl, &transport.Response{ID: req.ID, Err: &transport.Error{Code: transport.CodeIO, Msg: "cannot open home directory"}})
		_ = c.qc.CloseWithError(transport.ConnInternal, "cannot open home directory")
		return false
	}
	c.user = u
	grp, err := c.srv.newGroup(c)
	if err != nil {
		log.Warn("login refused", "err", err)
		_ = transport.WriteFrame(ctrl, &transport.Response{ID: req.ID, Err: &transport.Error{Code: transport.CodeBusy, Msg: err.Error()}})
		_ = ctrl.Close()
		_ = c.qc.CloseWithError(transport.ConnNoError, err.Error())
		return false
	}
	c.setCwd("/")
	c.ulog = log
	c.grp = grp
	c.srv.trackWindow(c.qc, u.Name)
	close(c.authed)
	c.unpend()
	log.Info("login", "client", req.Client)
	if err := transport.WriteFrame(ctrl, &transport.Response{ID: req.ID, Path: "/", Server: c.srv.Version, Token: c.grp.token, Rate: u.Rate}); err != nil {
		return false
	}
	return true
}

// logName is how the log names the user a client sent: as it is if it is
// a valid name, else by its length only (perhaps a password typed into
// the wrong field, which must not reach the log).
func logName(user string) string {
	if userdb.ValidName(user) != nil {
		return fmt.Sprintf("(not a valid user name, %d bytes)", len(user))
	}
	return user
}

// join adds this connection to a logged-in session, with the token its
// login returned: no password, no argon2id, same user.
func (c *conn) join(ctrl *quic.Stream, req *transport.Request) bool {
	g, err := c.srv.joinGroup(req.Token, req.User, c)
	if err != nil {
		c.log.Warn("join refused", "user", logName(req.User), "err", err)
		_ = transport.WriteFrame(ctrl, &transport.Response{ID: req.ID, Err: &transport.Error{Code: transport.CodeAuth, Msg: err.Error()}})
		_ = ctrl.Close()
		_ = c.qc.CloseWithError(transport.ConnAuthFailed, err.Error())
		return false
	}
	home, err := EnsureHome(c.srv.HomeDir, g.user.Name)
	if err == nil {
		c.jail, err = fsjail.Open(home)
	}
	if err != nil {
		c.srv.leaveGroup(g, c)
		_ = c.qc.CloseWithError(transport.ConnInternal, "cannot open home directory")
		return false
	}
	c.user, c.grp, c.joined = g.user, g, true
	c.srv.trackWindow(c.qc, g.user.Name)
	c.setCwd("/")
	c.ulog = c.log.With("user", g.user.Name)
	close(c.authed)
	c.unpend()
	c.ulog.Debug("joined session", "conns", g.size())
	return transport.WriteFrame(ctrl, &transport.Response{ID: req.ID, Path: "/", Server: c.srv.Version}) == nil
}

// serveControl answers control requests in order until the client closes
// the control stream or the connection ends.
func (c *conn) serveControl(ctx context.Context, ctrl *quic.Stream) {
	for {
		var req transport.Request
		err := transport.ReadFrame(ctrl, &req)
		if err != nil {
			var ae *quic.ApplicationError
			if errors.Is(err, io.EOF) || ctx.Err() != nil || errors.As(err, &ae) && ae.ErrorCode == transport.ConnNoError {
				if c.joined {
					c.ulog.Debug("left session")
				} else {
					c.ulog.Info("logout")
				}
				return
			}
			var pe *transport.ProtocolError
			if errors.As(err, &pe) || errors.Is(err, transport.ErrFrameTooLarge) || errors.Is(err, io.ErrUnexpectedEOF) {
				c.ulog.Warn("bad control message", "err", err)
				_ = c.qc.CloseWithError(transport.ConnProtocol, "malformed control message")
				return
			}
			c.ulog.Info("control stream ended", "err", err)
			return
		}
		if err := c.handle(ctx, ctrl, &req); err != nil {
			c.ulog.Info("control stream ended", "err", err)
			return
		}
	}
}
