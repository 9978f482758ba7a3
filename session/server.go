// Package session runs logged-in qftp sessions: the server side (login,
// control requests, transfer streams, jailed file access) and the client
// side (Client) that drives them.
package session

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

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
	// MaxLoginFailures is how many failed logins one address may make
	// before it must wait (1 s, doubling per further failure, at most
	// 15 min). Zero means 10.
	MaxLoginFailures int
	// MaxUserWindow bounds the flow-control windows of all of one user's
	// connections together, in bytes. Zero means 512 MiB.
	MaxUserWindow uint64
	// MaxGroupConns bounds the connections of one session (the login's
	// and those that join it with its token). Zero means 64.
	MaxGroupConns int
	// MaxUserConns bounds the connections of all of one user's sessions
	// together (each holds QUIC state and a 1 MiB initial window that
	// the window budgets do not count). A login or join beyond it is
	// refused. Zero means 512.
	MaxUserConns int
	// MaxUserBuffers bounds the block buffers that all of one user's
	// running transfers hold on the server (each holds up to two
	// blocks, see blocks.Memory); a transfer beyond it is refused as
	// busy, and the client tries again. Zero means 544 MiB.
	MaxUserBuffers int64
	// MaxPending bounds the connections that have not logged in or
	// joined a session yet, and MaxAddrPending those of them from one
	// address; a connection beyond either is closed at once as busy.
	// Zero means 1024 and 128.
	MaxPending, MaxAddrPending int
	// MaxTotalWindow and MaxTotalBuffers bound the same for all users
	// together, so that many users at once cannot exhaust the server's
	// memory. Zero means 2 GiB each; a value below the per-user bound
	// counts as that bound.
	MaxTotalWindow  uint64
	MaxTotalBuffers int64
	// TestHookTamper, if set, may change each block the server sends after
	// it was hashed: tests use it to corrupt data on purpose.
	TestHookTamper func(vpath string, off int64, b []byte)

	mu         sync.Mutex
	ln         Listener
	sessions   map[*conn]struct{}
	draining   bool
	active     int           // transfers in progress, all sessions
	idle       chan struct{} // if not nil, closed when active drops to 0
	wg         sync.WaitGroup
	uploads    map[string]*uploadSlot // user + "\x00" + vpath of running uploads
	held       map[string]*heldQuota  // as uploads: striped uploads' reservations between pieces
	heldWG     sync.WaitGroup         // releases of held reservations under way
	userLocks  map[string]*sync.Mutex
	groups     map[string]*group // by token
	userConns  map[string]int    // connections of each user's sessions
	pending    map[string]int    // connections awaiting login, by addrKey
	pendingAll int
	refused    int                            // connections refused for pending caps, not yet logged
	refusedLog time.Time                      // when that was last logged
	committed  recentIDs[struct{}]            // user and ID of striped uploads committed lately (see wasCommitted)
	superseded recentIDs[*transport.Error]    // user and ID of striped uploads taken over lately, and why (see acquireUpload)
	limiters   map[string]*rate.Limiter       // per-user rate caps
	buffers    map[string]*semaphore.Weighted // per-user block buffer budgets
	allBufs    *semaphore.Weighted            // the budget of all users together
	verified   map[string]bool                // partial uploads whose journal this process wrote or checked
	pieces     map[pieceKey]*pieceState       // transfers in pieces, for the drain (see continueTransfer)
	digests    digestCache                    // block digests of files sent lately
	// digestTrust replaces digestTrustAge in tests (0: that).
	digestTrust time.Duration
	// testHookPace, if set, is called before a rate-capped put paces a
	// received block (tests).
	testHookPace func(vpath string, off int64)
	// testHookHold, if set, is called when the server holds a striped
	// upload's quota between its pieces (see quotaLinger).
	testHookHold func(user string, n int64)
	owed         owedReleases // releases the quota ledger refused, to retry
	// testHookRelease, if set, runs before each release of quota; an
	// error it returns stands for the ledger's (tests).
	testHookRelease func(name string, n int64) error

	stopJanitor context.CancelFunc
	win         windows
	guard       loginGuard
	now         func() time.Time // tests replace the clock of the guard
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) digestTrustAge() time.Duration {
	if s.digestTrust > 0 {
		return s.digestTrust
	}
	return digestTrustAge
}

func (s *Server) loginTimeout() time.Duration {
	if s.LoginTimeout <= 0 {
		return 60 * time.Second
	}
	return s.LoginTimeout
}

