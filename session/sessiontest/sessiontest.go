// Package sessiontest starts real qftp servers for tests: on 127.0.0.1 with
// a random port, a temporary data directory, a generated certificate and
// cheap password hashing.
package sessiontest

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/qftp/qftp/certs"
	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/userdb"
	"github.com/qftp/qftp/transport"
)

// Cheap keeps argon2id fast in tests; production uses userdb.DefaultParams.
var Cheap = userdb.Params{Memory: 64, Time: 1, Threads: 1}

// Server is a real qftpd server on 127.0.0.1 with a random port and a
// temporary data directory.
type Server struct {
	Srv     *session.Server
	Users   *userdb.Store
	HomeDir string // homes live in HomeDir/NAME
	Addr    string // host:port
	FP      string // certificate fingerprint
	Data    string // data directory (users.db, server.crt, server.key)

	t  testing.TB
	tr *quic.Transport

	mu      sync.Mutex
	cert    tls.Certificate
	opts    []func(*session.Server)
	stopped bool
	crashed bool // the socket was closed under the server: its Serve error is expected
	served  chan error
}

// Start starts a server; opts may configure it before it serves.
func Start(t testing.TB, opts ...func(*session.Server)) *Server {
	t.Helper()
	data := t.TempDir()
	users, err := userdb.Open(filepath.Join(data, "users.db"), userdb.Options{Params: Cheap})
	if err != nil {
		t.Fatal(err)
	}
	cert, leaf, _, err := certs.LoadOrCreate(data)
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ts := &Server{
		t:       t,
		Users:   users,
		HomeDir: filepath.Join(data, "home"),
		Addr:    udp.LocalAddr().String(),
		FP:      certs.Fingerprint(leaf),
		Data:    data,
		cert:    cert,
		opts:    opts,
	}
	if err := ts.serve(udp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ts.Stop(5 * time.Second)
		_ = users.Close()
	})
	return ts
}

func (ts *Server) serve(udp *net.UDPConn) error {
	srv := &session.Server{Users: ts.Users, HomeDir: ts.HomeDir, Version: "qftpd test", LoginTimeout: 3 * time.Second}
	for _, o := range ts.opts {
		o(srv)
	}
	tr := &quic.Transport{Conn: udp}
	ln, err := transport.ListenTransport(tr, ts.cert, 64, srv.AllowWindowIncrease)
	if err != nil {
		_ = udp.Close()
		return err
	}
	ts.Srv, ts.tr, ts.stopped = srv, tr, false
	ts.served = make(chan error, 1)
	go func() { ts.served <- srv.Serve(context.Background(), ln) }()
	return nil
}

// Stop shuts the server down with the given grace period and waits.
func (ts *Server) Stop(grace time.Duration) error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.stopLocked(grace)
}

func (ts *Server) stopLocked(grace time.Duration) error {
	if ts.stopped {
		return nil
	}
	ts.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := ts.Srv.Shutdown(ctx)
	defer func() { ts.crashed = false }()
	if serr := <-ts.served; serr != nil && !ts.crashed {
		ts.t.Errorf("Serve: %v", serr)
	}
	// Release the port now, as an exiting process would.
	_ = ts.tr.Close()
	_ = ts.tr.Conn.Close()
	return err
}

// Restart stops the server (cutting off transfers after grace) and starts
// a new one on the same address and data, as a restarted qftpd would.
// Like a real start, the new server first reconciles the ledger.
func (ts *Server) Restart(grace time.Duration) error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.restartLocked(grace)
}

func (ts *Server) restartLocked(grace time.Duration) error {
	_ = ts.stopLocked(grace)
	addr, err := net.ResolveUDPAddr("udp", ts.Addr)
	if err != nil {
		return err
	}
	udp, err := net.ListenUDP("udp", addr)
	if err != nil {
		return err
	}
	if err := ts.serve(udp); err != nil {
		return err
	}
	return ts.Srv.Reconcile(context.Background())
}

// Crash replaces the server as a crash and a restart would: the old
// server's socket closes first, so its clients hear nothing from it (no
// CONNECTION_CLOSE), and a new one starts on the same address and
// certificate.
func (ts *Server) Crash() error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	_ = ts.tr.Conn.Close()
	ts.crashed = true
	return ts.restartLocked(0)
}

// AddUser creates a user with a home and returns the home's host path.
func (ts *Server) AddUser(name, pw string) string {
	ts.t.Helper()
	home, err := session.EnsureHome(ts.HomeDir, name)
	if err != nil {
		ts.t.Fatal(err)
	}
	if err := ts.Users.Add(context.Background(), name, pw, 0); err != nil {
		ts.t.Fatal(err)
	}
	return home
}

// TLSConfig trusts this server by its fingerprint.
func (ts *Server) TLSConfig(t testing.TB) *tls.Config {
	v := &certs.Verifier{
		KnownHosts:  certs.OpenKnownHosts(filepath.Join(t.TempDir(), "known_hosts")),
		HostKey:     ts.Addr,
		ServerName:  "127.0.0.1",
		Fingerprint: ts.FP,
	}
	return v.TLSConfig()
}

// Dial logs in as user.
func (ts *Server) Dial(t testing.TB, user, pw string) (*session.Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return session.Dial(ctx, session.DialConfig{Addr: ts.Addr, User: user, Password: pw, TLS: ts.TLSConfig(t), Retry: QuickRetry})
}

// DialVia logs in as user through addr (a relay in front of the server).
func (ts *Server) DialVia(t testing.TB, addr, user, pw string, retry session.RetryPolicy) *session.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := session.Dial(ctx, session.DialConfig{Addr: addr, User: user, Password: pw, TLS: ts.TLSConfig(t), Retry: retry})
	if err != nil {
		t.Fatalf("login via %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// QuickRetry keeps reconnection short in tests whose server goes away.
var QuickRetry = session.RetryPolicy{Attempts: 5, MaxTime: 1500 * time.Millisecond, Backoff: 20 * time.Millisecond}

// Login dials as user and closes the client at the end of the test.
func (ts *Server) Login(t testing.TB, user, pw string) *session.Client {
	t.Helper()
	c, err := ts.Dial(t, user, pw)
	if err != nil {
		t.Fatalf("login as %s: %v", user, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// User adds a user and logs in as them.
func (ts *Server) User(t testing.TB, name string) (*session.Client, string) {
	t.Helper()
	home := ts.AddUser(name, "pw-"+name)
	return ts.Login(t, name, "pw-"+name), home
}

// WriteFile writes data to p, creating directories.
func WriteFile(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ReadFile returns the contents of p.
func ReadFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// NoTempFiles fails if any qftp temporary file is left under dir.
func NoTempFiles(t testing.TB, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name := d.Name(); strings.HasPrefix(name, ".qftp-") || strings.Contains(name, ".qftp-tmp-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}

// Listen starts a bare QUIC listener with cert on the UDP address addr,
// with a transport of its own that tb's end closes (transport.Listen's
// lives as long as the process, and benchmarks start servers more than
// once).
func Listen(tb testing.TB, addr string, cert tls.Certificate) (*quic.Listener, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	tr := &quic.Transport{Conn: udp}
	tb.Cleanup(func() { _ = tr.Close(); _ = udp.Close() })
	ln, err := transport.ListenTransport(tr, cert, 4, nil)
	if err != nil {
		return nil, err
	}
	tb.Cleanup(func() { _ = ln.Close() })
	return ln, nil
}
