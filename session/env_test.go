package session_test

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

// cheap keeps argon2id fast in tests; production uses userdb.DefaultParams.
var cheap = userdb.Params{Memory: 64, Time: 1, Threads: 1}

// testServer is a real qftpd server on 127.0.0.1 with a random port and a
// temporary data directory.
type testServer struct {
	t       *testing.T
	srv     *session.Server
	users   *userdb.Store
	homeDir string
	addr    string
	fp      string
	ln      *quic.Listener

	stopOnce sync.Once
	served   chan error
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	data := t.TempDir()
	users, err := userdb.Open(filepath.Join(data, "users.db"), userdb.Options{Params: cheap})
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
	ts := &testServer{
		t:       t,
		users:   users,
		homeDir: filepath.Join(data, "home"),
		addr:    ln.Addr().String(),
		fp:      certs.Fingerprint(leaf),
		ln:      ln,
		served:  make(chan error, 1),
	}
	ts.srv = &session.Server{Users: users, HomeDir: ts.homeDir, Version: "qftpd test", LoginTimeout: 5 * time.Second}
	go func() { ts.served <- ts.srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ts.stop(5 * time.Second)
		_ = users.Close()
	})
	return ts
}

// stop shuts the server down with the given grace period and waits.
func (ts *testServer) stop(grace time.Duration) error {
	var err error
	ts.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		err = ts.srv.Shutdown(ctx)
		if serr := <-ts.served; serr != nil {
			ts.t.Errorf("Serve: %v", serr)
		}
	})
	return err
}

// addUser creates a user with a home and returns the home's host path.
func (ts *testServer) addUser(name, pw string) string {
	ts.t.Helper()
	home, err := session.EnsureHome(ts.homeDir, name)
	if err != nil {
		ts.t.Fatal(err)
	}
	if err := ts.users.Add(context.Background(), name, pw, 0); err != nil {
		ts.t.Fatal(err)
	}
	return home
}

// tlsConfig trusts this server by its fingerprint.
func (ts *testServer) tlsConfig(t *testing.T) *tls.Config {
	v := &certs.Verifier{
		KnownHosts:  certs.OpenKnownHosts(filepath.Join(t.TempDir(), "known_hosts")),
		HostKey:     ts.addr,
		ServerName:  "127.0.0.1",
		Fingerprint: ts.fp,
	}
	return v.TLSConfig()
}

func (ts *testServer) dial(t *testing.T, user, pw string) (*session.Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return session.Dial(ctx, session.DialConfig{Addr: ts.addr, User: user, Password: pw, TLS: ts.tlsConfig(t)})
}

// login dials as user and closes the client at the end of the test.
func (ts *testServer) login(t *testing.T, user, pw string) *session.Client {
	t.Helper()
	c, err := ts.dial(t, user, pw)
	if err != nil {
		t.Fatalf("login as %s: %v", user, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// user adds a user and logs in as them.
func (ts *testServer) user(t *testing.T, name string) (*session.Client, string) {
	t.Helper()
	home := ts.addUser(name, "pw-"+name)
	return ts.login(t, name, "pw-"+name), home
}

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// noTempFiles fails if any qftp temporary file is left under dir.
func noTempFiles(t *testing.T, dir string) {
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

