package certs_test

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qftp/qftp/certs"
)

// handshake serves cert on a loopback TCP listener and dials it with
// v.TLSConfig(). It returns the client's handshake error and fails the test
// if the client accepted but the server did not complete its handshake.
func handshake(t *testing.T, cert tls.Certificate, v *certs.Verifier) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	srvCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	var srvErr error
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr = err
			return
		}
		defer c.Close()
		tc := tls.Server(c, srvCfg)
		if srvErr = tc.HandshakeContext(ctx); srvErr != nil {
			return
		}
		// Drain until the client closes, so neither side blocks on the other.
		_, _ = io.Copy(io.Discard, tc)
	})

	d := tls.Dialer{Config: v.TLSConfig()}
	c, cliErr := d.DialContext(ctx, "tcp", ln.Addr().String())
	if cliErr == nil {
		if got := c.(*tls.Conn).ConnectionState().Version; got != tls.VersionTLS13 {
			t.Errorf("negotiated version %x, want TLS 1.3", got)
		}
		_ = c.Close()
	}
	// Unblocks Accept if the client never connected.
	_ = ln.Close()
	wg.Wait()
	if cliErr == nil && srvErr != nil {
		t.Fatalf("client accepted but server handshake failed: %v", srvErr)
	}
	return cliErr
}

// serverCert returns a tls.Certificate serving leaf (and chain) with key.
func serverCert(key crypto.Signer, leaf *x509.Certificate, chain ...*x509.Certificate) tls.Certificate {
	c := tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	for _, ch := range chain {
		c.Certificate = append(c.Certificate, ch.Raw)
	}
	return c
}

