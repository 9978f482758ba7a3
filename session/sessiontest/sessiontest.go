// Package sessiontest starts real qftp servers for tests: on 127.0.0.1 with
// a random port, a temporary data directory, a generated certificate and
// cheap password hashing.
package sessiontest

import (
	"context"
	"crypto/tls"
	"errors"
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

	t  *testing.T
	ln *quic.Listener

	stopOnce sync.Once
	served   chan error
}

func Start(t *testing.T) *Server {
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
	ln, err := transport.Listen("127.0.0.1:0", cert, 64)
	if err != nil {
		t.Fatal(err)
	}
	ts := &Server{
		t:       t,
		Users:   users,
		HomeDir: filepath.Join(data, "home"),
		Addr:    ln.Addr().String(),
		FP:      certs.Fingerprint(leaf),
		Data:    data,
		ln:      ln,
		served:  make(chan error, 1),
	}
	ts.Srv = &session.Server{Users: users, HomeDir: ts.HomeDir, Version: "qftpd test", LoginTimeout: 3 * time.Second}
	go func() { ts.served <- ts.Srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ts.Stop(5 * time.Second)
		_ = users.Close()
	})
	return ts
}

// Stop shuts the server down with the given grace period and waits.
func (ts *Server) Stop(grace time.Duration) error {
	var err error
	ts.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		err = ts.Srv.Shutdown(ctx)
		if serr := <-ts.served; serr != nil {
			ts.t.Errorf("Serve: %v", serr)
		}
	})
	return err
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
func (ts *Server) TLSConfig(t *testing.T) *tls.Config {
	v := &certs.Verifier{
		KnownHosts:  certs.OpenKnownHosts(filepath.Join(t.TempDir(), "known_hosts")),
		HostKey:     ts.Addr,
		ServerName:  "127.0.0.1",
		Fingerprint: ts.FP,
	}
	return v.TLSConfig()
}

// Dial logs in as user.
func (ts *Server) Dial(t *testing.T, user, pw string) (*session.Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return session.Dial(ctx, session.DialConfig{Addr: ts.Addr, User: user, Password: pw, TLS: ts.TLSConfig(t), Retry: QuickRetry})
}

// QuickRetry keeps reconnection short in tests whose server goes away.
var QuickRetry = session.RetryPolicy{Attempts: 5, MaxTime: 3 * time.Second, Backoff: 20 * time.Millisecond}

// Login dials as user and closes the client at the end of the test.
func (ts *Server) Login(t *testing.T, user, pw string) *session.Client {
	t.Helper()
	c, err := ts.Dial(t, user, pw)
	if err != nil {
		t.Fatalf("login as %s: %v", user, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// User adds a user and logs in as them.
func (ts *Server) User(t *testing.T, name string) (*session.Client, string) {
	t.Helper()
	home := ts.AddUser(name, "pw-"+name)
	return ts.Login(t, name, "pw-"+name), home
}

// WriteFile writes data to p, creating directories.
func WriteFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ReadFile returns the contents of p.
func ReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// NoTempFiles fails if any qftp temporary file is left under dir.
func NoTempFiles(t *testing.T, dir string) {
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
