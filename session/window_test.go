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
