package session_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/qftp/qftp/session"
	"github.com/qftp/qftp/session/sessiontest"
	"github.com/qftp/qftp/transport/relay"
)

// BenchmarkLossyGet downloads a 32 MiB file through the in-process relay
// (10 ms each way, 1 % loss each way, seeded) with one connection, eight,
// and auto width, so that the effect of striping shows without root or the
// network lab. Run: make bench.
func BenchmarkLossyGet(b *testing.B) {
	const size = 32 << 20
	ts := sessiontest.Start(b)
	home := ts.AddUser("lossy", "pw")
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 13)
	}
	sessiontest.WriteFile(b, filepath.Join(home, "f"), data)
	link := relay.Link{Delay: 10 * time.Millisecond, Loss: 0.01}
	r, err := relay.New(ts.Addr, link, link, 1)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Close() })
	for _, conns := range []int{1, 8, session.ConnectionsAuto} {
		name := fmt.Sprintf("connections=%d", conns)
		if conns == session.ConnectionsAuto {
			name = "connections=auto"
		}
		b.Run(name, func(b *testing.B) {
			c := ts.DialVia(b, r.Addr(), "lossy", "pw", session.RetryPolicy{})
			dst := filepath.Join(b.TempDir(), "dst")
			b.SetBytes(size)
			var links int
			for range b.N {
				res, err := c.Get(b.Context(), "f", dst, session.TransferOptions{Force: true, Connections: conns, MaxConnections: 16})
				if err != nil {
					b.Fatal(err)
				}
				links = max(links, res.Links)
			}
			b.ReportMetric(float64(links), "conns")
		})
	}
}