// Listener is what Serve accepts connections from: a transport.Listener or
// a quic.Listener. Accept returns quic.ErrServerClosed once it is closed.
type Listener interface {
	Accept(context.Context) (*quic.Conn, error)
	Close() error
}

// Serve accepts connections from ln until ctx is done, ln is closed or
// Shutdown is called, and runs each in its own goroutine. It returns nil
// after Shutdown; it does not wait for sessions (Shutdown does).
func (s *Server) Serve(ctx context.Context, ln Listener) error {
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
	s.wg.Add(3)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		every(jctx, time.Hour, s.sweepOnce)
	}()
	go func() {
		defer s.wg.Done()
		every(jctx, userCheckEvery, s.checkSessions)
	}()
	go func() {
		defer s.wg.Done()
		every(jctx, owedRetryEvery, s.settleAllQuotas)
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
		c := &conn{srv: s, qc: qc, log: s.logger().With("remote", qc.RemoteAddr().String()), authed: make(chan struct{})}
		s.mu.Lock()
		if s.draining {
			s.mu.Unlock()
			_ = qc.CloseWithError(transport.ConnShutdown, "server is shutting down")
			continue
		}
		unpend, err := s.claimPendingLocked(addrKey(qc.RemoteAddr()))
		if err != nil {
			refused, logNow := s.refusedPendingLocked()
			s.mu.Unlock()
			if logNow {
				c.log.Warn("connection refused", "err", err, "refused since last logged", refused)
			}
			_ = qc.CloseWithError(transport.ConnBusy, err.Error())
			continue
		}
		c.unpend = unpend
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
// running transfers finish (with their next pieces, see continueTransfer)
// or ctx is done, then closes every connection and
// waits for the sessions to end. Transfers cut off by ctx publish nothing:
// an upload stays a hidden partial file, kept for resume.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	ln := s.ln
	s.mu.Unlock()
	// The listener stays open while transfers finish, so that a client
	// connecting meanwhile is told the server is shutting down (Serve
	// closes such connections) rather than hearing nothing.
	var err error
	if werr := s.waitDrained(ctx); werr != nil {
		err = fmt.Errorf("shutdown: transfers still running: %w", werr)
	}
	if ln != nil {
		_ = ln.Close()
	}
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.sessions))
	for c := range s.sessions {
		conns = append(conns, c)
	}
	if s.stopJanitor != nil {
		s.stopJanitor()
	}
	s.mu.Unlock()
	// CloseWithError waits for each connection's loop: not under s.mu.
	for _, c := range conns {
		_ = c.qc.CloseWithError(transport.ConnShutdown, "server is shutting down")
	}
	s.wg.Wait()
	s.releaseHeld() // no piece comes any more
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
// ends. Transfers that start afterwards are not waited for. Idle, the
// server gives back the quota it held for striped uploads between their
// pieces (see quotaLinger), so that the ledger counts what is on disk.
func (s *Server) WaitIdle(ctx context.Context) error {
	s.mu.Lock()
	if s.active == 0 {
		s.mu.Unlock()
		s.releaseHeld()
		return nil
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
		s.releaseHeld()
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

// uploadSlot is a running upload of one path: one stream, or several of
// one session (a striped upload) sharing one *upload.
type uploadSlot struct {
	id     []byte        // the client's ID of the upload (striped uploads)
	grp    *group        // the session it belongs to
	hdr    journalHeader // the source it is for
	excl   bool          // a resume check: shared with nobody
	cancel []func()      // stop its streams
	up     *upload       // nil while being opened
	ready  chan struct{} // closed once up is set (or opening failed)
	refs   int
	done   chan struct{} // closed when the last holder let go
	let    chan struct{} // closed (and replaced) when any holder lets go
}

// uploadsInto reports whether an upload of user runs into a file directly
// in the directory dir (a virtual path).
func (s *Server) uploadsInto(user, dir string) bool {
	prefix := user + "\x00" + strings.TrimSuffix(dir, "/") + "/"
	s.mu.Lock()
	defer s.mu.Unlock()
	for key := range s.uploads {
		if rest, ok := strings.CutPrefix(key, prefix); ok && !strings.Contains(rest, "/") {
			return true
		}
	}
	return false
}

// acquireUpload gives the stream the upload to vp: a new one, or the
// running one of the same session and source (striped ranges). Anything
// else holding the path is taken over: stopped and waited for (up to
// 10 s); most often it is this client's own earlier try, on a connection
// that died without the server noticing yet. open creates the upload for
// a new slot; excl asks for sole use (a resume check or rm, open nil).
// why is what a striped upload taken over is told when it tries a range
// again (nil: errSuperseded). release lets go; the last to let go closes
// the upload.
func (s *Server) acquireUpload(ctx context.Context, c *conn, vp string, hdr journalHeader, id []byte, excl bool, why *transport.Error, cancel func(), open func() (*upload, error)) (*upload, func(), error) {
	key := c.user.Name + "\x00" + vp
	for range 3 {
		s.mu.Lock()
		if s.wasCommitted(c.user.Name, id) {
			s.mu.Unlock()
			return nil, nil, errCommitted
		}
		if why, ok := s.superseded.get(c.user.Name + "\x00" + string(id)); ok && len(id) > 0 {
			s.mu.Unlock()
			return nil, nil, why
		}
		slot := s.uploads[key]
		if slot == nil {
			if s.uploads == nil {
				s.uploads = make(map[string]*uploadSlot)
			}
			slot = &uploadSlot{id: id, grp: c.grp, hdr: hdr, excl: excl, cancel: []func(){cancel}, refs: 1, ready: make(chan struct{}), done: make(chan struct{}), let: make(chan struct{})}
			s.uploads[key] = slot
			s.mu.Unlock()
			var up *upload
			var err error
			if open != nil {
				up, err = open()
			}
			// Before any stream uses it: the quota its try had. (An
			// open that failed leaves a held reservation to its timer.)
			if open == nil || err == nil && up != nil {
				if n := s.adoptHeld(key, id, hdr, open != nil, why); n > 0 {
					up.addBudget(n)
				}
			}
			s.mu.Lock()
			slot.up = up
			close(slot.ready)
			s.mu.Unlock()
			release := s.releaseUpload(key, slot, id, ctx)
			if err != nil {
				release()
				return nil, nil, err
			}
			return up, release, nil
		}
		if slot.refs == 0 {
			// Its last holder is closing it: wait, then start anew.
			done := slot.done
			s.mu.Unlock()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				return nil, nil, errBusy
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			continue
		}
		// An upload discarded (say for the quota) is joined only by the
		// other ranges of its own try, which then hear its refusal: a
		// new try after an rm must not inherit it.
		newTry := len(id) == 0 || !bytes.Equal(slot.id, id)
		if !excl && !slot.excl && slot.grp == c.grp && slot.hdr == hdr && (slot.up == nil || !slot.up.discarded.Load() || !newTry) {
			slot.refs++
			slot.cancel = append(slot.cancel, cancel)
			s.mu.Unlock()
			release := s.releaseUpload(key, slot, id, ctx)
			select {
			case <-slot.ready:
			case <-ctx.Done():
				release()
				return nil, nil, ctx.Err()
			}
			s.mu.Lock()
			up := slot.up
			s.mu.Unlock()
			if up == nil {
				release()
				continue
			}
			return up, release, nil
		}
		// The upload taken over ends: its other ranges, arriving later
		// (a striped upload retries reset streams), must not take the
		// path back, or two uploads would stop each other in turn. (A
		// client's next try of a put has a new ID; its streams of one try
		// share the slot.)
		if len(slot.id) > 0 && !bytes.Equal(slot.id, id) {
			s.superseded.add(c.user.Name+"\x00"+string(slot.id), cmp.Or(why, errSuperseded))
		}
		cancels := append([]func(){}, slot.cancel...)
		s.mu.Unlock()
		for _, f := range cancels {
			f()
		}
		select {
		case <-slot.done:
		case <-time.After(10 * time.Second):
			return nil, nil, errBusy
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	return nil, nil, errBusy
}

var errBusy = &transport.Error{Code: transport.CodeBusy, Msg: "another upload to this file is running"}

// errCommitted refuses a range of an upload that is already published:
// the second copy of an endgame piece, canceled by the client, whose
// request arrived only after the commit. Taken in, it would start a new
// partial upload that nobody finishes.
var errCommitted = &transport.Error{Code: transport.CodeInvalid, Msg: "this upload was committed already"}

// errSuperseded refuses a range of a striped upload that another upload
// of the same file (from another session, or another source) took over.
var errSuperseded = &transport.Error{Code: transport.CodeInvalid, Msg: "another upload of this file took over from this one"}

// errPartialRemoved refuses a range of a striped upload whose partial file
// rm removed while it ran.
var errPartialRemoved = &transport.Error{Code: transport.CodeInvalid, Msg: "the partial upload was removed (rm) while it ran"}

// uploadStreams returns how many streams hold the upload to vp of user,
// once no more than one does or after wait, whichever comes first. A
// commit waits so: the other copy of a piece that the client's endgame
// ran ends when that client's reset reaches us on its own connection.
func (s *Server) uploadStreams(ctx context.Context, user, vp string, wait time.Duration) int {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		s.mu.Lock()
		slot := s.uploads[user+"\x00"+vp]
		if slot == nil || slot.refs <= 1 {
			s.mu.Unlock()
			if slot == nil {
				return 0
			}
			return 1
		}
		n, let := slot.refs, slot.let
		s.mu.Unlock()
		select {
		case <-let:
		case <-t.C:
			return n
		case <-ctx.Done():
			return n
		}
	}
}

func (s *Server) releaseUpload(key string, slot *uploadSlot, id []byte, ctx context.Context) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			slot.refs--
			close(slot.let)
			slot.let = make(chan struct{})
			last := slot.refs == 0
			up := slot.up
			s.mu.Unlock()
			if last {
				// The slot stays while the files close: a stream that
				// came meanwhile would find the partial still locked
				// (flock) and be refused as busy. It waits instead.
				if up != nil {
					if len(id) > 0 && !up.discarded.Load() && !up.isClosed() {
						// A striped upload between pieces keeps its
						// quota for a while (see quotaLinger), for the
						// try of the stream that let go last.
						if n := up.takeBudget(); n > 0 {
							s.holdQuota(key, slot, id, up.c.user.Name, n)
						}
					}
					up.close(ctx)
				}
				s.mu.Lock()
				if s.uploads[key] == slot {
					delete(s.uploads, key)
				}
				s.mu.Unlock()
				close(slot.done)
			}
		})
	}
}

