package session

import (
	"fmt"
	"sync"
	"time"
)

// Connections that have not logged in or joined a session yet are outside
// every per-user budget: each may hold up to its initial 1 MiB window of
// unread data until the login timeout closes it. These bounds keep their
// number, and so that memory, in check; one from one address cannot use
// them all up.
const (
	defaultMaxPending     = 1024
	defaultMaxAddrPending = 128 // a session widening to 128 connections at once fits
)

func (s *Server) maxPending() (all, perAddr int) {
	all, perAddr = s.MaxPending, s.MaxAddrPending
	if all <= 0 {
		all = defaultMaxPending
	}
	if perAddr <= 0 {
		perAddr = defaultMaxAddrPending
	}
	return all, perAddr
}

// claimPendingLocked counts one more connection from addr awaiting login,
// unless that would pass a bound, and returns the function that gives it
// back (it may be called more than once). s.mu must be held.
func (s *Server) claimPendingLocked(addr string) (func(), error) {
	all, perAddr := s.maxPending()
	switch {
	case s.pendingAll >= all:
		return nil, fmt.Errorf("too many connections awaiting login (at most %d); try again shortly", all)
	case s.pending[addr] >= perAddr:
		return nil, fmt.Errorf("too many connections from %s awaiting login (at most %d); try again shortly", addr, perAddr)
	}
	if s.pending == nil {
		s.pending = make(map[string]int)
	}
	s.pending[addr]++
	s.pendingAll++
	return sync.OnceFunc(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.pendingAll--
		if s.pending[addr]--; s.pending[addr] <= 0 {
			delete(s.pending, addr)
		}
	}), nil
}

// refusedPendingLocked counts a connection refused for a pending cap and
// says whether to log it now, with how many were refused since the last
// time: a flood logs a line every 10 s, not one per connection. s.mu must
// be held.
func (s *Server) refusedPendingLocked() (int, bool) {
	s.refused++
	if now := time.Now(); now.Sub(s.refusedLog) >= 10*time.Second {
		n := s.refused
		s.refused, s.refusedLog = 0, now
		return n, true
	}
	return 0, false
}
