package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/userdb"
	"github.com/qftp/qftp/transport"
)

const (
	benchUser = "bench"
	// maxConns caps auto width and the server's connections per session;
	// both are the qftp and qftpd defaults, so that the table shows what
	// users get.
	maxConns = 128
	// maxStreams is qftpd's default --max-streams.
	maxStreams = 256
)

// cheapHash keeps argon2id fast: logins are not what is measured, and the
// user store is deleted at the end.
var cheapHash = userdb.Params{Memory: 64, Time: 1, Threads: 1}

// listenLoopback opens a QUIC transport on a UDP socket on 127.0.0.1 with
// a random port. The caller owns both and closes tr, then udp: that
// releases the port at once, unlike a listener from transport.Listen.
func listenLoopback() (*quic.Transport, *net.UDPConn, error) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, nil, fmt.Errorf("listen on 127.0.0.1: %w", err)
	}
	return &quic.Transport{Conn: udp}, udp, nil
}

// qftpServer is a real qftpd session server with one user, bench, whose
// home is home.
type qftpServer struct {
	addr     string // host:port
	home     string // host path of the user's home
	password string

	srv    *session.Server
	users  *userdb.Store
	tr     *quic.Transport
	udp    *net.UDPConn
	served chan error // Serve's result
}

// startQftp starts a server with its data (users.db, homes) in dir. Stop
// it with stop.
func startQftp(ctx context.Context, dir string, cert tls.Certificate) (_ *qftpServer, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	users, err := userdb.Open(filepath.Join(dir, "users.db"), userdb.Options{Params: cheapHash})
	if err != nil {
		return nil, fmt.Errorf("open user store: %w", err)
	}
	defer func() {
		if err != nil {
			_ = users.Close()
		}
	}()
	homeDir := filepath.Join(dir, "home")
	home, err := session.EnsureHome(homeDir, benchUser)
	if err != nil {
		return nil, err
	}
	pw := rand.Text()
	if err := users.Add(ctx, benchUser, pw, 0); err != nil {
		return nil, fmt.Errorf("add user %s: %w", benchUser, err)
	}
	srv := &session.Server{Users: users, HomeDir: homeDir, Version: "qftp-bench", MaxGroupConns: maxConns}
	tr, udp, err := listenLoopback()
	if err != nil {
		return nil, err
	}
	ln, err := transport.ListenTransport(tr, cert, maxStreams, srv.AllowWindowIncrease)
	if err != nil {
		_ = udp.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &qftpServer{addr: udp.LocalAddr().String(), home: home, password: pw,
		srv: srv, users: users, tr: tr, udp: udp, served: make(chan error, 1)}
	// Serve ends when stop calls Shutdown; stop waits for it.
	go func() { s.served <- srv.Serve(context.Background(), ln) }()
	return s, nil
}

// stop shuts the server down, giving running transfers until ctx ends,
// and waits for its goroutines.
func (s *qftpServer) stop(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serr := <-s.served; err == nil && serr != nil {
		err = fmt.Errorf("serve: %w", serr)
	}
	_ = s.tr.Close()
	_ = s.udp.Close()
	if cerr := s.users.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close user store: %w", cerr)
	}
	return err
}

// bareServer is the reference: a quic-go server with qftp's QUIC
// configuration that reads every stream to the end into io.Discard (as
// session.BenchmarkBareQUIC does) and then answers with the number of
// bytes it read, as 8 bytes big-endian, so that the client can check that
// everything arrived and stop its clock only then.
type bareServer struct {
	addr string

	ln     *quic.Listener
	tr     *quic.Transport
	udp    *net.UDPConn
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startBare starts a bare server on 127.0.0.1 with a random port. Stop it
// with stop.
func startBare(cert tls.Certificate) (*bareServer, error) {
	tr, udp, err := listenLoopback()
	if err != nil {
		return nil, err
	}
	ln, err := transport.ListenTransport(tr, cert, maxStreams, nil)
	if err != nil {
		_ = udp.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &bareServer{addr: udp.LocalAddr().String(), ln: ln, tr: tr, udp: udp, cancel: cancel}
	s.wg.Go(func() { s.accept(ctx) })
	return s, nil
}

func (s *bareServer) accept(ctx context.Context) {
	for {
		qc, err := s.ln.Accept(ctx)
		if err != nil {
			return
		}
		s.wg.Go(func() { s.serveConn(ctx, qc) })
	}
}

func (s *bareServer) serveConn(ctx context.Context, qc *quic.Conn) {
	for {
		str, err := qc.AcceptStream(ctx)
		if err != nil {
			return
		}
		s.wg.Go(func() { drain(str) })
	}
}

// drain reads str to its end and answers with the byte count.
func drain(str *quic.Stream) {
	n, err := io.Copy(io.Discard, str)
	if err != nil {
		str.CancelWrite(transport.StreamIO)
		return
	}
	var ack [8]byte
	binary.BigEndian.PutUint64(ack[:], uint64(n))
	if _, err := str.Write(ack[:]); err != nil {
		return
	}
	_ = str.Close()
}

// stop closes the listener and every connection (abruptly: clients have
// finished by now) and waits for the goroutines.
func (s *bareServer) stop() {
	s.cancel()
	_ = s.ln.Close()
	_ = s.tr.Close()
	s.wg.Wait()
	_ = s.udp.Close()
}

// sendBare sends n bytes (buf over and over) on a new stream of qc, or
// fewer if deadline (when not zero) passes first, and waits for the
// server's count. It returns the bytes sent, which the server confirmed.
func sendBare(ctx context.Context, qc *quic.Conn, n int64, buf []byte, deadline time.Time) (int64, error) {
	str, err := qc.OpenStreamSync(ctx)
	if err != nil {
		return 0, fmt.Errorf("open stream: %w", err)
	}
	var sent int64
	for sent < n && (deadline.IsZero() || time.Now().Before(deadline)) {
		w, err := str.Write(buf[:min(int64(len(buf)), n-sent)])
		sent += int64(w)
		if err != nil {
			return sent, fmt.Errorf("write after %d bytes: %w", sent, err)
		}
	}
	if err := str.Close(); err != nil {
		return sent, fmt.Errorf("close stream: %w", err)
	}
	var ack [8]byte
	if _, err := io.ReadFull(str, ack[:]); err != nil {
		return sent, fmt.Errorf("read the server's byte count: %w", err)
	}
	if got := int64(binary.BigEndian.Uint64(ack[:])); got != sent {
		return sent, fmt.Errorf("server received %d bytes, %d were sent", got, sent)
	}
	return sent, nil
}