func TestVerifier(t *testing.T) {
	t.Parallel()

	// Two self-signed servers as made by LoadOrCreate: the real one and an
	// impostor with a different key.
	self, selfLeaf, _, err := certs.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	other, otherLeaf, _, err := certs.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	selfFP, otherFP := certs.Fingerprint(selfLeaf), certs.Fingerprint(otherLeaf)

	// A CA-signed server for "localhost" and 127.0.0.1, directly and via an intermediate.
	caCert, caKey := newCA(t, "Test Root CA")
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	leafKey, _ := mustECDSA(t)
	caSigned := serverCert(leafKey, issue(t, caCert, caKey, leafKey.Public(), leafTemplate("localhost")))
	interCert, interKey := newIntermediate(t, caCert, caKey)
	viaInter := serverCert(leafKey, issue(t, interCert, interKey, leafKey.Public(), leafTemplate("localhost")), interCert)
	caFP := certs.Fingerprint(caSigned.Leaf)

	hostKey := certs.HostKey("127.0.0.1", 7443)

	type errKind int
	const (
		errNone errKind = iota
		errUnknown
		errChanged
		errMismatch
		errOther
	)

	tests := []struct {
		name        string
		server      tls.Certificate
		pin         string // fingerprint pinned for hostKey beforehand, on line 2
		serverName  string // default "127.0.0.1"
		roots       bool   // use the test CA instead of the system roots
		fingerprint string
		acceptNew   bool
		badKHPath   bool // known_hosts path that cannot be created
		wantErr     errKind
		wantPin     string // pin for hostKey afterwards ("" = none)
	}{
		{name: "unknown host", server: self, wantErr: errUnknown},
		{name: "accept new pins", server: self, acceptNew: true, wantPin: selfFP},
		{name: "pinned match", server: self, pin: selfFP, wantPin: selfFP},
		{name: "fingerprint mismatch refused for a pinned host", server: self, pin: selfFP, fingerprint: otherFP, wantErr: errMismatch, wantPin: selfFP},
		{name: "changed key", server: other, pin: selfFP, wantErr: errChanged, wantPin: selfFP},
		{name: "changed key with accept new", server: other, pin: selfFP, acceptNew: true, wantErr: errChanged, wantPin: selfFP},
		{name: "changed key with its fingerprint", server: other, pin: selfFP, fingerprint: otherFP, wantErr: errChanged, wantPin: selfFP},
		{name: "fingerprint match pins", server: self, fingerprint: selfFP, wantPin: selfFP},
		{name: "padded fingerprint match pins", server: self, fingerprint: selfFP + "=", wantPin: selfFP},
		{name: "fingerprint mismatch", server: self, fingerprint: otherFP, wantErr: errMismatch},
		{name: "fingerprint mismatch with accept new", server: self, fingerprint: otherFP, acceptNew: true, wantErr: errMismatch},
		{name: "invalid fingerprint", server: self, fingerprint: "SHA256:bogus", wantErr: errOther},
		{name: "ca signed by ip", server: caSigned, roots: true},
		{name: "ca signed by name", server: caSigned, roots: true, serverName: "localhost"},
		{name: "ca signed via intermediate", server: viaInter, roots: true, serverName: "localhost"},
		// A pin wins over a CA: one the system trusts may not be one the user does.
		{name: "ca signed does not override a pin", server: caSigned, roots: true, pin: selfFP, wantErr: errChanged, wantPin: selfFP},
		{name: "ca signed with its fingerprint", server: caSigned, roots: true, fingerprint: caFP},
		{name: "fingerprint mismatch refused for a ca signed host", server: caSigned, roots: true, fingerprint: selfFP, wantErr: errMismatch},
		{name: "ca wrong name falls back to unknown", server: caSigned, roots: true, serverName: "wrong.example", wantErr: errUnknown},
		{name: "ca wrong name falls back to pin", server: caSigned, roots: true, serverName: "wrong.example", pin: caFP, wantPin: caFP},
		{name: "ca wrong name accept new", server: caSigned, roots: true, serverName: "wrong.example", acceptNew: true, wantPin: caFP},
		{name: "ca not in system roots", server: caSigned, serverName: "localhost", wantErr: errUnknown},
		{name: "self-signed not a root", server: self, roots: true, serverName: "localhost", wantErr: errUnknown},
		{name: "pin write error", server: self, acceptNew: true, badKHPath: true, wantErr: errOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "known_hosts")
			if tt.pin != "" {
				mustWrite(t, path, "# pins\n"+hostKey+" "+tt.pin+"\n", 0o600)
			}
			if tt.badKHPath {
				// The parent "directory" is a regular file.
				mustWrite(t, filepath.Join(dir, "file"), "", 0o600)
				path = filepath.Join(dir, "file", "known_hosts")
			}
			v := &certs.Verifier{
				KnownHosts:  certs.OpenKnownHosts(path),
				HostKey:     hostKey,
				ServerName:  tt.serverName,
				Fingerprint: tt.fingerprint,
				AcceptNew:   tt.acceptNew,
			}
			if v.ServerName == "" {
				v.ServerName = "127.0.0.1"
			}
			if tt.roots {
				v.Roots = roots
			}

			err := handshake(t, tt.server, v)

			gotFP := certs.Fingerprint(tt.server.Leaf)
			if v.Presented() != gotFP {
				t.Errorf("Presented() = %q, want %q", v.Presented(), gotFP)
			}
			var (
				unknown  *certs.UnknownHostError
				changed  *certs.HostKeyChangedError
				mismatch *certs.FingerprintMismatchError
			)
			switch tt.wantErr {
			case errNone:
				if err != nil {
					t.Fatalf("handshake: %v", err)
				}
			case errUnknown:
				if !errors.As(err, &unknown) {
					t.Fatalf("err = %v, want *UnknownHostError", err)
				}
				if unknown.Host != hostKey || unknown.Fingerprint != gotFP {
					t.Errorf("UnknownHostError = %+v, want host %s fingerprint %s", unknown, hostKey, gotFP)
				}
				// A certificate meant for a CA says why the CA did not do;
				// a self-signed one has nothing to say.
				if ca := tt.server.Leaf != self.Leaf && tt.server.Leaf != other.Leaf; ca != (unknown.CA != nil) || ca != strings.Contains(err.Error(), "signed by a CA but not valid here") {
					t.Errorf("UnknownHostError for a CA-signed %v: %v", ca, err)
				}
			case errChanged:
				if !errors.As(err, &changed) {
					t.Fatalf("err = %v, want *HostKeyChangedError", err)
				}
				want := certs.HostKeyChangedError{Host: hostKey, Want: tt.pin, Got: gotFP, File: path, Line: 2}
				if *changed != want {
					t.Errorf("HostKeyChangedError = %+v, want %+v", *changed, want)
				}
			case errMismatch:
				if !errors.As(err, &mismatch) {
					t.Fatalf("err = %v, want *FingerprintMismatchError", err)
				}
				want := certs.FingerprintMismatchError{Host: hostKey, Want: strings.TrimSuffix(tt.fingerprint, "="), Got: gotFP}
				if *mismatch != want {
					t.Errorf("FingerprintMismatchError = %+v, want %+v", *mismatch, want)
				}
			case errOther:
				if err == nil || errors.As(err, &unknown) || errors.As(err, &changed) || errors.As(err, &mismatch) {
					t.Fatalf("err = %v, want a plain error", err)
				}
			}

			if tt.badKHPath {
				return
			}
			pinned, _, ok, lerr := v.KnownHosts.Lookup(hostKey)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if pinned != tt.wantPin || ok != (tt.wantPin != "") {
				t.Errorf("pin afterwards = %q (ok=%v), want %q", pinned, ok, tt.wantPin)
			}
			if tt.pin == "" && tt.wantPin != "" {
				data, _ := os.ReadFile(path)
				if string(data) != hostKey+" "+tt.wantPin+"\n" {
					t.Errorf("known_hosts = %q, want one line for %s", data, hostKey)
				}
			}
			if tt.pin == "" && tt.wantPin == "" {
				if _, err := os.Stat(path); err == nil {
					t.Errorf("known_hosts was created but nothing should be pinned")
				}
			}
		})
	}
}

