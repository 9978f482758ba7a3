package session

import (
	"cmp"
	"sync"

	"github.com/quic-go/quic-go"
)

// windows bounds the flow-control windows (the memory quic-go may buffer
// for data not yet read) of all of a user's connections together: striping
// over many connections must not multiply the memory a user can pin.
type windows struct {
	mu     sync.Mutex // never held while calling into quic-go
	owner  map[*quic.Conn]string
	conn   map[*quic.Conn]uint64 // growth granted per connection
	byUser map[string]uint64
	total  uint64 // growth granted to all users
}

func (s *Server) maxUserWindow() uint64 {
	if s.MaxUserWindow == 0 {
		return 512 << 20
	}
	return s.MaxUserWindow
}

// AllowWindowIncrease decides whether a connection's receive window may
// grow by delta (quic-go's AllowConnectionWindowIncrease). Before login it
// may not: a connection that has not logged in sends only small control
// messages. Pass it to transport.Listen.
func (s *Server) AllowWindowIncrease(qc *quic.Conn, delta uint64) bool {
	w := &s.win
	w.mu.Lock()
	defer w.mu.Unlock()
	user, ok := w.owner[qc]
	if !ok || w.byUser[user]+delta > s.maxUserWindow() || w.total+delta > max(cmp.Or(s.MaxTotalWindow, defaultMaxTotal), s.maxUserWindow()) {
		return false
	}
	w.conn[qc] += delta
	w.byUser[user] += delta
	w.total += delta
	return true
}

// trackWindow starts counting qc's window growth against user.
func (s *Server) trackWindow(qc *quic.Conn, user string) {
	w := &s.win
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.owner == nil {
		w.owner, w.conn, w.byUser = map[*quic.Conn]string{}, map[*quic.Conn]uint64{}, map[string]uint64{}
	}
	w.owner[qc] = user
}

// untrackWindow gives a closed connection's window back to its user.
func (s *Server) untrackWindow(qc *quic.Conn) {
	w := &s.win
	w.mu.Lock()
	defer w.mu.Unlock()
	user, ok := w.owner[qc]
	if !ok {
		return
	}
	w.byUser[user] -= w.conn[qc]
	w.total -= w.conn[qc]
	if w.byUser[user] == 0 {
		delete(w.byUser, user)
	}
	delete(w.owner, qc)
	delete(w.conn, qc)
}
