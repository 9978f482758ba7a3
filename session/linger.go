package session

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/qftp/qftp/session/userdb"
	"github.com/qftp/qftp/transport"
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
	gen   string // the user's ledger generation when held ("": unknown)
	timer *time.Timer
}

// holdQuota keeps n bytes that the striped upload try id (of slot, under
// key) reserved and did not use for quotaLinger, then releases them.
func (s *Server) holdQuota(key string, slot *uploadSlot, id []byte, user string, n int64) {
	h := &heldQuota{id: bytes.Clone(id), hdr: slot.hdr, user: user, n: n}
	// A walk of the home (or the user's deletion) after this counts the
	// disk, where these bytes are not: then they must not be released.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	h.gen, _ = s.Users.LedgerGen(ctx, user)
	cancel()
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
			s.heldWG.Add(1) // Shutdown waits for the release
		}
		s.mu.Unlock()
		if mine {
			s.releaseHeldQuota(h)
			s.heldWG.Done()
		}
	})
	if old != nil {
		old.timer.Stop()
	}
	s.mu.Unlock()
	if old != nil {
		s.releaseHeldQuota(old)
	}
	if s.testHookHold != nil {
		s.testHookHold(user, n)
	}
}

// adoptHeld returns the reservation held under key if it is that of the
// upload try id of hdr, which a new stream of it takes over. One of
// another try (or of no upload: open is a resume check or an rm) is over,
// as a new use of the path began: it is released, its try's late ranges
// are refused (why, else errSuperseded), and adoptHeld returns 0.
func (s *Server) adoptHeld(key string, id []byte, hdr journalHeader, open bool, why *transport.Error) int64 {
	s.mu.Lock()
	h := s.held[key]
	adopt := h != nil && open && len(id) > 0 && bytes.Equal(h.id, id) && h.hdr == hdr
	if h != nil {
		delete(s.held, key)
		h.timer.Stop()
		if !adopt {
			s.superseded.add(h.user+"\x00"+string(h.id), cmp.Or(why, errSuperseded))
		}
	}
	s.mu.Unlock()
	switch {
	case h == nil:
		return 0
	case adopt:
		return h.n
	}
	s.releaseHeldQuota(h)
	return 0
}

// releaseHeld releases every held reservation at once, and waits for
// releases under way: the server is idle or shutting down.
func (s *Server) releaseHeld() {
	s.mu.Lock()
	held := s.held
	s.held = nil
	for _, h := range held {
		h.timer.Stop()
	}
	s.mu.Unlock()
	for _, h := range held {
		s.releaseHeldQuota(h)
	}
	s.heldWG.Wait()
}

// releaseHeldQuota gives h's bytes back to the ledger, in the generation
// it was held in: after a walk of the home or the user's deletion they
// are no longer counted there.
func (s *Server) releaseHeldQuota(h *heldQuota) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := owed{gen: h.gen, n: h.n}
	err := s.ledgerRelease(ctx, h.user, e, h.gen != "")
	switch {
	case err == nil, errors.Is(err, userdb.ErrNotFound): // (another generation, or no such user)
	case errors.Is(err, userdb.ErrNotWritten) && h.gen != "":
		s.owed.add(h.user, e) // made before the user's next quota check
	default:
		s.logger().Error("release quota held for a striped upload", "user", h.user, "bytes", h.n, "err", err)
	}
}
