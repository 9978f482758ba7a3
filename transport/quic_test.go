package transport_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/qftp/qftp/certs"
	"github.com/qftp/qftp/session/sessiontest"
	"github.com/qftp/qftp/transport"
)

// TestDialFamilies checks that Dial reaches a server over IPv4 and IPv6
// from a socket of the server's family, and closes that socket with the
// connection.
func TestDialFamilies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, leaf, _, err := certs.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
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
			v := &certs.Verifier{KnownHosts: certs.OpenKnownHosts(filepath.Join(t.TempDir(), "kh")), HostKey: "x:1", ServerName: host, Fingerprint: certs.Fingerprint(leaf)}
			qc, err := transport.Dial(ctx, ln.Addr().String(), v.TLSConfig())
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
