package session

import (
	"context"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/qftp/qftp/transport"
)

// pieceLinger is how long after a piece of a transfer ended a server that
// drains still takes the transfer's next piece: the client asks for it a
// round trip after the last one ended, or after a commit's wait, but a
// busy client (or one whose commit waited for an endgame copy to stop)
// can take seconds, and one piece refused fails the whole transfer.
const pieceLinger = 5 * time.Second

// pieceKey names a transfer that comes in pieces, one stream each: a
// striped upload by its ID, a get of ranges by its path, in one session.
type pieceKey struct {
	g      *group
	op, id string
}

type pieceState struct {
	running int
	first   time.Time // when the first piece started
	last    time.Time // when the last piece ended
}

// pieceKeyOf returns the key of a request that is a piece of a larger
// transfer: a put carrying an upload ID (§8.2) or a get of a range.
func pieceKeyOf(g *group, req *transport.TransferRequest) (pieceKey, bool) {
	switch {
	case g == nil:
	case req.Op == transport.OpPut && len(req.Upload) > 0:
		return pieceKey{g, req.Op, string(req.Upload)}, true
	case req.Op == transport.OpGet && !(req.Offset == 0 && req.Length == -1):
		return pieceKey{g, req.Op, req.Path}, true
	}
	return pieceKey{}, false
}

// pieceStarted records a piece of k as running; the function it returns
// records its end.
func (s *Server) pieceStarted(k pieceKey) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pieces == nil {
		s.pieces = make(map[pieceKey]*pieceState)
	}
	if len(s.pieces) >= 4096 {
		now := time.Now()
		for k, st := range s.pieces {
			if st.running == 0 && now.Sub(st.last) > pieceLinger {
				delete(s.pieces, k)
			}
		}
	}
	st := s.pieces[k]
	if st == nil {
		st = &pieceState{first: time.Now()}
		s.pieces[k] = st
	}
	st.running++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		st.running--
		st.last = time.Now()
	}
}

// pieceSince returns when the first piece of k started, or def if the
// server does not know.
func (s *Server) pieceSince(k pieceKey, def time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.pieces[k]; st != nil && st.first.Before(def) {
		return st.first
	}
	return def
}

// continueTransfer registers, while the server drains, a transfer stream
// that carries the next piece of a transfer still in progress (one of its
// pieces runs or ended within pieceLinger), so that the grace period lets
// striped and resumed transfers finish as it does single streams.
func (s *Server) continueTransfer(k pieceKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.pieces[k]
	if st == nil || st.running == 0 && time.Since(st.last) > pieceLinger {
		return false
	}
	s.active++
	return true
}

// pieceLingerLeft returns how long, at most, a transfer with no piece
// running may still send its next one.
func (s *Server) pieceLingerLeft() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var left time.Duration
	now := time.Now()
	for _, st := range s.pieces {
		if st.running == 0 {
			left = max(left, st.last.Add(pieceLinger).Sub(now))
		}
	}
	return left
}

// serveDraining answers a transfer stream that arrived while the server
// drains: the next piece of a transfer in progress is served, anything
// else refused.
func (c *conn) serveDraining(ctx context.Context, str *quic.Stream) {
	req, ok := c.readTransferRequest(str)
	if !ok {
		return
	}
	if k, ok := pieceKeyOf(c.grp, req); ok && c.srv.continueTransfer(k) {
		defer c.srv.endTransfer()
		c.serveRequest(ctx, str, req)
		return
	}
	// The reply is one small frame; it fits the stream's window.
	str.CancelRead(transport.StreamShutdown)
	_ = transport.WriteFrame(str, &transport.TransferReply{Err: wireError(errShuttingDown)})
	_ = str.Close()
}

// waitDrained waits until no transfer runs and none may send its next
// piece (see continueTransfer), or ctx ends.
func (s *Server) waitDrained(ctx context.Context) error {
	for {
		s.mu.Lock()
		var idle chan struct{}
		if s.active > 0 {
			if s.idle == nil {
				s.idle = make(chan struct{})
			}
			idle = s.idle
		}
		s.mu.Unlock()
		if idle != nil {
			select {
			case <-idle:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		left := s.pieceLingerLeft()
		if left <= 0 {
			return nil
		}
		t := time.NewTimer(left)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			// Only waiting for a next piece that may never come: no
			// transfer was cut off.
			s.mu.Lock()
			idle := s.active == 0
			s.mu.Unlock()
			if idle {
				return nil
			}
			return ctx.Err()
		}
	}
}
