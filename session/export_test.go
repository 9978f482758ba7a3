package session

import (
	"context"
	"time"

	"github.com/quic-go/quic-go"
)

// OpenRawStream opens a bare transfer stream on c's connection, for
// protocol tests that send what a correct client never would.
func OpenRawStream(ctx context.Context, c *Client) (*quic.Stream, error) {
	return c.link().qc.OpenStreamSync(ctx)
}

// BreakConnection closes c's connection as a network failure would, for
// tests of reconnection and resume.
func BreakConnection(c *Client) {
	_ = c.link().qc.CloseWithError(0x99, "test: connection broken")
}

// SetBatchInFlight sets the byte budget of auto jobs (BatchOptions.Jobs 0).
func SetBatchInFlight(o *BatchOptions, n int64) { o.inFlight = n }

// ControlRequests returns how many control-stream requests c has sent.
func ControlRequests(c *Client) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nextID
}

// SetStallAfter sets how long a striped transfer's connection may receive
// nothing before it is closed as dead.
func SetStallAfter(c *Client, d time.Duration) { c.stallAfter = d }

// TrustDigestsAfter makes s keep the digests of files whose ctime is at
// least d old (instead of digestTrustAge), so that tests need not wait.
func TrustDigestsAfter(s *Server, d time.Duration) { s.digestTrust = d }

// DigestCacheHits returns how many blocks s sent with a remembered digest.
func DigestCacheHits(s *Server) int64 { return s.digests.hits.Load() }

// SpoilDigestCache makes every digest s remembers wrong, as a change that
// kept the file's stamp would.
func SpoilDigestCache(s *Server) {
	s.digests.mu.Lock()
	defer s.digests.mu.Unlock()
	for _, el := range s.digests.entries {
		e := el.Value.(*digestEntry)
		for i := range e.ds {
			e.ds[i][0] ^= 1
		}
	}
}

// CheckSessions runs the server's periodic check for sessions whose user
// was deleted or whose password was changed, now.
func CheckSessions(s *Server) { s.checkSessions(context.Background()) }

// SetPaceHook makes s call f before a rate-capped put paces a received
// block.
func SetPaceHook(s *Server, f func(vpath string, off int64)) { s.testHookPace = f }

// SetHoldHook makes s call f when it holds a striped upload's quota
// between its pieces.
func SetHoldHook(s *Server, f func(user string, n int64)) { s.testHookHold = f }

// SetReleaseHook makes s call f before each release of quota; an error f
// returns stands for the ledger's.
func SetReleaseHook(s *Server, f func(name string, n int64) error) { s.testHookRelease = f }

// SettleQuotas runs the server's periodic retry of releases the ledger
// refused, now.
func SettleQuotas(s *Server) { s.settleAllQuotas(context.Background()) }

// Draining reports whether s has begun to shut down.
func Draining(s *Server) bool { return s.isDraining() }

// SetClock makes s read the time from now (the login guard); set it
// before s serves.
func SetClock(s *Server, now func() time.Time) { s.now = now }

// ServerRate returns the server's rate cap on c's user as c knows it.
func ServerRate(c *Client) int64 { return c.serverRate.Load() }
