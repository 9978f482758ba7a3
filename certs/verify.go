package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Verifier decides whether the client trusts a server's certificate. A
// Fingerprint the user gave must match, whatever else holds. Then a server
// pinned in KnownHosts for HostKey must present the pinned fingerprint: a
// pin that changed is never accepted, not even for a certificate a CA
// vouches for (a CA the system trusts may not be one the user does).
// A server without a pin is trusted if its certificate chains to Roots and
// is valid for ServerName; else it is pinned on first use only if it
// matches Fingerprint or AcceptNew is set.
//
// Set the fields before the first handshake and don't change them afterwards.
// A Verifier may serve several connections at once. It must not be copied
// after first use.
type Verifier struct {
	// KnownHosts holds the pins. Required.
	KnownHosts *KnownHosts
	// HostKey is the pin key of the server being dialed, from HostKey. Required.
	HostKey string
	// ServerName is the host name or IP address (without brackets) that a
	// CA-signed certificate must be valid for; it is also sent as SNI.
	// Required.
	ServerName string
	// Roots are the CAs trusted for CA-signed server certificates. Optional:
	// nil means the system roots.
	Roots *x509.CertPool
	// Fingerprint is the fingerprint the user expects the server to present
	// (--fingerprint): any other is refused, even from a pinned or a
	// CA-signed server, and an unknown server presenting it is pinned.
	// Optional: "" means none.
	Fingerprint string
	// AcceptNew pins an unknown server on first use (--accept-new-host).
	// Optional: false refuses unknown servers.
	AcceptNew bool

	mu        sync.Mutex
	presented string
}

// Presented returns the fingerprint of the certificate the server presented
// in the most recent handshake, whether or not it was accepted, or "" if no
// handshake has reached certificate verification. Use it to show the user
// the fingerprint after a failed connection.
func (v *Verifier) Presented() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.presented
}

// TLSConfig returns a client configuration that allows only TLS 1.3, sets
// ServerName and verifies the server with v.VerifyConnection.
// InsecureSkipVerify is set because crypto/tls's own chain check would reject
// self-signed servers; VerifyConnection does the chain check itself. The
// caller adds NextProtos (ALPN). Each call returns a new Config.
func (v *Verifier) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: v.ServerName,
		// VerifyConnection verifies the chain or the pin; it also runs on resumed sessions.
		InsecureSkipVerify: true, //nolint:gosec // see above
		VerifyConnection:   v.VerifyConnection,
	}
}

