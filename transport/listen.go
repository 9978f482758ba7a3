package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/quic-go/quic-go"
)

// Listen opens a UDP socket on addr and returns a QUIC listener that speaks
// qftp with the given certificate. maxStreams is the number of concurrent
// transfers one client connection may run.
//
// A wildcard address (":7443", "0.0.0.0:7443" or "[::]:7443") gets two
// sockets on the port, one per address family, where Go would open one
// dual-stack IPv6 socket: receiving IPv4 through that costs more per
// packet (a loopback put used 1-3 % more CPU). Where the IPv6 socket
// cannot be opened for another reason than its port being taken (no IPv6
// on the host), the IPv4 socket serves alone; Addrs tells.
//
// allowWindow, if not nil, is asked before a connection's flow-control
// window grows (quic-go's AllowConnectionWindowIncrease; it must not call
// into the connection), so that a server can bound memory per user.
//
// The sockets live as long as the process (qftpd serves one listener):
// closing the listener stops accepting and leaves the connections it
// accepted alone.
func Listen(addr string, cert tls.Certificate, maxStreams int64, allowWindow func(*quic.Conn, uint64) bool) (*Listener, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	var udps []*net.UDPConn
	if ua.IP == nil || ua.IP.IsUnspecified() {
		udps, err = listenBoth(ua.Port)
	} else {
		var udp *net.UDPConn
		udp, err = net.ListenUDP("udp", ua)
		udps = []*net.UDPConn{udp}
	}
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	l := &Listener{conns: make(chan *quic.Conn), done: make(chan struct{}), failed: make(chan struct{})}
	var trs []*quic.Transport
	for _, udp := range udps {
		tr := &quic.Transport{Conn: udp}
		ln, err := ListenTransport(tr, cert, maxStreams, allowWindow)
		if err != nil {
			for _, ln := range l.lns {
				_ = ln.Close()
			}
			for _, tr := range trs {
				_ = tr.Close()
			}
			for _, u := range udps {
				_ = u.Close()
			}
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		trs = append(trs, tr)
		l.lns = append(l.lns, ln)
	}
	for _, ln := range l.lns {
		l.wg.Go(func() { l.pump(ln) })
	}
	return l, nil
}

// listenBoth opens a UDP socket on port for IPv4 and one for IPv6 only
// (port 0: the same free port for both), or the IPv4 one alone where the
// IPv6 one cannot be had for another reason than its port being taken.
func listenBoth(port int) ([]*net.UDPConn, error) {
	var err error
	for range 16 { // port 0: another program may hold the port in the other family
		var u4, u6 *net.UDPConn
		u4, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero, Port: port})
		if err != nil {
			return nil, err
		}
		u6, err = net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6unspecified, Port: u4.LocalAddr().(*net.UDPAddr).Port})
		switch {
		case err == nil:
			return []*net.UDPConn{u4, u6}, nil
		case !addrInUse(err):
			return []*net.UDPConn{u4}, nil
		}
		_ = u4.Close()
		if port != 0 {
			break
		}
	}
	return nil, err
}

// Listener accepts connections from the QUIC listeners of Listen's
// sockets.
type Listener struct {
	lns    []*quic.Listener
	conns  chan *quic.Conn // from the pumps
	done   chan struct{}   // closed by Close
	failed chan struct{}   // closed when a socket failed (err says why)
	mu     sync.Mutex
	err    error
	once   sync.Once
	wg     sync.WaitGroup // the pumps
}

// pump hands the connections ln accepts to Accept until ln is closed.
// Once the Listener is closed it closes them instead: ln keeps handing
// out the connections it had queued, and nobody else would end them.
func (l *Listener) pump(ln *quic.Listener) {
	for {
		qc, err := ln.Accept(context.Background())
		if err != nil {
			if !errors.Is(err, quic.ErrServerClosed) {
				l.mu.Lock()
				if l.err == nil {
					l.err = err
					close(l.failed)
				}
				l.mu.Unlock()
			}
			return
		}
		select {
		case l.conns <- qc:
		case <-l.done:
			_ = qc.CloseWithError(ConnShutdown, "server is shutting down")
		}
	}
}

// Accept returns the next connection, quic.ErrServerClosed once the
// listener is closed, the error of a socket that failed, or ctx's error.
func (l *Listener) Accept(ctx context.Context) (*quic.Conn, error) {
	select {
	case <-l.done:
		return nil, quic.ErrServerClosed
	default:
	}
	select {
	case qc := <-l.conns:
		return qc, nil
	case <-l.done:
		return nil, quic.ErrServerClosed
	case <-l.failed:
		l.mu.Lock()
		defer l.mu.Unlock()
		return nil, l.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Addrs returns the addresses of the listener's sockets.
func (l *Listener) Addrs() []net.Addr {
	as := make([]net.Addr, 0, len(l.lns))
	for _, ln := range l.lns {
		as = append(as, ln.Addr())
	}
	return as
}

// Addr returns the address of the listener's first socket (for a
// wildcard, the IPv4 one).
func (l *Listener) Addr() net.Addr { return l.lns[0].Addr() }

// Close stops accepting, and closes the connections that completed their
// handshake but were not accepted yet.
func (l *Listener) Close() error {
	l.once.Do(func() {
		close(l.done)
		for _, ln := range l.lns {
			_ = ln.Close()
		}
		l.wg.Wait()
	})
	return nil
}
