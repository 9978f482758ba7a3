package relay

import (
	"net"
	"testing"
	"time"
)

// echo serves UDP echo on loopback until the test ends.
func echo(t *testing.T) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, a, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteToUDP(buf[:n], a)
		}
	}()
	return c.LocalAddr().String()
}

func TestRelayDelayAndLoss(t *testing.T) {
	t.Parallel()
	r, err := New(echo(t), Link{Delay: 20 * time.Millisecond, Loss: 0.2}, Link{Delay: 20 * time.Millisecond}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := net.Dial("udp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 200
	start := time.Now()
	for i := range n {
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 16)
	var first time.Duration
	for {
		if _, err := c.Read(buf); err != nil {
			break
		}
		if got == 0 {
			first = time.Since(start)
		}
		got++
	}
	if got < n*6/10 || got > n*95/100 {
		t.Fatalf("%d of %d echoed with 20%% loss", got, n)
	}
	if first < 40*time.Millisecond {
		t.Fatalf("first echo after %v, want the 40 ms round trip", first)
	}
	if s := r.Stats(); s.Dropped == 0 || s.Forwarded == 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestRelayBlackout(t *testing.T) {
	t.Parallel()
	r, err := New(echo(t), Link{}, Link{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := net.Dial("udp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r.Blackout(time.Hour)
	_, _ = c.Write([]byte("x"))
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Read(make([]byte, 4)); err == nil {
		t.Fatal("datagram crossed a blackout")
	}
	r.Blackout(0)
	_, _ = c.Write([]byte("y"))
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 4)); err != nil {
		t.Fatalf("after the blackout: %v", err)
	}
}