// VerifyConnection implements tls.Config.VerifyConnection. It records the
// server's fingerprint for Presented and refuses it if Fingerprint is set
// and differs. Then it accepts the connection if the fingerprint matches
// the pin for HostKey, or, without a pin, if the certificate chain
// verifies against Roots for ServerName. For an unknown host it pins the
// fingerprint if it equals Fingerprint or if AcceptNew is set.
//
// It returns *FingerprintMismatchError when Fingerprint differs,
// *HostKeyChangedError when the pin differs (regardless of AcceptNew, and
// of a Fingerprint that matches), and *UnknownHostError when the host is
// unknown and neither Fingerprint nor AcceptNew is set. Errors from reading
// or updating KnownHosts are returned as well.
func (v *Verifier) VerifyConnection(cs tls.ConnectionState) error {
	if v.KnownHosts == nil || v.HostKey == "" || v.ServerName == "" {
		// An empty ServerName would make x509 skip the name check and accept
		// any CA-signed certificate, so refuse instead.
		return errors.New("certs: Verifier needs KnownHosts, HostKey and ServerName")
	}
	if len(cs.PeerCertificates) == 0 {
		return errors.New("server sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	fp := Fingerprint(leaf)
	v.mu.Lock()
	v.presented = fp
	v.mu.Unlock()

	// A fingerprint the user stated is a requirement, not only a way to
	// trust a new host: a script that names the server's identity must
	// not reach another one because known_hosts or a CA vouches for it.
	if v.Fingerprint != "" {
		want, err := ParseFingerprint(v.Fingerprint)
		if err != nil {
			return err
		}
		if want != fp {
			return &FingerprintMismatchError{Host: v.HostKey, Want: want, Got: fp}
		}
	}
	pinned, line, ok, err := v.KnownHosts.Lookup(v.HostKey)
	if err != nil {
		return err
	}
	if ok {
		if pinned == fp {
			return nil
		}
		return &HostKeyChangedError{
			Host: v.HostKey,
			Want: pinned,
			Got:  fp,
			File: v.KnownHosts.Path(),
			Line: line,
		}
	}
	caErr := v.verifyChain(cs.PeerCertificates)
	if caErr == nil {
		return nil
	}
	if v.Fingerprint != "" { // it matched
		return v.pin(fp)
	}
	if v.AcceptNew {
		return v.pin(fp)
	}
	unknown := &UnknownHostError{Host: v.HostKey, Fingerprint: fp}
	if !bytes.Equal(leaf.RawIssuer, leaf.RawSubject) {
		// Meant to be trusted through a CA: say why it is not (expired,
		// another name, an unknown CA), lest the user pin what should be
		// fixed.
		unknown.CA = caErr
	}
	return unknown
}

// verifyChain checks that certs (leaf first, then intermediates) chain to
// v.Roots and the leaf is valid for v.ServerName and server auth.
func (v *Verifier) verifyChain(certs []*x509.Certificate) error {
	opts := x509.VerifyOptions{
		Roots:         v.Roots,
		DNSName:       v.ServerName, // also matches IP SANs when ServerName is an IP
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	// Any failure (self-signed, wrong name, expired, no system roots) falls back to pinning.
	_, err := certs[0].Verify(opts)
	return err
}

// pin records fp for v.HostKey.
func (v *Verifier) pin(fp string) error {
	if err := v.KnownHosts.Add(v.HostKey, fp); err != nil {
		return fmt.Errorf("pin %s: %w", v.HostKey, err)
	}
	return nil
}

// UnknownHostError reports a server that has no pin and that the user has
// not vouched for with --fingerprint or --accept-new-host.
type UnknownHostError struct {
	Host        string // pin key, "host:port"
	Fingerprint string // fingerprint the server presented
	// CA is why a certificate that a CA signed (not a self-signed one)
	// is not trusted through it; nil for a self-signed one.
	CA error
}

// Error tells the user how to verify and accept the host.
func (e *UnknownHostError) Error() string {
	s := fmt.Sprintf("unknown host %s (fingerprint %s); verify it and rerun with --fingerprint %s or --accept-new-host",
		e.Host, e.Fingerprint, e.Fingerprint)
	if e.CA != nil {
		s += "; " + e.CAReason()
	}
	return s
}

// CAReason says why a CA-signed certificate was not trusted.
func (e *UnknownHostError) CAReason() string {
	return "its certificate is signed by a CA but not valid here: " + e.CA.Error()
}

// HostKeyChangedError reports a server whose certificate fingerprint differs
// from the one pinned for it. This can mean a man-in-the-middle attack, so it
// is never accepted automatically; the user must remove the pin.
type HostKeyChangedError struct {
	Host string // pin key, "host:port"
	Want string // pinned fingerprint
	Got  string // fingerprint the server presented
	File string // known hosts file holding the pin
	Line int    // 1-based line of the pin in File
}

// Error returns a loud multi-line warning in the style of OpenSSH, naming the
// new fingerprint and the file:line to remove if the change is expected.
func (e *HostKeyChangedError) Error() string {
	var b strings.Builder
	b.WriteString("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n")
	b.WriteString("@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n")
	b.WriteString("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n")
	b.WriteString("IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n")
	b.WriteString("Someone could be eavesdropping on you right now (man-in-the-middle attack)!\n")
	b.WriteString("It is also possible that the server's key has just been changed.\n")
	fmt.Fprintf(&b, "The fingerprint for the certificate sent by %s is\n%s\n", e.Host, e.Got)
	fmt.Fprintf(&b, "but %s:%d pins %s.\n", e.File, e.Line, e.Want)
	fmt.Fprintf(&b, "If you expected this change, remove line %d from %s and connect again.\n", e.Line, e.File)
	fmt.Fprintf(&b, "Host identification for %s failed; not connecting.", e.Host)
	return b.String()
}

// FingerprintMismatchError reports an unknown server whose fingerprint is not
// the one the user gave with --fingerprint. Nothing is pinned.
type FingerprintMismatchError struct {
	Host string // pin key, "host:port"
	Want string // fingerprint the user expected
	Got  string // fingerprint the server presented
}

// Error names both fingerprints.
func (e *FingerprintMismatchError) Error() string {
	return fmt.Sprintf("fingerprint mismatch for %s: server presented %s, but --fingerprint expects %s; not connecting and not pinning",
		e.Host, e.Got, e.Want)
}
