package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/qftp/qftp/session/userdb"
)

// owedRetryEvery is how often the server retries releases of quota that
// the ledger refused.
const owedRetryEvery = 5 * time.Second

// owedReleases holds bytes that left a user's home while the quota ledger
// refused to record it (the disk under the user store full, the store
// busy): the ledger still counts them. Without a retry they would cost
// the user that room until the next restart's Reconcile; with it, only
// until the ledger takes writes again.
type owedReleases struct {
	mu       sync.Mutex
	m        map[string]owed        // by user name
	settling map[string]*sync.Mutex // by user name: held while a retry runs
}

// settleLock returns the lock that a retry of name's releases holds, so
// that a quota check waits for one in progress instead of reading the
// ledger before it.
func (o *owedReleases) settleLock(name string) *sync.Mutex {
	return lockFor(&o.mu, &o.settling, name)
}

// owed is what one user is owed, in one ledger generation: a walk of the
// home since (a new generation) has counted it already.
type owed struct {
	gen string
	n   int64
}

// add records a release that failed. Of two generations, the one recorded
// last is kept: the other's bytes stay counted until the next walk of the
// home, which is safe (they are never released twice).
func (o *owedReleases) add(name string, e owed) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = make(map[string]owed)
	}
	if cur, ok := o.m[name]; ok && cur.gen == e.gen {
		e.n += cur.n
	}
	o.m[name] = e
}

// restore puts back an entry that take removed and could not settle,
// unless one of a newer generation was recorded meanwhile.
func (o *owedReleases) restore(name string, e owed) {
	o.mu.Lock()
	defer o.mu.Unlock()
	cur, ok := o.m[name]
	switch {
	case !ok:
		o.m[name] = e
	case cur.gen == e.gen:
		cur.n += e.n
		o.m[name] = cur
	}
}

// take removes and returns what name is owed.
func (o *owedReleases) take(name string) (owed, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e, ok := o.m[name]
	delete(o.m, name)
	return e, ok
}

func (o *owedReleases) names() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	names := make([]string, 0, len(o.m))
	for name := range o.m {
		names = append(names, name)
	}
	return names
}

// releaseQuota gives n bytes back to user name's ledger. A release the
// ledger certainly did not make is kept and made later (settleQuota). It
// runs on cleanup paths, so it does not give up when ctx has ended.
func (s *Server) releaseQuota(ctx context.Context, name string, n int64) error {
	if n <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// Read before the release: a walk of the home after this read counts
	// the release already, and its new generation voids the retry.
	gen, genErr := s.Users.LedgerGen(ctx, name)
	err := s.ledgerRelease(ctx, name, owed{n: n}, false)
	if errors.Is(err, userdb.ErrNotWritten) {
		if genErr != nil {
			// Not kept: without the generation a retry could count twice.
			return fmt.Errorf("%v (not kept to retry: %w)", err, genErr)
		}
		s.owed.add(name, owed{gen: gen, n: n})
	}
	return err
}

// ledgerRelease makes a release in the ledger, only in generation e.gen
// if ifGen.
func (s *Server) ledgerRelease(ctx context.Context, name string, e owed, ifGen bool) error {
	if h := s.testHookRelease; h != nil {
		if err := h(name, e.n); err != nil {
			return err
		}
	}
	if ifGen {
		return s.Users.ReleaseIfGen(ctx, name, e.n, e.gen)
	}
	return s.Users.Release(ctx, name, e.n)
}

// settleQuota makes the releases of user name that the ledger refused
// before, if it takes them now; quota checks call it before they read
// the user's usage. It returns false while the ledger still refuses.
func (s *Server) settleQuota(ctx context.Context, name string) bool {
	l := s.owed.settleLock(name)
	l.Lock()
	defer l.Unlock()
	e, ok := s.owed.take(name)
	if !ok {
		return true
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := s.ledgerRelease(ctx, name, e, true)
	switch {
	case err == nil:
		s.logger().Info("quota ledger took a release it had refused", "user", name, "bytes", e.n)
	case errors.Is(err, userdb.ErrNotWritten):
		s.owed.restore(name, e)
		return false
	case errors.Is(err, userdb.ErrNotFound):
		s.logger().Info("refused quota release dropped: the user's usage was measured anew, or the user deleted", "user", name, "bytes", e.n)
	default:
		// It may have been made: making it again could count it twice.
		s.logger().Error("refused quota release dropped", "user", name, "bytes", e.n, "err", err)
	}
	return true
}

// settleAllQuotas retries the releases the ledger refused, until it
// refuses one again.
func (s *Server) settleAllQuotas(ctx context.Context) {
	for _, name := range s.owed.names() {
		if ctx.Err() != nil || !s.settleQuota(ctx, name) {
			return
		}
	}
}
