package session

import (
	"testing"
	"time"
)

func TestLoginGuard(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &Server{MaxLoginFailures: 3, now: func() time.Time { return now }}
	for range 2 {
		s.loginResult("1.2.3.4", false)
	}
	if w := s.loginBlocked("1.2.3.4"); w != 0 {
		t.Fatalf("blocked after 2 failures: %v", w)
	}
	s.loginResult("1.2.3.4", false) // the third
	if w := s.loginBlocked("1.2.3.4"); w != time.Second {
		t.Fatalf("after 3 failures wait %v, want 1s", w)
	}
	if w := s.loginBlocked("5.6.7.8"); w != 0 {
		t.Fatal("another address is blocked")
	}
	now = now.Add(time.Second)
	s.loginResult("1.2.3.4", false) // the fourth: 2 s
	if w := s.loginBlocked("1.2.3.4"); w != 2*time.Second {
		t.Fatalf("after 4 failures wait %v, want 2s", w)
	}
	for range 20 {
		s.loginResult("1.2.3.4", false)
	}
	if w := s.loginBlocked("1.2.3.4"); w != 15*time.Minute {
		t.Fatalf("wait capped at %v, want 15m", w)
	}
	s.loginResult("1.2.3.4", true)
	if w := s.loginBlocked("1.2.3.4"); w != 0 {
		t.Fatalf("a success did not clear: %v", w)
	}
	// Old failures are forgiven.
	s.loginResult("9.9.9.9", false)
	s.loginResult("9.9.9.9", false)
	now = now.Add(2 * time.Hour)
	s.loginResult("9.9.9.9", false)
	if w := s.loginBlocked("9.9.9.9"); w != 0 {
		t.Fatalf("failures from hours ago still count: %v", w)
	}
}
