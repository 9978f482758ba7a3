package session

import (
	"bytes"
	"context"
	"time"
)

// quotaLinger is how long the quota that a striped upload reserved and
// has not used yet stays reserved after its last stream ended: its pieces
// come one after another, and between two of them no stream holds the
// upload. Released at once, the reservation would go to a competing
// upload, and an upload that had started could not finish.
const quotaLinger = partialIdle

// heldQuota is the unused reservation of a striped upload between its
// pieces (see quotaLinger), still counted in the user's ledger. Whoever
// takes it out of Server.held (under Server.mu) owns its bytes: adopts
// them for the upload, or releases them.
type heldQuota struct {
	id    []byte        // the client's ID of the upload: one try
	hdr   journalHeader // its source
	user  string
	n     int64
	timer *time.Timer
}

// holdQuota keeps n bytes that the striped upload of slot (key) reserved
// and did not use for quotaLinger, then releases them.
func (s *Server) holdQuota(key string, slot *uploadSlot, user string, n int64) {
	h := &heldQuota{id: slot.id, hdr: slot.hdr, user: user, n: n}
	s.mu.Lock()
	if s.held == nil {
		s.held = make(map[string]*heldQuota)
	}
	old := s.held[key]
	s.held[key] = h
	h.timer = time.AfterFunc(quotaLinger, func() {
		s.mu.Lock()
		mine := s.held[key] == h
		if mine {
			delete(s.held, key)
		}
		s.mu.Unlock()
		if mine {
			_ = s.releaseQuota(context.Background(), h.user, h.n)
		}
	})
	if old != nil {
		old.timer.Stop()
	}
	s.mu.Unlock()
	if old != nil {
		_ = s.releaseQuota(context.Background(), old.user, old.n)
	}
	if s.testHookHold != nil {
		s.testHookHold(user, n)
	}
}

// adoptHeld returns the reservation held under key if it is that of the
// upload try id of hdr, which a new stream of it takes over. One of
// another try (or of no upload: open is a resume check or an rm) is over,
// as a new use of the path began: it is released, and adoptHeld returns 0.
func (s *Server) adoptHeld(key string, id []byte, hdr journalHeader, open bool) int64 {
	s.mu.Lock()
	h := s.held[key]
	if h != nil {
		delete(s.held, key)
		h.timer.Stop()
	}
	s.mu.Unlock()
	switch {
	case h == nil:
		return 0
	case open && len(id) > 0 && bytes.Equal(h.id, id) && h.hdr == hdr:
		return h.n
	}
	_ = s.releaseQuota(context.Background(), h.user, h.n)
	return 0
}

// releaseHeld releases every held reservation at once: the server is
// idle or shutting down.
func (s *Server) releaseHeld() {
	s.mu.Lock()
	held := s.held
	s.held = nil
	for _, h := range held {
		h.timer.Stop()
	}
	s.mu.Unlock()
	for _, h := range held {
		_ = s.releaseQuota(context.Background(), h.user, h.n)
	}
}
