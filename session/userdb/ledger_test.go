package userdb

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestReserveRelease(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := Open(filepath.Join(t.TempDir(), "users.db"), Options{Params: Params{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Add(ctx, "alice", "pw", 100); err != nil {
		t.Fatal(err)
	}
	if err := s.Reserve(ctx, "alice", 60); err != nil {
		t.Fatal(err)
	}
	var qe *QuotaError
	if err := s.Reserve(ctx, "alice", 41); !errors.Is(err, ErrQuota) || !errors.As(err, &qe) || *qe != (QuotaError{Need: 41, Quota: 100, Used: 60}) {
		t.Fatalf("over quota: %v", err)
	}
	if err := s.Reserve(ctx, "nobody", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	if err := s.Reserve(ctx, "alice", 40); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, "alice", 30); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.Get(ctx, "alice"); u.Used != 70 {
		t.Fatalf("used = %d, want 70", u.Used)
	}
	if err := s.Release(ctx, "alice", 1000); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.Get(ctx, "alice"); u.Used != 0 {
		t.Fatalf("used = %d after over-release, want 0", u.Used)
	}
	if err := s.Reserve(ctx, "nobody", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	// Unlimited quota.
	if err := s.SetQuota(ctx, "alice", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Reserve(ctx, "alice", 1<<50); err != nil {
		t.Fatal(err)
	}
}

// Two stores on one file (a server and another process) reserving at once
// never pass the quota together.
func TestReserveConcurrent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "users.db")
	opts := Options{Params: Params{Memory: 64, Time: 1, Threads: 1}}
	a, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.Add(ctx, "bob", "pw", 1000); err != nil {
		t.Fatal(err)
	}
	var granted atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		st := a
		if i%2 == 1 {
			st = b
		}
		wg.Go(func() {
			if err := st.Reserve(ctx, "bob", 37); err == nil {
				granted.Add(37)
			} else if !errors.Is(err, ErrQuota) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	u, _ := a.Get(ctx, "bob")
	if u.Used != granted.Load() || u.Used > 1000 || u.Used < 1000-37 {
		t.Fatalf("used %d, granted %d", u.Used, granted.Load())
	}
}

func TestSettings(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := Open(filepath.Join(t.TempDir(), "users.db"), Options{Params: Params{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok, err := s.Setting(ctx, SettingDefaultQuota); ok || err != nil {
		t.Fatalf("unset: ok=%v err=%v", ok, err)
	}
	for _, v := range []string{"100", "0"} {
		if err := s.SetSetting(ctx, SettingDefaultQuota, v); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := s.Setting(ctx, SettingDefaultQuota); got != v || !ok || err != nil {
			t.Fatalf("got %q %v %v", got, ok, err)
		}
	}
}

// lockedLedger returns a store whose user name has a quota of 100 and
// uses 60, and a transaction of another connection (another process, as
// far as SQLite knows) that holds the write lock.
func lockedLedger(t *testing.T, name string) (*Store, *sql.Tx) {
	t.Helper()
	path := newPath(t)
	s := openStore(t, path)
	mustAdd(t, s, name, "pw", 100)
	if err := s.Reserve(t.Context(), name, 60); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	tx, err := other.BeginTx(t.Context(), nil) // _txlock=immediate: takes the write lock
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	return s, tx
}

// A release that cannot get the write lock within busy_timeout, or whose
// context ended before it started, fails as ErrNotWritten and changes
// nothing, so that the server may make it again later without counting
// it twice.
func TestReleaseNotWritten(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, tx := lockedLedger(t, "alice")
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Release(canceled, "alice", 10); !errors.Is(err, ErrNotWritten) {
		t.Fatalf("release with its context ended: %v, want ErrNotWritten", err)
	}
	if err := s.Release(ctx, "alice", 50); !errors.Is(err, ErrNotWritten) {
		t.Fatalf("release under another's write lock: %v, want ErrNotWritten", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.Get(ctx, "alice"); u.Used != 60 {
		t.Fatalf("used = %d after failed releases, want 60", u.Used)
	}
}

// ReleaseIfGen releases only while the ledger generation read before is
// current: setting the usage from a walk, or deleting the user, starts a
// new one.
func TestReleaseIfGen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t, newPath(t))
	mustAdd(t, s, "bob", "pw", 0)
	if err := s.Reserve(ctx, "bob", 100); err != nil {
		t.Fatal(err)
	}
	gen, err := s.LedgerGen(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseIfGen(ctx, "bob", 10, gen); err != nil {
		t.Fatalf("release in the current generation: %v", err)
	}
	if err := s.SetUsed(ctx, "bob", 80); err != nil {
		t.Fatal(err)
	}
	voided := func(when, gen string, want int64) {
		t.Helper()
		if err := s.ReleaseIfGen(ctx, "bob", 10, gen); !errors.Is(err, ErrNotFound) {
			t.Fatalf("release %s: %v, want ErrNotFound", when, err)
		}
		if u, _ := s.Get(ctx, "bob"); u.Used != want {
			t.Fatalf("used = %d after a release %s, want %d", u.Used, when, want)
		}
	}
	voided("in a past generation", gen, 80)
	gen, _ = s.LedgerGen(ctx, "bob")
	if err := s.Delete(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, s, "bob", "pw", 0)
	if err := s.Reserve(ctx, "bob", 50); err != nil {
		t.Fatal(err)
	}
	voided("for a deleted user's namesake", gen, 50)
}

// A release that has begun is not cut off when its context ends (one cut
// off might have been committed all the same): it waits out another's
// write lock and is made.
func TestReleaseNotInterrupted(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, tx := lockedLedger(t, "carl")
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	unlocked := make(chan error, 1)
	go func() {
		<-short.Done() // the lock goes only once the release's context has ended
		unlocked <- tx.Rollback()
	}()
	if err := s.Release(short, "carl", 10); err != nil {
		t.Fatalf("release whose context ended while it waited for the lock: %v", err)
	}
	if err := <-unlocked; err != nil {
		t.Fatal(err)
	}
	if u, _ := s.Get(ctx, "carl"); u.Used != 50 {
		t.Fatalf("used = %d, want 50", u.Used)
	}
}
