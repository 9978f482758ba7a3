package userdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
)

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	s := openStore(t, newPath(t))
	mustAdd(t, s, "alice", "right", 100)
	tests := []struct {
		name, user, password string
		ok                   bool
	}{
		{"right password", "alice", "right", true},
		{"wrong password", "alice", "wrong", false},
		{"password prefix", "alice", "righ", false},
		{"password with suffix", "alice", "right\x00", false},
		{"unknown user", "bob", "right", false},
		{"empty password", "alice", "", false},
		{"overlong password", "alice", strings.Repeat("x", MaxPasswordLen+1), false},
		{"empty name", "", "right", false},
		{"invalid name", "../alice", "right", false},
		{"case differs", "Alice", "right", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u, err := s.Authenticate(t.Context(), tt.user, tt.password)
			if tt.ok {
				if err != nil || u.Name != "alice" || u.Quota != 100 {
					t.Fatalf("Authenticate = %+v, %v; want alice", u, err)
				}
				return
			}
			if !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("Authenticate = %+v, %v; want ErrBadCredentials", u, err)
			}
			if u != (User{}) {
				t.Errorf("failed Authenticate returned user %+v", u)
			}
			if tt.password != "" && strings.Contains(err.Error(), tt.password) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

// TestAuthenticateSameError checks that the error text for an unknown user
// and for a wrong password differ only in the name.
func TestAuthenticateSameError(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t, newPath(t))
	mustAdd(t, s, "alice", "right", 0)
	_, wrong := s.Authenticate(ctx, "alice", "wrong")
	_, unknown := s.Authenticate(ctx, "bobby", "wrong")
	if got, want := strings.Replace(unknown.Error(), "bobby", "alice", 1), wrong.Error(); got != want {
		t.Errorf("unknown user: %q\nwrong password: %q", unknown, wrong)
	}
}

// TestAuthenticateHashesUnknownUser checks that a failed login that does
// not depend on the password still runs one argon2id computation: with the
// only hashing slot taken, it must wait instead of failing fast.
func TestAuthenticateHashesUnknownUser(t *testing.T) {
	t.Parallel()
	for _, user := range []string{"nobody", "../invalid", "corrupt", "alice"} {
		t.Run(user, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				ctx := t.Context()
				s, err := Open(newPath(t), Options{Params: cheap, MaxConcurrentHashes: 1})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				mustAdd(t, s, "alice", "right", 0)
				mustAdd(t, s, "corrupt", "right", 0)
				if _, err := s.db.ExecContext(ctx, `UPDATE users SET password_hash = 'garbage' WHERE name = 'corrupt'`); err != nil {
					t.Fatal(err)
				}

				s.sem <- struct{}{} // take the only slot
				done := make(chan error, 1)
				go func() {
					_, err := s.Authenticate(ctx, user, "wrong")
					done <- err
				}()
				synctest.Wait()
				select {
				case err := <-done:
					t.Fatalf("Authenticate returned %v without waiting for a hashing slot", err)
				default:
				}
				s.release()
				if err := <-done; !errors.Is(err, ErrBadCredentials) {
					t.Fatalf("Authenticate = %v, want ErrBadCredentials", err)
				}
			})
		})
	}
}

