package session

import (
	"net"
	"testing"
)

func TestAddrKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ ip, want string }{
		{"127.0.0.1", "127.0.0.1"},
		{"::ffff:10.0.0.1", "10.0.0.1"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"::1", "::/64"},
	} {
		if got := addrKey(&net.UDPAddr{IP: net.ParseIP(tc.ip), Port: 9}); got != tc.want {
			t.Errorf("addrKey(%s) = %s, want %s", tc.ip, got, tc.want)
		}
	}
}
