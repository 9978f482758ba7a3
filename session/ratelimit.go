package session

import (
	"golang.org/x/time/rate"

	"github.com/qftp/qftp/session/userdb"
)

// userLimiter returns the token bucket shared by every transfer of user
// u, set to u's rate (read from the store as each transfer starts, so that
// a change made with qftpd user rate applies to the next transfer), or nil
// when the user has no cap.
func (s *Server) userLimiter(u userdb.User) *rate.Limiter {
	if u.Rate <= 0 {
		return nil
	}
	user := u.Name
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limiters == nil {
		s.limiters = make(map[string]*rate.Limiter)
	}
	l := s.limiters[user]
	// Bursts of a tenth of a second, and never less than a block.
	burst := int(max(u.Rate/10, 1<<20+32))
	switch {
	case l == nil:
		l = rate.NewLimiter(rate.Limit(u.Rate), burst)
		s.limiters[user] = l
	case l.Limit() != rate.Limit(u.Rate):
		l.SetLimit(rate.Limit(u.Rate))
		l.SetBurst(burst)
	}
	return l
}
