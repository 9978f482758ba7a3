package session

import (
	"testing"

	"github.com/quic-go/quic-go"
)

func TestUserWindowBudget(t *testing.T) {
	t.Parallel()
	s := &Server{MaxUserWindow: 100}
	a, b, anon, other := new(quic.Conn), new(quic.Conn), new(quic.Conn), new(quic.Conn)
	if s.AllowWindowIncrease(anon, 1) {
		t.Fatal("window grew before login")
	}
	s.trackWindow(a, "alice")
	s.trackWindow(b, "alice")
	s.trackWindow(other, "bob")
	steps := []struct {
		c     *quic.Conn
		delta uint64
		want  bool
	}{
		{a, 60, true},
		{b, 40, true},
		{b, 1, false},     // alice's connections together are at the cap
		{other, 90, true}, // bob has his own budget
	}
	for i, st := range steps {
		if got := s.AllowWindowIncrease(st.c, st.delta); got != st.want {
			t.Fatalf("step %d: allowed %v, want %v", i, got, st.want)
		}
	}
	s.untrackWindow(a) // a closes: its 60 come back
	if !s.AllowWindowIncrease(b, 60) {
		t.Fatal("window not returned when a connection closed")
	}
}

// All users' windows together stay within MaxTotalWindow.
func TestTotalWindowBudget(t *testing.T) {
	t.Parallel()
	s := &Server{MaxUserWindow: 100, MaxTotalWindow: 150}
	a, b := new(quic.Conn), new(quic.Conn)
	s.trackWindow(a, "alice")
	s.trackWindow(b, "bob")
	if !s.AllowWindowIncrease(a, 100) || !s.AllowWindowIncrease(b, 50) {
		t.Fatal("refused within the budgets")
	}
	if s.AllowWindowIncrease(b, 1) {
		t.Fatal("bob grew past the total")
	}
	s.untrackWindow(a)
	if !s.AllowWindowIncrease(b, 50) {
		t.Fatal("alice's window not returned to the total")
	}
}
