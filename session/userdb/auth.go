package userdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Authenticate checks password for user name and returns the user on
// success. Every failure a client could cause (invalid or unknown name,
// wrong or empty password) returns an error wrapping ErrBadCredentials, and
// all but the empty or overlong password cost one argon2id computation: an
// unknown user is checked against a dummy hash so that the response time
// does not reveal whether the user exists. If the stored hash is corrupt the
// error also wraps ErrMalformedHash, for the server's log. Errors from the
// database or ctx do not wrap ErrBadCredentials.
//
// The user is read from the database on every call, never from a cache.
// Hashing waits for a slot among Options.MaxConcurrentHashes, honouring ctx.
func (s *Store) Authenticate(ctx context.Context, name, password string) (User, error) {
	// Neither check depends on the user, so failing fast reveals nothing.
	if password == "" || len(password) > MaxPasswordLen {
		return User{}, fmt.Errorf("authenticate: %w", ErrBadCredentials)
	}

	var (
		op      = "authenticate" // an invalid name is the client's; don't echo it
		u       User
		target  = s.dummy
		known   bool
		corrupt error
	)
	if ValidName(name) == nil {
		op += " " + name
		var (
			encoded string
			err     error
		)
		u, encoded, err = s.lookup(ctx, name)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return User{}, fmt.Errorf("%s: %w", op, err)
		default:
			if h, err := parseHash(encoded); err != nil {
				corrupt = err
			} else {
				target, known = h, true
			}
		}
	}

	// Exactly one argon2id computation on every path from here.
	ok, err := s.verify(ctx, target, password)
	switch {
	case err != nil:
		return User{}, fmt.Errorf("%s: %w", op, err)
	case corrupt != nil:
		return User{}, fmt.Errorf("%s: %w: stored password hash: %w", op, ErrBadCredentials, corrupt)
	case !known || !ok:
		return User{}, fmt.Errorf("%s: %w", op, ErrBadCredentials)
	}
	return u, nil
}

// verify checks password against h in a hashing slot. It fails only if ctx
// ends while waiting for the slot.
func (s *Store) verify(ctx context.Context, h phcHash, password string) (bool, error) {
	if err := s.acquire(ctx); err != nil {
		return false, err
	}
	defer s.release()
	return h.verify(password), nil
}

// hash hashes password with the Store's params in a hashing slot.
func (s *Store) hash(ctx context.Context, password string) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer s.release()
	return HashPassword(password, s.params)
}

// acquire takes a hashing slot, or returns ctx's error if ctx ends first.
func (s *Store) acquire(ctx context.Context) error {
	// Checked first because select picks at random when both are ready.
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) release() { <-s.sem }
