package session

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/qftp/qftp/session/userdb"
	"github.com/qftp/qftp/transport"
)

// group is one logged-in session: the connection that logged in and the
// connections that joined it with its token (to stripe transfers over
// several QUIC connections). The token is 256 random bits, known only to
// the client that logged in (it travels inside TLS), valid only while the
// login's connection lives, and only for the same user.
type group struct {
	token   []byte
	user    userdb.User
	primary *conn

	mu      sync.Mutex
	members map[*conn]bool
}

func (g *group) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.members)
}

func (s *Server) maxGroupConns() int {
	if s.MaxGroupConns <= 0 {
		return 64
	}
	return s.MaxGroupConns
}

func (s *Server) maxUserConns() int {
	if s.MaxUserConns <= 0 {
		return 512
	}
	return s.MaxUserConns
}

// claimUserConn counts one more connection of user's sessions, unless
// that would pass MaxUserConns. leaveGroup gives it back.
func (s *Server) claimUserConn(user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.userConns[user]; n >= s.maxUserConns() {
		return fmt.Errorf("too many connections for user %s (at most %d in all sessions); end another session", user, s.maxUserConns())
	}
	if s.userConns == nil {
		s.userConns = make(map[string]int)
	}
	s.userConns[user]++
	return nil
}

// newGroup starts the session of a connection that just logged in, if
// the user may have one more connection.
func (s *Server) newGroup(c *conn) (*group, error) {
	if err := s.claimUserConn(c.user.Name); err != nil {
		return nil, err
	}
	tok := make([]byte, 32)
	_, _ = rand.Read(tok)
	g := &group{token: tok, user: c.user, primary: c, members: map[*conn]bool{c: true}}
	s.mu.Lock()
	if s.groups == nil {
		s.groups = make(map[string]*group)
	}
	s.groups[string(tok)] = g
	s.mu.Unlock()
	return g, nil
}

var errBadToken = errors.New("no such session (it ended, or the token is wrong)")

// joinGroup adds c to the session with token, for user.
func (s *Server) joinGroup(token []byte, user string, c *conn) (*group, error) {
	if len(token) != 32 {
		return nil, errBadToken
	}
	s.mu.Lock()
	g := s.groups[string(token)]
	s.mu.Unlock()
	if g == nil || subtle.ConstantTimeCompare(g.token, token) != 1 || g.user.Name != user {
		return nil, errBadToken
	}
	// A user deleted, or whose password changed, since the login adds
	// no more connections.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	u, err := s.Users.Get(ctx, user)
	cancel()
	if err != nil || revoked(g.user, u, nil) != "" {
		return nil, errBadToken
	}
	limit := s.maxGroupConns()
	if u.MaxConns > 0 {
		limit = min(limit, u.MaxConns)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.members) == 0 {
		return nil, errBadToken
	}
	if len(g.members) >= limit {
		return nil, fmt.Errorf("too many connections for this session (at most %d)", limit)
	}
	if err := s.claimUserConn(user); err != nil {
		return nil, err
	}
	g.members[c] = true
	return g, nil
}

// leaveGroup removes c from its session. When the login's connection
// leaves, the session ends: its token stops working and the connections
// that joined it are closed.
func (s *Server) leaveGroup(g *group, c *conn) {
	s.mu.Lock()
	if s.userConns[g.user.Name]--; s.userConns[g.user.Name] <= 0 {
		delete(s.userConns, g.user.Name)
	}
	s.mu.Unlock()
	g.mu.Lock()
	delete(g.members, c)
	var rest []*conn
	if c == g.primary {
		for m := range g.members {
			rest = append(rest, m)
		}
		g.members = map[*conn]bool{}
	}
	g.mu.Unlock()
	if c != g.primary {
		return
	}
	s.mu.Lock()
	delete(s.groups, string(g.token))
	for k := range s.pieces { // they hold g, and the session is over
		if k.g == g {
			delete(s.pieces, k)
		}
	}
	s.mu.Unlock()
	for _, m := range rest {
		_ = m.qc.CloseWithError(transport.ConnNoError, "session ended")
	}
}
