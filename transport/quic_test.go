package transport_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/qftp/qftp/certs"
	"github.com/qftp/qftp/session/sessiontest"
	"github.com/qftp/qftp/transport"
)

// testServerCert returns a new server certificate and a function that
// dials a server using it with transport.Dial, pinning it.
func testServerCert(t *testing.T) (tls.Certificate, func(ctx context.Context, addr, serverName string) (*quic.Conn, error)) {
	t.Helper()
	cert, leaf, _, err := certs.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return cert, func(ctx context.Context, addr, serverName string) (*quic.Conn, error) {
		// A known-hosts file per dial: subtests dial at once.
		v := &certs.Verifier{KnownHosts: certs.OpenKnownHosts(filepath.Join(t.TempDir(), "kh")), HostKey: "x:1", ServerName: serverName, Fingerprint: certs.Fingerprint(leaf)}
		return transport.Dial(ctx, addr, v.TLSConfig())
	}
}

// TestDialFamilies checks that Dial reaches a server over IPv4 and IPv6
// from a socket of the server's family, and closes that socket with the
// connection.
func TestDialFamilies(t *testing.T) {
	t.Parallel()
	cert, dial := testServerCert(t)
	for _, tc := range []struct{ name, listen, network string }{
		{"ipv4", "127.0.0.1:0", "udp4"},
		{"ipv6", "[::1]:0", "udp6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := sessiontest.Listen(t, tc.listen, cert)
			if err != nil {
				if tc.name == "ipv6" {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				t.Fatal(err)
			}
			ctx := t.Context()
			accepted := make(chan *quic.Conn, 1)
			go func() {
				defer close(accepted)
				if qc, err := ln.Accept(ctx); err == nil {
					accepted <- qc
				}
			}()
			host, _, _ := net.SplitHostPort(ln.Addr().String())
			qc, err := dial(ctx, ln.Addr().String(), host)
			if err != nil {
				t.Fatal(err)
			}
			srv, ok := <-accepted
			if !ok {
				t.Fatal("the server accepted no connection")
			}
			local := qc.LocalAddr().(*net.UDPAddr)
			if (local.IP.To4() != nil) != (tc.network == "udp4") {
				t.Errorf("local address %v is not %s", local, tc.network)
			}
			// The close reaches the server: the socket is not closed
			// before quic-go has sent it.
			_ = qc.CloseWithError(0x42, "bye")
			select {
			case <-srv.Context().Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the server did not see the connection close")
			}
			if ae, ok := errors.AsType[*quic.ApplicationError](context.Cause(srv.Context())); !ok || !ae.Remote || ae.ErrorCode != 0x42 {
				t.Fatalf("server's connection ended with %v, not the client's close", context.Cause(srv.Context()))
			}
			// The socket is closed with the connection: its port is free
			// again. Nothing signals that close (it runs when the
			// connection's context ends), so poll, for at most 5 s.
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				u, err := net.ListenUDP(tc.network, &net.UDPAddr{IP: local.IP, Port: local.Port})
				if err == nil {
					_ = u.Close()
					return
				}
			}
			t.Errorf("the dialing socket %v stayed open after the connection closed", local)
		})
	}
}

// TestListenBothFamilies checks that a wildcard address listens on one
// socket per address family (the IPv4 one takes IPv4 clients, not an
// IPv6 socket) and that both feed Accept, and that Accept reports the
// close.
func TestListenBothFamilies(t *testing.T) {
	t.Parallel()
	cert, dial := testServerCert(t)
	ln, err := transport.Listen(":0", cert, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.UDPAddr).Port
	targets := []string{net.JoinHostPort("127.0.0.1", fmt.Sprint(port))}
	switch addrs := ln.Addrs(); len(addrs) {
	case 2:
		if a := addrs[1].(*net.UDPAddr); a.IP.To4() != nil || a.Port != port {
			t.Fatalf("second socket %v is not IPv6 on port %d", a, port)
		}
		// Containers often bind [::] fine but have IPv6 off.
		if u, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err == nil {
			_ = u.Close()
			targets = append(targets, net.JoinHostPort("::1", fmt.Sprint(port)))
		}
	case 1:
		t.Log("no IPv6 here: one socket")
	default:
		t.Fatalf("%d sockets", len(addrs))
	}
	if a := ln.Addr().(*net.UDPAddr); a.IP.To4() == nil {
		t.Fatalf("first socket %v is not IPv4", a)
	}
	for _, target := range targets {
		qc, err := dial(t.Context(), target, "localhost")
		if err != nil {
			t.Fatalf("dial %s: %v", target, err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		srv, err := ln.Accept(ctx)
		cancel()
		if err != nil {
			t.Fatalf("accept from %s: %v", target, err)
		}
		// The server's side of an IPv4 connection is an IPv4 socket's.
		local := srv.LocalAddr().(*net.UDPAddr)
		remote := qc.LocalAddr().(*net.UDPAddr)
		if (local.IP.To4() != nil) != (remote.IP.To4() != nil) {
			t.Errorf("a client on %v reached the server's socket %v", remote, local)
		}
		_ = qc.CloseWithError(0, "")
	}
	_ = ln.Close()
	if _, err := ln.Accept(t.Context()); !errors.Is(err, quic.ErrServerClosed) {
		t.Fatalf("Accept after Close: %v, want quic.ErrServerClosed", err)
	}
}

// TestListenerCloseEndsQueued checks that closing a listener ends the
// connections whose handshake completed but that nobody accepted (quic-go
// keeps them queued), with one socket and with two.
func TestListenerCloseEndsQueued(t *testing.T) {
	t.Parallel()
	cert, dial := testServerCert(t)
	for _, addr := range []string{"127.0.0.1:0", ":0"} {
		t.Run(addr, func(t *testing.T) {
			t.Parallel()
			ln, err := transport.Listen(addr, cert, 4, nil)
			if err != nil {
				t.Fatal(err)
			}
			target := net.JoinHostPort("127.0.0.1", fmt.Sprint(ln.Addr().(*net.UDPAddr).Port))
			var clients []*quic.Conn
			for range 4 {
				qc, err := dial(t.Context(), target, "localhost")
				if err != nil {
					t.Fatal(err)
				}
				defer qc.CloseWithError(0, "")
				clients = append(clients, qc)
			}
			_ = ln.Close()
			for i, qc := range clients {
				select {
				case <-qc.Context().Done():
				case <-time.After(10 * time.Second):
					t.Fatalf("client %d still connected after the listener closed", i)
				}
				// Queued ones are closed as the server shutting down; one
				// still in its handshake quic-go refuses.
				cause := context.Cause(qc.Context())
				ae, app := errors.AsType[*quic.ApplicationError](cause)
				te, tpt := errors.AsType[*quic.TransportError](cause)
				if !(app && ae.Remote && ae.ErrorCode == transport.ConnShutdown) && !(tpt && te.Remote && te.ErrorCode == quic.ConnectionRefused) {
					t.Errorf("client %d ended with %v, not closed by the server", i, cause)
				}
			}
		})
	}
}
