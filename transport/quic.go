package transport

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/quic-go/quic-go"
)

// ALPN is the TLS application protocol of qftp version 1.
const ALPN = "qftp/1"

// DefaultPort is the UDP port qftpd listens on and qftp dials by default.
const DefaultPort = 7443

// Flow-control windows. quic-go grows a window from its initial size up to
// the maximum as the reader keeps up; the maxima bound memory per connection
// and are large enough for a fast link with a long round trip.
const (
	maxStreamWindow = 16 << 20
	maxConnWindow   = 48 << 20
)

// Config returns the QUIC configuration both ends use. maxStreams bounds the
// bidirectional streams the peer may have open at once.
func Config(maxStreams int64) *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout: 10 * time.Second,
		MaxIdleTimeout:       60 * time.Second,
		KeepAlivePeriod:      15 * time.Second,
		// Small initial windows bound what a connection that has not
		// logged in can make the server buffer (1 MiB); they grow as data
		// flows. (Half a megabyte cost a fifth of put throughput on
		// loopback.)
		InitialStreamReceiveWindow:     1 << 20,
		MaxStreamReceiveWindow:         maxStreamWindow,
		InitialConnectionReceiveWindow: 1 << 20,
		MaxConnectionReceiveWindow:     maxConnWindow,
		MaxIncomingStreams:             maxStreams,
		MaxIncomingUniStreams:          -1,
	}
}

// ResetKey derives the key of the stateless resets a server sends from its
// certificate's private key: stable across restarts, secret, and
// different per server. With it, a client whose connection the server no
// longer knows (the server restarted, or ended the connection while the
// network was down) learns so from the first packet it sends, instead of
// waiting for the idle timeout.
func ResetKey(cert tls.Certificate) (*quic.StatelessResetKey, error) {
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("stateless reset key: %w", err)
	}
	h := hmac.New(sha256.New, der)
	h.Write([]byte("qftp stateless reset key"))
	var k quic.StatelessResetKey
	copy(k[:], h.Sum(nil))
	return &k, nil
}

// ListenTransport is Listen on a caller's QUIC transport, for callers that
// must release the socket at a moment of their choosing (tr.Close, then
// closing tr.Conn), such as tests that restart a server on the same port.
//
// Unless tr has a StatelessResetKey, it gets the certificate's ResetKey,
// or a random one if the private key cannot be read (an HSM's, say):
// resets then work until the server restarts.
func ListenTransport(tr *quic.Transport, cert tls.Certificate, maxStreams int64, allowWindow func(*quic.Conn, uint64) bool) (*quic.Listener, error) {
	if tr.StatelessResetKey == nil {
		k, err := ResetKey(cert)
		if err != nil {
			k = new(quic.StatelessResetKey)
			_, _ = rand.Read(k[:])
		}
		tr.StatelessResetKey = k
	}
	conf := Config(maxStreams + 1)
	conf.AllowConnectionWindowIncrease = allowWindow
	return tr.Listen(serverTLS(cert), conf)
}

func serverTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{ALPN},
	}
}

// ClientKeepAlive is how often a client connection that has received
// nothing sends a PING. A striped transfer takes a connection that has
// received nothing for several of these as dead.
const ClientKeepAlive = 2 * time.Second

// ClientIdleTimeout is how long a client connection may receive nothing
// before it counts as dead (see Dial).
const ClientIdleTimeout = 20 * time.Second

// Dial connects to addr ("host:port") with tlsConf, which must do its own
// certificate verification (see certs.Verifier). The ALPN is set here.
func Dial(ctx context.Context, addr string, tlsConf *tls.Config) (*quic.Conn, error) {
	tlsConf = tlsConf.Clone()
	tlsConf.NextProtos = []string{ALPN}
	tlsConf.MinVersion = tls.VersionTLS13
	conf := Config(16)
	// A live server acknowledges a PING even when flow control or a rate
	// limit holds its data back, so that a client connection silent for
	// longer than a few keep-alives is dead (see ClientKeepAlive).
	conf.KeepAlivePeriod = ClientKeepAlive
	// A live server answers a keep-alive within a round trip, so a client
	// hears nothing for this long only from a server that is gone (killed,
	// or the network down): find out, and reconnect, sooner than the
	// server's minute. Longer than a blackout a transfer should ride out.
	conf.MaxIdleTimeout = ClientIdleTimeout
	// The caller's deadline, not quic-go's 10 s, bounds the handshake.
	if d, ok := ctx.Deadline(); ok {
		conf.HandshakeIdleTimeout = max(time.Until(d), time.Second)
	}
	ua, err := resolve(ctx, net.DefaultResolver, addr)
	if err != nil {
		return nil, err
	}
	// A socket of the server's family, not quic.DialAddr's dual-stack
	// one: an IPv6 socket receiving IPv4 packets costs more per packet
	// (on loopback a get spent 1-3 % more CPU).
	network := "udp6"
	if ua.IP.To4() != nil {
		network = "udp4"
	}
	udp, err := net.ListenUDP(network, nil)
	if err != nil {
		return nil, err
	}
	if tlsConf.ServerName == "" {
		tlsConf.ServerName, _, _ = net.SplitHostPort(addr)
	}
	conn, err := quic.Dial(ctx, udp, ua, tlsConf, conf)
	if err != nil {
		_ = udp.Close()
		return nil, err
	}
	// quic.Dial closes its transport with the connection, but not a
	// socket it was given.
	context.AfterFunc(conn.Context(), func() { _ = udp.Close() })
	return conn, nil
}

// resolve is net.ResolveUDPAddr (an IPv4 address first, if the name has
// one) bounded by ctx, so that a slow name server cannot outlast the dial
// timeout.
func resolve(ctx context.Context, r *net.Resolver, addr string) (*net.UDPAddr, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := r.LookupPort(ctx, "udp", p)
	if err != nil {
		return nil, err
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip.Unmap(), uint16(port))), nil
	}
	ips, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	pick := ips[0]
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			pick = ip
			break
		}
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(pick.Unmap(), uint16(port))), nil
}

// SplitHostPort splits "host", "host:port", "[v6]" or "[v6]:port", filling
// in DefaultPort.
func SplitHostPort(s string) (host string, port int, err error) {
	if s == "" {
		return "", 0, fmt.Errorf("empty host")
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		// No port: a bare name, a bare IPv6 address, or [v6].
		if len(s) > 1 && s[0] == '[' && s[len(s)-1] == ']' {
			return s[1 : len(s)-1], DefaultPort, nil
		}
		if net.ParseIP(s) != nil {
			return s, DefaultPort, nil
		}
		if _, _, err2 := net.SplitHostPort(s + ":0"); err2 == nil {
			return s, DefaultPort, nil
		}
		return "", 0, fmt.Errorf("bad address %q", s)
	}
	var n int
	if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n <= 0 || n > 65535 || fmt.Sprint(n) != p {
		return "", 0, fmt.Errorf("bad port %q in %q", p, s)
	}
	if h == "" {
		return "", 0, fmt.Errorf("empty host in %q", s)
	}
	return h, n, nil
}