func TestVerifierTLSConfig(t *testing.T) {
	t.Parallel()
	v := &certs.Verifier{KnownHosts: certs.OpenKnownHosts("x"), HostKey: "h:1", ServerName: "h"}
	cfg := v.TLSConfig()
	if cfg.MinVersion != tls.VersionTLS13 || !cfg.InsecureSkipVerify || cfg.VerifyConnection == nil || cfg.ServerName != "h" {
		t.Errorf("TLSConfig() = %+v", cfg)
	}
	if len(cfg.NextProtos) != 0 {
		t.Errorf("NextProtos = %v, want none (caller sets ALPN)", cfg.NextProtos)
	}
}

func TestVerifyConnectionRejects(t *testing.T) {
	t.Parallel()
	_, leaf, _, err := certs.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cs := tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
	kh := certs.OpenKnownHosts(filepath.Join(t.TempDir(), "known_hosts"))

	tests := []struct {
		name string
		v    *certs.Verifier
		cs   tls.ConnectionState
	}{
		{name: "no certificates", v: &certs.Verifier{KnownHosts: kh, HostKey: "h:1", ServerName: "h", AcceptNew: true}},
		{name: "no known hosts", v: &certs.Verifier{HostKey: "h:1", ServerName: "h", AcceptNew: true}, cs: cs},
		{name: "no host key", v: &certs.Verifier{KnownHosts: kh, ServerName: "h", AcceptNew: true}, cs: cs},
		{name: "no server name", v: &certs.Verifier{KnownHosts: kh, HostKey: "h:1", AcceptNew: true}, cs: cs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.v.VerifyConnection(tt.cs); err == nil {
				t.Fatal("VerifyConnection accepted")
			}
			if _, err := os.Stat(kh.Path()); err == nil {
				t.Error("rejected connection pinned a host")
			}
		})
	}
}

func TestErrorMessages(t *testing.T) {
	t.Parallel()
	fp, fp2 := testFP("new"), testFP("old")
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{
			name: "unknown host",
			err:  &certs.UnknownHostError{Host: "127.0.0.1:7443", Fingerprint: fp},
			want: []string{"unknown host 127.0.0.1:7443 (fingerprint " + fp + "); verify it and rerun with --fingerprint " + fp + " or --accept-new-host"},
		},
		{
			name: "changed",
			err:  &certs.HostKeyChangedError{Host: "[::1]:7443", Want: fp2, Got: fp, File: "/home/u/.config/qftp/known_hosts", Line: 7},
			want: []string{
				"WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!",
				"eavesdropping",
				"man-in-the-middle",
				"[::1]:7443",
				"\n" + fp + "\n",
				fp2,
				"/home/u/.config/qftp/known_hosts:7",
				"remove line 7 from /home/u/.config/qftp/known_hosts",
			},
		},
		{
			name: "mismatch",
			err:  &certs.FingerprintMismatchError{Host: "a:1", Want: fp2, Got: fp},
			want: []string{"a:1", "presented " + fp, "--fingerprint expects " + fp2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg := tt.err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message lacks %q:\n%s", w, msg)
				}
			}
		})
	}
}
