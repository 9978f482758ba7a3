package session

import (
	"sync"
	"time"
)

// loginGuard slows down password guessing: after MaxLoginFailures failed
// logins from one address, that address may not try again for a while,
// doubling with each further failure (up to 15 minutes). A success clears
// the count. It keys on the address, not the user name, so that nobody
// can lock a user out from elsewhere.
type loginGuard struct {
	mu    sync.Mutex
	addrs map[string]*guardState
}

type guardState struct {
	failures int
	until    time.Time // no attempts before then
	last     time.Time
}

// maxGuarded bounds the addresses remembered; the oldest quiet ones go.
const maxGuarded = 10000

func (s *Server) maxLoginFailures() int {
	if s.MaxLoginFailures <= 0 {
		return 10
	}
	return s.MaxLoginFailures
}

func (s *Server) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// loginBlocked reports how long addr must still wait before a login.
func (s *Server) loginBlocked(addr string) time.Duration {
	g := &s.guard
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.addrs[addr]
	if st == nil {
		return 0
	}
	return max(st.until.Sub(s.clock()), 0)
}

// loginResult records a login attempt's outcome for addr.
func (s *Server) loginResult(addr string, ok bool) {
	g := &s.guard
	g.mu.Lock()
	defer g.mu.Unlock()
	now := s.clock()
	if ok {
		delete(g.addrs, addr)
		return
	}
	if g.addrs == nil {
		g.addrs = make(map[string]*guardState)
	}
	st := g.addrs[addr]
	if st == nil {
		if len(g.addrs) >= maxGuarded {
			g.evict(now)
		}
		st = &guardState{}
		g.addrs[addr] = st
	}
	// Failures long ago are forgiven.
	if now.Sub(st.last) > time.Hour {
		st.failures = 0
	}
	st.failures++
	st.last = now
	if over := st.failures - s.maxLoginFailures(); over >= 0 {
		st.until = now.Add(min(time.Second<<min(over, 10), 15*time.Minute))
	}
}

// evict drops addresses that have been quiet for an hour, or, if none,
// the quietest one.
func (g *loginGuard) evict(now time.Time) {
	var oldest string
	for a, st := range g.addrs {
		if now.Sub(st.last) > time.Hour && now.After(st.until) {
			delete(g.addrs, a)
		} else if oldest == "" || st.last.Before(g.addrs[oldest].last) {
			oldest = a
		}
	}
	if len(g.addrs) >= maxGuarded && oldest != "" {
		delete(g.addrs, oldest)
	}
}
