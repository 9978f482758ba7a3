// Package session runs logged-in qftp sessions: the server side (login,
// control requests, transfer streams, jailed file access) and the client
// side (Client) that drives them.
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/qftp/qftp/session/userdb"
	"github.com/qftp/qftp/transport"
)

// Server accepts qftp connections and runs one session per connection.
// Configure the exported fields before calling Serve; they must not change
// afterwards. A Server serves one listener once.
type Server struct {
	Users   *userdb.Store // required
	HomeDir string        // required: users' homes are HomeDir/NAME
	Logger  *slog.Logger  // optional: nil discards logs
	// LoginTimeout bounds the time from connection to a completed login:
	// opening the control stream, sending the login (which may wait for a
	// person typing a password) and checking it. Zero means 60 seconds.
	LoginTimeout time.Duration
	// Version names the server software in the login response. Optional.
	Version string
	// PartialMaxAge is how long a partial upload that nobody resumes is
	// kept. Zero means 7 days.
	PartialMaxAge time.Duration
	// TestHookTamper, if set, may change each block the server sends after
	// it was hashed: tests use it to corrupt data on purpose.
	TestHookTamper func(vpath string, off int64, b []byte)

	mu        sync.Mutex
	ln        *quic.Listener
	sessions  map[*conn]struct{}
	draining  bool
	active    int           // transfers in progress, all sessions
	idle      chan struct{} // if not nil, closed when active drops to 0
	wg        sync.WaitGroup
	uploads   map[string]*uploadSlot // user + "\x00" + vpath of running puts
	userLocks map[string]*sync.Mutex
	verified  map[string]bool // partial uploads whose journal this process wrote or checked

	stopJanitor context.CancelFunc
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) loginTimeout() time.Duration {
	if s.LoginTimeout <= 0 {
		return 60 * time.Second
	}
	return s.LoginTimeout
}

// Serve accepts connections from ln until ctx is done, ln is closed or
// Shutdown is called, and runs each in its own goroutine. It returns nil
// after Shutdown; it does not wait for sessions (Shutdown does).
func (s *Server) Serve(ctx context.Context, ln *quic.Listener) error {
	if s.Users == nil || s.HomeDir == "" {
		return errors.New("session: Server needs Users and HomeDir")
	}
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return nil
	}
	s.ln = ln
	if s.sessions == nil {
		s.sessions = make(map[*conn]struct{})
	}
	jctx, stopJanitor := context.WithCancel(context.WithoutCancel(ctx))
	s.stopJanitor = stopJanitor
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		s.janitor(jctx, time.Hour)
	}()
	for {
		qc, err := ln.Accept(ctx)
		if err != nil {
			s.mu.Lock()
			draining := s.draining
			s.mu.Unlock()
			if draining || errors.Is(err, quic.ErrServerClosed) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		c := &conn{srv: s, qc: qc, log: s.logger().With("remote", qc.RemoteAddr().String())}
		s.mu.Lock()
		if s.draining {
			s.mu.Unlock()
			_ = qc.CloseWithError(transport.ConnShutdown, "server shutting down")
			continue
		}
		s.sessions[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.run()
			s.mu.Lock()
			delete(s.sessions, c)
			s.mu.Unlock()
		}()
	}
}

// Shutdown stops accepting connections and new transfers, waits until the
// running transfers finish or ctx is done, then closes every connection and
// waits for the sessions to end. Transfers cut off by ctx publish nothing:
// an upload stays a hidden partial file, kept for resume.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	ln := s.ln
	var idle chan struct{}
	if s.active > 0 {
		if s.idle == nil {
			s.idle = make(chan struct{})
		}
		idle = s.idle
	}
	s.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	var err error
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
			err = fmt.Errorf("shutdown: transfers still running: %w", ctx.Err())
		}
	}
	s.mu.Lock()
	for c := range s.sessions {
		_ = c.qc.CloseWithError(transport.ConnShutdown, "server shutting down")
	}
	if s.stopJanitor != nil {
		s.stopJanitor()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// beginTransfer registers a transfer; it fails once the server drains.
func (s *Server) beginTransfer() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.active++
	return true
}

// WaitIdle waits until no transfer is running (in any session) or ctx
// ends. Transfers that start afterwards are not waited for.
func (s *Server) WaitIdle(ctx context.Context) error {
	s.mu.Lock()
	if s.active == 0 {
		s.mu.Unlock()
		return nil
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) endTransfer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.active == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}

// uploadSlot is a running upload (or resume check) of one path.
type uploadSlot struct {
	cancel func()        // stops it
	done   chan struct{} // closed when it has let go
}

// lockUpload claims the upload to vp of user, for a put or a resume
// check; cancel stops this holder if a later one takes over. A path held
// by another stream of the same user is taken over: the older stream is
// stopped and waited for (up to 10 s). Most often it is this client's
// own earlier try, on a connection that died without the server noticing
// yet; two live uploads to one path would be racing anyway, and the
// newer wins. The caller calls unlock when done.
func (s *Server) lockUpload(ctx context.Context, user, vp string, cancel func()) (unlock func(), ok bool) {
	key := user + "\x00" + vp
	for range 2 {
		s.mu.Lock()
		old := s.uploads[key]
		if old == nil {
			if s.uploads == nil {
				s.uploads = make(map[string]*uploadSlot)
			}
			slot := &uploadSlot{cancel: cancel, done: make(chan struct{})}
			s.uploads[key] = slot
			s.mu.Unlock()
			return func() {
				s.mu.Lock()
				if s.uploads[key] == slot {
					delete(s.uploads, key)
				}
				s.mu.Unlock()
				close(slot.done)
			}, true
		}
		s.mu.Unlock()
		old.cancel()
		select {
		case <-old.done:
		case <-time.After(10 * time.Second):
			return nil, false
		case <-ctx.Done():
			return nil, false
		}
	}
	return nil, false
}

// userLock returns the mutex that serializes, for one user, every change
// whose ledger update depends on a file's size read just before (rm, mv
// -f, the commit of an upload, discarding a partial): without it two
// sessions could release the same bytes twice.
func (s *Server) userLock(user string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.userLocks == nil {
		s.userLocks = make(map[string]*sync.Mutex)
	}
	m := s.userLocks[user]
	if m == nil {
		m = new(sync.Mutex)
		s.userLocks[user] = m
	}
	return m
}

// markVerified records that the journal of the partial upload to vp is
// known to match its data (written or checked by this process).
func (s *Server) markVerified(user, vp string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.verified == nil {
		s.verified = make(map[string]bool)
	}
	s.verified[user+"\x00"+vp] = true
}

func (s *Server) isVerified(user, vp string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.verified[user+"\x00"+vp]
}

func (s *Server) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// homeOf returns the host directory of a user's home. name has been
// validated by userdb (no separators, no dots-only names), so joining it is
// safe; this is trusted configuration, not user-supplied path input.
func (s *Server) homeOf(name string) string {
	return filepath.Join(s.HomeDir, name)
}

// EnsureHome creates the home directory of user name under homeDir.
func EnsureHome(homeDir, name string) (string, error) {
	if err := userdb.ValidName(name); err != nil {
		return "", err
	}
	dir := filepath.Join(homeDir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create home of %s: %w", name, err)
	}
	return dir, nil
}

// remoteHost is the address part of a remote address, for logs.
func remoteHost(a net.Addr) string {
	if ua, ok := a.(*net.UDPAddr); ok {
		return ua.IP.String()
	}
	return a.String()
}