// userLock returns the mutex that serializes, for one user, every change
// whose ledger update depends on a file's size read just before (rm, mv
// -f, the commit of an upload, discarding a partial): without it two
// sessions could release the same bytes twice.
func (s *Server) userLock(user string) *sync.Mutex {
	return lockFor(&s.mu, &s.userLocks, user)
}

// lockFor returns the mutex of key in *locks, made on first use; mu
// guards *locks.
func lockFor(mu *sync.Mutex, locks *map[string]*sync.Mutex, key string) *sync.Mutex {
	mu.Lock()
	defer mu.Unlock()
	if *locks == nil {
		*locks = make(map[string]*sync.Mutex)
	}
	l := (*locks)[key]
	if l == nil {
		l = new(sync.Mutex)
		(*locks)[key] = l
	}
	return l
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

func (s *Server) forgetVerified(user, vp string) {
	s.mu.Lock()
	delete(s.verified, user+"\x00"+vp)
	s.mu.Unlock()
}

// retireUpload stops new streams from joining the committed (or dead)
// upload up of vp: the next one opens a fresh upload.
func (s *Server) retireUpload(user, vp string, up *upload, committed []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := user + "\x00" + vp
	if slot := s.uploads[key]; slot != nil && slot.up == up {
		delete(s.uploads, key)
	}
	if len(committed) > 0 {
		s.committed.add(user+"\x00"+string(committed), struct{}{})
	}
}

// recentIDs remembers keys added lately, each with a value: late ranges
// come within seconds, and two generations of at most recentGen keys each
// keep at least the last recentGen.
type recentIDs[V any] [2]map[string]V

// recentGen is how many keys one generation of recentIDs holds.
const recentGen = 4096

func (r *recentIDs[V]) add(key string, v V) {
	if len(r[0]) >= recentGen {
		r[1], r[0] = r[0], nil
	}
	if r[0] == nil {
		r[0] = make(map[string]V)
	}
	r[0][key] = v
}

func (r *recentIDs[V]) get(key string) (V, bool) {
	for _, gen := range r {
		if v, ok := gen[key]; ok {
			return v, true
		}
	}
	var zero V
	return zero, false
}

// wasCommitted reports whether user's upload id was committed lately.
// s.mu must be held.
func (s *Server) wasCommitted(user string, id []byte) bool {
	if len(id) == 0 {
		return false
	}
	_, ok := s.committed.get(user + "\x00" + string(id))
	return ok
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

// addrKey names the source that per-address limits (the login guard,
// connections awaiting login) count a remote address against: an IPv4
// address, or an IPv6 address's /64, which one host usually has whole, so
// that it cannot get around a limit by changing addresses.
func addrKey(a net.Addr) string {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return a.String()
	}
	if ip4 := ua.IP.To4(); ip4 != nil {
		return ip4.String()
	}
	return (&net.IPNet{IP: ua.IP.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
}
