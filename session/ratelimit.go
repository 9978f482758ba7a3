package session

import (
	"context"

	"golang.org/x/time/rate"
)

// userLimiter returns the token bucket shared by every transfer of user,
// set to the user's rate in the store (read now, so that a change made
// with qftpd user rate applies to the next transfer), or nil when the
// user has no cap.
func (s *Server) userLimiter(ctx context.Context, user string) *rate.Limiter {
	u, err := s.Users.Get(ctx, user)
	if err != nil || u.Rate <= 0 {
		return nil
	}
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
