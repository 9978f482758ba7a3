package session

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/qftp/qftp/fsjail"
	"github.com/qftp/qftp/session/userdb"
)

func (s *Server) partialMaxAge() time.Duration {
	if s.PartialMaxAge <= 0 {
		return 7 * 24 * time.Hour
	}
	return s.PartialMaxAge
}

// Reconcile makes every user's recorded usage match the disk: it removes
// partial uploads older than PartialMaxAge and sets usage to the size of
// what is left. Run it before Serve: a crash (or files changed by hand)
// may have left the ledger wrong. It walks every home, so it costs time in
// proportion to the number of files.
func (s *Server) Reconcile(ctx context.Context) error {
	users, err := s.Users.List(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, u := range users {
		if _, err := Rescan(ctx, s.Users, s.HomeDir, u.Name, s.partialMaxAge()); err != nil {
			errs = append(errs, err)
			continue
		}
	}
	return errors.Join(errs...)
}

// Rescan measures the home of user name under homeDir, after removing
// partial uploads older than maxAge (if maxAge > 0), and records the usage.
// While the user uploads, the result may be off by the bytes in flight
// until the next rescan.
func Rescan(ctx context.Context, store interface {
	SetUsed(ctx context.Context, name string, used int64) error
}, homeDir, name string, maxAge time.Duration) (int64, error) {
	home, err := EnsureHome(homeDir, name)
	if err != nil {
		return 0, err
	}
	j, err := fsjail.Open(home)
	if err != nil {
		return 0, fmt.Errorf("rescan %s: %w", name, err)
	}
	defer j.Close()
	if maxAge > 0 {
		if _, err := j.Sweep(time.Now().Add(-maxAge)); err != nil {
			return 0, fmt.Errorf("rescan %s: %w", name, err)
		}
	}
	used, err := j.Usage()
	if err != nil {
		return 0, fmt.Errorf("rescan %s: %w", name, err)
	}
	if err := store.SetUsed(ctx, name, used); err != nil {
		return 0, err
	}
	return used, nil
}

// sweepOnce removes partial uploads older than PartialMaxAge from every
// home and releases their bytes.
func (s *Server) sweepOnce(ctx context.Context) {
	users, err := s.Users.List(ctx)
	if err != nil {
		s.logger().Error("sweep partial uploads", "err", err)
		return
	}
	before := time.Now().Add(-s.partialMaxAge())
	for _, u := range users {
		j, err := fsjail.Open(s.homeOf(u.Name))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			s.logger().Error("sweep partial uploads", "user", u.Name, "err", err)
			continue
		}
		freed, err := j.Sweep(before)
		_ = j.Close()
		if err != nil {
			s.logger().Error("sweep partial uploads", "user", u.Name, "err", err)
		}
		if freed > 0 {
			s.logger().Info("removed old partial uploads", "user", u.Name, "bytes", freed)
			if err := s.releaseQuota(ctx, u.Name, freed); err != nil {
				s.logger().Error("release quota", "user", u.Name, "bytes", freed, "retry", errors.Is(err, userdb.ErrNotWritten), "err", err)
			}
		}
	}
}

// every runs fn every interval until ctx ends: the server's janitor
// (old partial uploads) and its check of logged-in users.
func every(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}