func TestAuthenticateCorruptHash(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t, newPath(t))
	mustAdd(t, s, "alice", "right", 0)
	for _, c := range corrupted {
		if len(c.encoded) > 1000 {
			continue
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE name = 'alice'`, c.encoded); err != nil {
			t.Fatal(err)
		}
		_, err := s.Authenticate(ctx, "alice", "correct horse battery staple")
		if !errors.Is(err, ErrBadCredentials) || !errors.Is(err, ErrMalformedHash) {
			t.Errorf("%s: Authenticate = %v, want ErrBadCredentials and ErrMalformedHash", c.name, err)
		}
	}
	// The rest of the row is still usable, and SetPassword repairs it.
	if _, err := s.Get(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPassword(ctx, "alice", "new"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "alice", "new"); err != nil {
		t.Fatal(err)
	}
}

func TestAuthenticateContext(t *testing.T) {
	t.Parallel()
	s := openStore(t, newPath(t))
	mustAdd(t, s, "alice", "right", 0)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, user := range []string{"alice", "nobody", "../x"} {
		_, err := s.Authenticate(ctx, user, "right")
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrBadCredentials) {
			t.Errorf("Authenticate(%s) with canceled ctx = %v, want context.Canceled only", user, err)
		}
	}
	if err := s.Add(ctx, "bob", "pw", 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Add with canceled ctx = %v", err)
	}
}

func TestSetPassword(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t, newPath(t))
	mustAdd(t, s, "alice", "old", 0)
	if err := s.SetPassword(ctx, "alice", "new"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "alice", "old"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("old password: %v, want ErrBadCredentials", err)
	}
	if _, err := s.Authenticate(ctx, "alice", "new"); err != nil {
		t.Errorf("new password: %v", err)
	}
	var stored string
	if err := s.db.QueryRowContext(ctx, `SELECT password_hash FROM users WHERE name = 'alice'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !phcRE.MatchString(stored) {
		t.Errorf("stored hash %q is not a PHC string with the store's params", stored)
	}
}

// Credential is the same whichever way a user is read, changes with every
// SetPassword (the same password too: a new salt) and with nothing else.
func TestCredential(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t, newPath(t))
	mustAdd(t, s, "alice", "pw", 0)
	cred := func() uint64 {
		t.Helper()
		g, err := s.Get(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		a, err := s.Authenticate(ctx, "alice", "pw")
		if err != nil {
			t.Fatal(err)
		}
		l, err := s.List(ctx)
		if err != nil || len(l) != 1 {
			t.Fatal(l, err)
		}
		if g.Credential == 0 || a.Credential != g.Credential || l[0].Credential != g.Credential {
			t.Fatalf("credentials differ: get %x, authenticate %x, list %x", g.Credential, a.Credential, l[0].Credential)
		}
		return g.Credential
	}
	first := cred()
	if err := s.SetQuota(ctx, "alice", 5); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRate(ctx, "alice", 5); err != nil {
		t.Fatal(err)
	}
	if c := cred(); c != first {
		t.Fatal("quota or rate changed the credential")
	}
	if err := s.SetPassword(ctx, "alice", "pw"); err != nil {
		t.Fatal(err)
	}
	if c := cred(); c == first {
		t.Fatal("setting the password kept the credential")
	}
}

func TestConcurrentAuthenticate(t *testing.T) {
	t.Parallel()
	s, err := Open(newPath(t), Options{Params: cheap, MaxConcurrentHashes: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	for i := range 5 {
		mustAdd(t, s, fmt.Sprintf("user%d", i), fmt.Sprintf("pw%d", i), 0)
	}

	const goroutines = 20
	var wg sync.WaitGroup
	errs := make([]error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range 5 {
				name, pw := fmt.Sprintf("user%d", i), fmt.Sprintf("pw%d", i)
				if u, err := s.Authenticate(ctx, name, pw); err != nil || u.Name != name {
					errs[g] = fmt.Errorf("right password for %s: %+v, %v", name, u, err)
					return
				}
				if _, err := s.Authenticate(ctx, name, pw+"x"); !errors.Is(err, ErrBadCredentials) {
					errs[g] = fmt.Errorf("wrong password for %s: %v", name, err)
					return
				}
				if _, err := s.Authenticate(ctx, fmt.Sprintf("ghost%d", g), pw); !errors.Is(err, ErrBadCredentials) {
					errs[g] = fmt.Errorf("unknown user: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if len(s.sem) != 0 {
		t.Errorf("%d hashing slots leaked", len(s.sem))
	}
}
