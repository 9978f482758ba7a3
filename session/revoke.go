package session

import (
	"context"
	"errors"
	"time"

	"github.com/qftp/qftp/session/userdb"
	"github.com/qftp/qftp/transport"
)

// userCheckEvery is how often the server looks for sessions whose user
// was deleted or whose password was changed since they logged in.
const userCheckEvery = 5 * time.Second

// revoked says why a session that logged in as was may not go on, now
// that the store holds now for that user (or err from reading it), or ""
// if it may. An error other than the user's absence decides nothing.
func revoked(was, now userdb.User, err error) string {
	switch {
	case errors.Is(err, userdb.ErrNotFound):
		return "user no longer exists"
	case err != nil:
		return ""
	case now.Credential != was.Credential:
		return "password changed since login; log in again"
	}
	return ""
}

// checkSessions closes every connection whose session may not go on,
// reading each logged-in user once. The server runs it every
// userCheckEvery: transfers check their user as they start, but a session
// that only lists, moves or removes files would go on otherwise.
func (s *Server) checkSessions(ctx context.Context) {
	s.mu.Lock()
	byUser := make(map[string][]*conn)
	for c := range s.sessions {
		if c.isAuthed() { // c.user is set for good once authed
			byUser[c.user.Name] = append(byUser[c.user.Name], c)
		}
	}
	s.mu.Unlock()
	for name, conns := range byUser {
		u, err := s.Users.Get(ctx, name)
		for _, c := range conns {
			if why := revoked(c.user, u, err); why != "" {
				c.ulog.Warn("closing the session", "reason", why)
				_ = c.qc.CloseWithError(transport.ConnAuthFailed, why)
			}
		}
	}
}
