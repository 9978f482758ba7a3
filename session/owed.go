package session

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/qftp/qftp/session/userdb"
)

// owedReleases holds bytes that left a user's home while the quota ledger
// refused to record it (the disk under the user store full, the store
// busy past the timeout): the ledger still counts them. Without a retry
// they would cost the user that room until the next restart's Reconcile;
// with it, only until the ledger takes writes again.
type owedReleases struct {
	mu sync.Mutex
	m  map[string]int64 // by user name
}

func (o *owedReleases) add(name string, n int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = make(map[string]int64)
	}
	o.m[name] += n
}

// take removes and returns what name is owed.
func (o *owedReleases) take(name string) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := o.m[name]
	delete(o.m, name)
	return n
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

// releaseQuota gives n bytes, and whatever earlier releases of the user
// failed to give, back to user name's ledger. What the ledger refuses is
// kept to be given back later (settleQuota). It runs on cleanup paths, so
// it does not give up when ctx has ended.
func (s *Server) releaseQuota(ctx context.Context, name string, n int64) error {
	n += s.owed.take(name)
	if n <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var err error
	if h := s.testHookRelease; h != nil {
		err = h(name, n)
	}
	if err == nil {
		err = s.Users.Release(ctx, name, n)
	}
	// Only a release that certainly did not happen is tried again: one
	// that may have happened, tried again, could let the user pass the
	// quota. (A deleted user owes nothing.)
	if errors.Is(err, userdb.ErrNotWritten) {
		s.owed.add(name, n)
	}
	return err
}

// settleQuota gives back what earlier releases of user name could not,
// before its usage is read for a quota check. (The failures were logged
// when they happened.)
func (s *Server) settleQuota(ctx context.Context, name string) {
	s.owed.mu.Lock()
	n := s.owed.m[name]
	s.owed.mu.Unlock()
	if n == 0 {
		return
	}
	if err := s.releaseQuota(ctx, name, 0); err != nil {
		s.logger().Debug("quota ledger still refuses a release", "user", name, "bytes", n, "err", err)
		return
	}
	s.logger().Info("quota ledger took a release it had refused", "user", name, "bytes", n)
}

// settleAllQuotas retries every user's owed releases (the server's
// periodic check runs it).
func (s *Server) settleAllQuotas(ctx context.Context) {
	for _, name := range s.owed.names() {
		s.settleQuota(ctx, name)
	}
}
