package session_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/time/rate"

	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/sessiontest"
	"github.com/qftp/qftp/transport"
	"github.com/qftp/qftp/transport/blocks"
)

// rawConn dials the test server with a bare QUIC connection, to speak the
// protocol wrongly on purpose.
func rawConn(t *testing.T, ts *sessiontest.Server) *quic.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	qc, err := transport.Dial(ctx, ts.Addr, ts.TLSConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = qc.CloseWithError(0, "") })
	return qc
}

// closedWith waits for the server to close qc and returns the code.
func closedWith(t *testing.T, qc *quic.Conn) quic.ApplicationErrorCode {
	t.Helper()
	select {
	case <-qc.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("server did not close the connection")
	}
	var ae *quic.ApplicationError
	if err := context.Cause(qc.Context()); !errors.As(err, &ae) || !ae.Remote {
		t.Fatalf("closed with %v, want a remote application error", err)
	}
	return ae.ErrorCode
}

func TestMalformedControl(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	ts.AddUser("kim", "pw")
	login := &transport.Request{ID: 1, Op: transport.OpLogin, User: "kim", Password: "pw"}
	tests := []struct {
		name  string
		login bool   // log in first
		send  []byte // raw bytes on the control stream
		want  quic.ApplicationErrorCode
	}{
		{"not a login first", false, mustFrame(t, &transport.Request{ID: 1, Op: transport.OpLs}), transport.ConnProtocol},
		{"garbage first", false, append(binary.BigEndian.AppendUint32(nil, 3), 0xff, 0xff, 0xff), transport.ConnProtocol},
		{"oversized length first", false, binary.BigEndian.AppendUint32(nil, 1<<30), transport.ConnProtocol},
		{"oversized after login", true, binary.BigEndian.AppendUint32(nil, transport.MaxFrameSize+1), transport.ConnProtocol},
		{"garbage after login", true, append(binary.BigEndian.AppendUint32(nil, 2), 0xa1, 0x00), transport.ConnProtocol},
		{"truncated after login", true, append(binary.BigEndian.AppendUint32(nil, 100), 1, 2, 3), transport.ConnProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			qc := rawConn(t, ts)
			ctrl, err := qc.OpenStreamSync(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if tt.login {
				if err := transport.WriteFrame(ctrl, login); err != nil {
					t.Fatal(err)
				}
				var resp transport.Response
				if err := transport.ReadFrame(ctrl, &resp); err != nil || resp.Err != nil {
					t.Fatalf("login: %v %v", err, resp.Err)
				}
			}
			if _, err := ctrl.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			if tt.name == "truncated after login" {
				_ = ctrl.Close()
			}
			if code := closedWith(t, qc); code != tt.want {
				t.Fatalf("closed with code %#x, want %#x", code, tt.want)
			}
		})
	}
	// The server keeps serving others.
	c := ts.Login(t, "kim", "pw")
	if _, err := c.Pwd(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func mustFrame(t *testing.T, v any) []byte {
	t.Helper()
	b, err := transport.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

func TestUnknownOpAnswered(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	ts.AddUser("lee", "pw")
	qc := rawConn(t, ts)
	ctrl, err := qc.OpenStreamSync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Pipelined: login, an unknown op, a second login, pwd.
	for _, r := range []transport.Request{
		{ID: 1, Op: transport.OpLogin, User: "lee", Password: "pw"},
		{ID: 2, Op: "frobnicate"},
		{ID: 3, Op: transport.OpLogin, User: "lee", Password: "pw"},
		{ID: 4, Op: transport.OpPwd},
	} {
		if err := transport.WriteFrame(ctrl, &r); err != nil {
			t.Fatal(err)
		}
	}
	want := []struct {
		id   uint64
		code string
	}{{1, ""}, {2, transport.CodeUnsupported}, {3, transport.CodeProtocol}, {4, ""}}
	for _, w := range want {
		var resp transport.Response
		if err := transport.ReadFrame(ctrl, &resp); err != nil {
			t.Fatal(err)
		}
		code := ""
		if resp.Err != nil {
			code = resp.Err.Code
		}
		if resp.ID != w.id || code != w.code {
			t.Fatalf("response %+v, want id %d code %q", resp, w.id, w.code)
		}
	}
}

func TestStreamBeforeLogin(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	home := ts.AddUser("mia", "pw")
	sessiontest.WriteFile(t, filepath.Join(home, "f"), []byte("secret"))
	qc := rawConn(t, ts)
	ctrl, err := qc.OpenStreamSync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Opening the control stream is not a login; a transfer now is refused.
	if _, err := ctrl.Write([]byte{}); err != nil {
		t.Fatal(err)
	}
	str, err := qc.OpenStreamSync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := transport.WriteFrame(str, &transport.TransferRequest{Op: transport.OpGet, Path: "/f", Length: -1}); err != nil {
		t.Fatal(err)
	}
	_ = str.Close()
	_, err = io.ReadAll(str)
	var se *quic.StreamError
	if !errors.As(err, &se) || se.ErrorCode != transport.StreamNotAuthenticated {
		t.Fatalf("read: %v, want stream reset with code NotAuthenticated", err)
	}
}

func TestLoginTimeout(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	qc := rawConn(t, ts)
	// No control stream at all: the server gives up after LoginTimeout.
	if code := closedWith(t, qc); code != transport.ConnLoginTimeout {
		t.Fatalf("closed with %#x, want login timeout", code)
	}
}

// Connections that have not logged in yet are bounded, from one address
// and in all: one beyond is refused as busy with the reason, and a login
// frees its place at once.
func TestPendingLogins(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opt  func(*session.Server)
		want string
	}{
		{"per address", func(s *session.Server) { s.MaxAddrPending = 2 }, "login as pat: server busy: too many connections from 127.0.0.1 awaiting login (at most 2); try again shortly"},
		{"in all", func(s *session.Server) { s.MaxPending = 2 }, "login as pat: server busy: too many connections awaiting login (at most 2); try again shortly"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := sessiontest.Start(t, tc.opt, func(s *session.Server) { s.LoginTimeout = time.Minute })
			ts.AddUser("pat", "pw")
			var login bytes.Buffer
			if err := transport.WriteFrame(&login, &transport.Request{ID: 1, Op: transport.OpLogin, User: "pat", Password: "pw"}); err != nil {
				t.Fatal(err)
			}
			// Two connections that have begun their login frames hold both
			// places. Each waits until the server has refused a stream it
			// opened before login: then the server has surely counted it.
			awaiting := func() *quic.Stream {
				qc := rawConn(t, ts)
				ctrl, err := qc.OpenStreamSync(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := ctrl.Write(login.Bytes()[:1]); err != nil {
					t.Fatal(err)
				}
				str, err := qc.OpenStreamSync(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				_, _ = str.Write([]byte{0})
				var se *quic.StreamError
				if _, err := io.ReadAll(str); !errors.As(err, &se) || se.ErrorCode != transport.StreamNotAuthenticated {
					t.Fatalf("stream before login: %v", err)
				}
				return ctrl
			}
			first := awaiting()
			awaiting()
			_, err := ts.Dial(t, "pat", "pw")
			var we *transport.Error
			if !errors.As(err, &we) || we.Code != transport.CodeBusy || err.Error() != tc.want {
				t.Fatalf("third connection: %v, want busy: %q", err, tc.want)
			}
			// The first logs in; its place is free before it hears so.
			if _, err := first.Write(login.Bytes()[1:]); err != nil {
				t.Fatal(err)
			}
			var resp transport.Response
			if err := transport.ReadFrame(first, &resp); err != nil || resp.Err != nil {
				t.Fatalf("login: %v %v", err, resp.Err)
			}
			c, err := ts.Dial(t, "pat", "pw")
			if err != nil {
				t.Fatalf("after a login freed a place: %v", err)
			}
			_ = c.Close()
		})
	}
}

// A put the client gives up on while the server paces it under the user's
// rate cap lets go at once, not after the block's time at that rate: a
// striped upload's endgame copy that lost must not hold up the commit.
func TestCanceledPutStopsPacing(t *testing.T) {
	t.Parallel()
	paced := make(chan struct{}, 1)
	ts := sessiontest.Start(t, func(s *session.Server) {
		session.SetPaceHook(s, func(string, int64) {
			select {
			case paced <- struct{}{}:
			default:
			}
		})
	})
	c, _ := ts.User(t, "ria")
	// At 64 KiB/s, once the 1 MiB burst is used, the rest of a 2 MiB block
	// waits 16 s.
	if err := ts.Users.SetRate(t.Context(), "ria", 64<<10); err != nil {
		t.Fatal(err)
	}
	const bs = 2 << 20
	str, err := session.OpenRawStream(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := transport.WriteFrame(str, &transport.TransferRequest{Op: transport.OpPut, Path: "/slow", Length: 2 * bs, Size: 2 * bs, BlockSize: bs, Mtime: 1}); err != nil {
		t.Fatal(err)
	}
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		_, _ = blocks.Send(str, bytes.NewReader(randomBytes(t, 2*bs)), 0, 2*bs, bs, blocks.SendOptions{})
	}()
	select {
	case <-paced:
	case <-time.After(10 * time.Second):
		t.Fatal("the server paced no block")
	}
	str.CancelWrite(transport.StreamCanceled)
	str.CancelRead(transport.StreamCanceled)
	<-sent
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := ts.Srv.WaitIdle(ctx); err != nil {
		t.Fatalf("the canceled put still runs: %v", err)
	}
}

func TestBadTransferHeader(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "ned")
	sessiontest.WriteFile(t, filepath.Join(home, "f"), []byte("0123456789"))
	tests := []struct {
		name string
		req  transport.TransferRequest
		code string
	}{
		{"unknown op", transport.TransferRequest{Op: "steal", Path: "/f"}, transport.CodeUnsupported},
		{"negative offset", transport.TransferRequest{Op: transport.OpGet, Path: "/f", Offset: -1, Length: 1}, transport.CodeInvalid},
		{"range past end", transport.TransferRequest{Op: transport.OpGet, Path: "/f", Offset: 5, Length: 6}, transport.CodeInvalid},
		{"offset past end", transport.TransferRequest{Op: transport.OpGet, Path: "/f", Offset: 11, Length: -1}, transport.CodeInvalid},
		{"put negative size", transport.TransferRequest{Op: transport.OpPut, Path: "/g", Size: -5, Length: -5}, transport.CodeInvalid},
		{"put unaligned range", transport.TransferRequest{Op: transport.OpPut, Path: "/g", Size: 10000, Offset: 100, Length: 100}, transport.CodeInvalid},
		{"put range past end", transport.TransferRequest{Op: transport.OpPut, Path: "/g", Size: 10, Length: 11}, transport.CodeInvalid},
		{"tiny block size", transport.TransferRequest{Op: transport.OpGet, Path: "/f", Length: -1, BlockSize: 16}, transport.CodeInvalid},
		{"huge block size", transport.TransferRequest{Op: transport.OpGet, Path: "/f", Length: -1, BlockSize: 1 << 30}, transport.CodeInvalid},
		{"unaligned get", transport.TransferRequest{Op: transport.OpGet, Path: "/f", Offset: 3, Length: 4}, transport.CodeInvalid},
		{"hash unknown algo", transport.TransferRequest{Op: transport.OpHash, Path: "/f", Algo: "md5"}, transport.CodeUnsupported},
		{"put escape", transport.TransferRequest{Op: transport.OpPut, Path: "/../g", Size: 1, Length: 1}, transport.CodePermission},
		{"put root", transport.TransferRequest{Op: transport.OpPut, Path: "/", Size: 1, Length: 1}, transport.CodeIsDir},
		{"put long upload ID", transport.TransferRequest{Op: transport.OpPut, Path: "/g", Size: 1, Length: 1, Upload: make([]byte, 33)}, transport.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			str, err := session.OpenRawStream(t.Context(), c)
			if err != nil {
				t.Fatal(err)
			}
			if err := transport.WriteFrame(str, &tt.req); err != nil {
				t.Fatal(err)
			}
			var reply transport.TransferReply
			if err := transport.ReadFrame(str, &reply); err != nil {
				t.Fatal(err)
			}
			if reply.Err == nil || reply.Err.Code != tt.code {
				t.Fatalf("reply %+v, want code %s", reply, tt.code)
			}
		})
	}
	// A ranged get returns exactly that range, as blocks with digests.
	data := randomBytes(t, 10000)
	sessiontest.WriteFile(t, filepath.Join(home, "r"), data)
	str, err := session.OpenRawStream(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := transport.WriteFrame(str, &transport.TransferRequest{Op: transport.OpGet, Path: "/r", Offset: 4096, Length: 4096, BlockSize: 4096}); err != nil {
		t.Fatal(err)
	}
	var reply transport.TransferReply
	if err := transport.ReadFrame(str, &reply); err != nil || reply.Err != nil || reply.Offset != 4096 || reply.Length != 4096 || reply.Size != 10000 || reply.BlockSize != 4096 {
		t.Fatalf("ranged get reply %+v, %v", reply, err)
	}
	buf := make([]byte, 4096+32)
	if _, err := io.ReadFull(str, buf); err != nil || !bytes.Equal(buf[:4096], data[4096:8192]) {
		t.Fatalf("range data differs, %v", err)
	}
	if d := blocks.Sum(buf[:4096]); !bytes.Equal(d[:], buf[4096:]) {
		t.Fatal("block digest wrong")
	}
	var tr transport.Trailer
	if err := transport.ReadFrame(str, &tr); err != nil || tr.Bytes != 4096 || tr.Digest != nil {
		t.Fatalf("trailer %+v, %v", tr, err)
	}
}

// A range of a striped upload that arrives after its commit (the client's
// canceled endgame copy, late on a slow connection) is refused, and leaves
// no new partial upload behind, even with force.
func TestPutRangeAfterCommit(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, _ := ts.User(t, "pia")
	const half = 2 << 20 // a file of 4 MiB keeps its journal between streams
	data := randomBytes(t, 2*half)
	id := []byte("0123456789abcdef")
	put := func(off, n int64, commit bool) transport.TransferReply {
		t.Helper()
		str, err := session.OpenRawStream(t.Context(), c)
		if err != nil {
			t.Fatal(err)
		}
		req := transport.TransferRequest{Op: transport.OpPut, Path: "/f", Size: int64(len(data)), Offset: off, Length: n, BlockSize: 1 << 16, Force: true, Commit: commit, Upload: id}
		if err := transport.WriteFrame(str, &req); err != nil {
			t.Fatal(err)
		}
		// A refused stream may be reset before all of this is written.
		if _, err := blocks.Send(str, bytes.NewReader(data[off:off+n]), off, n, 1<<16, blocks.SendOptions{}); err == nil {
			_ = transport.WriteFrame(str, &transport.Trailer{Bytes: n})
		}
		var reply transport.TransferReply
		if err := transport.ReadFrame(str, &reply); err != nil {
			t.Fatal(err)
		}
		_ = str.Close()
		return reply
	}
	if r := put(0, half, false); r.Err != nil {
		t.Fatalf("first range: %v", r.Err)
	}
	if r := put(half, half, true); r.Err != nil {
		t.Fatalf("last range and commit: %v", r.Err)
	}
	r := put(0, half, false)
	if r.Err == nil || r.Err.Code != transport.CodeInvalid || !strings.Contains(r.Err.Msg, "committed already") {
		t.Fatalf("a range after the commit: %+v", r.Err)
	}
	if u, err := c.Df(t.Context()); err != nil || u.Used != int64(len(data)) {
		t.Fatalf("df = %+v, %v (a new partial?)", u, err)
	}
}

// A put of a file too small to have a journal leaves nothing behind when
// its client gives up midway: there would be nothing to resume from, and
// the partial would hold quota until the sweep.
func TestSmallPutInterrupted(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "quin")
	str, err := session.OpenRawStream(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	const size = 1 << 20
	if err := transport.WriteFrame(str, &transport.TransferRequest{Op: transport.OpPut, Path: "/s", Size: size, Length: size, BlockSize: 1 << 16, Fresh: true, Commit: true}); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(t, size/2)
	if _, err := blocks.Send(str, bytes.NewReader(data), 0, size/2, 1<<16, blocks.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	str.CancelWrite(transport.StreamCanceled)
	// The server resets its side once it is done with the upload.
	var reply transport.TransferReply
	if err := transport.ReadFrame(str, &reply); err == nil {
		t.Fatalf("reply to an interrupted put: %+v", reply)
	}
	if u, err := c.Df(t.Context()); err != nil || u.Used != 0 {
		t.Fatalf("df = %+v, %v", u, err)
	}
	if ents, err := os.ReadDir(home); err != nil || len(ents) != 0 {
		t.Fatalf("home after the interrupted put: %v, %v", ents, err)
	}
}

// A put whose client lies about the length (fewer bytes, then FIN) is
// refused and publishes nothing.
func TestPutShortStream(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, _ := ts.User(t, "olga")
	str, err := session.OpenRawStream(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := transport.WriteFrame(str, &transport.TransferRequest{Op: transport.OpPut, Path: "/short", Size: 100, Length: 100}); err != nil {
		t.Fatal(err)
	}
	if _, err := str.Write([]byte("only ten b")); err != nil {
		t.Fatal(err)
	}
	_ = str.Close()
	var reply transport.TransferReply
	if err := transport.ReadFrame(str, &reply); err != nil || reply.Err == nil || reply.Err.Code != transport.CodeProtocol {
		t.Fatalf("reply %+v, %v", reply, err)
	}
	if _, _, err := c.Stat(context.Background(), "/short"); err == nil {
		t.Fatal("short upload visible")
	}
}

func TestShutdownLetsTransfersFinish(t *testing.T) {
	t.Parallel()
	ts := sessiontest.Start(t)
	c, home := ts.User(t, "pat")
	src := filepath.Join(t.TempDir(), "f")
	data := randomBytes(t, 8<<20)
	sessiontest.WriteFile(t, src, data)
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		var once bool
		// Slowed down, so that it still runs when the second login comes.
		lim := rate.NewLimiter(rate.Limit(2<<20), 256<<10)
		_, err := c.Put(t.Context(), src, "/f", session.TransferOptions{Limiter: lim, Progress: func(n, total int64) {
			if n > 0 && !once {
				once = true
				close(started)
			}
		}})
		done <- err
	}()
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- ts.Stop(30 * time.Second) }()
	// While the put finishes, a new client is told why it cannot log in.
	for end := time.Now().Add(10 * time.Second); !session.Draining(ts.Srv) && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
	if _, err := ts.Dial(t, "pat", "pw-pat"); err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("login while the server drains: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("put during shutdown: %v", err)
	}
	if got := sessiontest.ReadFile(t, filepath.Join(home, "f")); len(got) != len(data) {
		t.Fatalf("file has %d bytes", len(got))
	}
	// After shutdown, the session is gone.
	if _, err := c.Pwd(t.Context()); err == nil {
		t.Fatal("session still alive after shutdown")
	}
}
