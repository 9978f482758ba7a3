package userdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// newPath returns a fresh database path in a test-owned directory.
func newPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "users.db")
}

// openStore opens path with cheap params and closes it at cleanup.
func openStore(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{Params: cheap})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// mustAdd adds a user or fails the test.
func mustAdd(t *testing.T, s *Store, name, password string, quota int64) {
	t.Helper()
	if err := s.Add(t.Context(), name, password, quota); err != nil {
		t.Fatalf("Add(%s): %v", name, err)
	}
}

func TestCRUD(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t, newPath(t))

	if n, err := s.Count(ctx); err != nil || n != 0 {
		t.Fatalf("Count on new store = %d, %v; want 0, nil", n, err)
	}
	if us, err := s.List(ctx); err != nil || us == nil || len(us) != 0 {
		t.Fatalf("List on new store = %#v, %v; want empty non-nil", us, err)
	}

	before := time.Now().Truncate(time.Second)
	mustAdd(t, s, "alice", "pw-alice", 1<<30)
	after := time.Now()

	u, err := s.Get(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "alice" || u.Quota != 1<<30 || u.Used != 0 || u.Rate != 0 {
		t.Errorf("Get = %+v", u)
	}
	if u.Created.Before(before) || u.Created.After(after) || u.Created.Location() != time.UTC {
		t.Errorf("Created = %v, want UTC in [%v, %v]", u.Created, before, after)
	}

	if err := s.SetQuota(ctx, "alice", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUsed(ctx, "alice", 12345); err != nil {
		t.Fatal(err)
	}
	u, err = s.Get(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if u.Quota != 0 || u.Used != 12345 {
		t.Errorf("after SetQuota/SetUsed: %+v", u)
	}

	for _, n := range []string{"bob", "_svc", "a.b", "a-b", "a0"} {
		mustAdd(t, s, n, "pw", 0)
	}
	us, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range us {
		names = append(names, u.Name)
	}
	if got, want := strings.Join(names, " "), "_svc a-b a.b a0 alice bob"; got != want {
		t.Errorf("List names = %q, want %q", got, want)
	}
	if us[4].Used != 12345 {
		t.Errorf("List alice = %+v", us[4])
	}
	if n, err := s.Count(ctx); err != nil || n != 6 {
		t.Errorf("Count = %d, %v; want 6", n, err)
	}

	if err := s.Delete(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete = %v, want ErrNotFound", err)
	}
	if n, err := s.Count(ctx); err != nil || n != 5 {
		t.Errorf("Count after Delete = %d, %v; want 5", n, err)
	}
	// The name is free again.
	mustAdd(t, s, "alice", "new", 0)
}

func TestAddDuplicate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t, newPath(t))
	mustAdd(t, s, "alice", "first", 10)

	err := s.Add(ctx, "alice", "second", 20)
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second Add = %v, want ErrExists", err)
	}
	if want := "add user alice: user already exists"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	// The first user is untouched.
	u, err := s.Authenticate(ctx, "alice", "first")
	if err != nil || u.Quota != 10 {
		t.Errorf("Authenticate(first) = %+v, %v", u, err)
	}
	if _, err := s.Authenticate(ctx, "alice", "second"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("Authenticate(second) = %v, want ErrBadCredentials", err)
	}
}

func TestUnknownUser(t *testing.T) {
	t.Parallel()
	s := openStore(t, newPath(t))
	mustAdd(t, s, "alice", "pw", 0)
	tests := []struct {
		name string
		op   func(ctx context.Context) error
	}{
		{"SetPassword", func(ctx context.Context) error { return s.SetPassword(ctx, "nobody", "pw") }},
		{"SetQuota", func(ctx context.Context) error { return s.SetQuota(ctx, "nobody", 1) }},
		{"SetUsed", func(ctx context.Context) error { return s.SetUsed(ctx, "nobody", 1) }},
		{"Delete", func(ctx context.Context) error { return s.Delete(ctx, "nobody") }},
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, "nobody"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.op(t.Context())
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s(nobody) = %v, want ErrNotFound", tt.name, err)
			}
			if !strings.Contains(err.Error(), "nobody") {
				t.Errorf("error %q does not name the user", err)
			}
		})
	}
}

func TestInvalidInput(t *testing.T) {
	t.Parallel()
	s := openStore(t, newPath(t))
	mustAdd(t, s, "alice", "pw", 0)
	const secret = "SeCrEt-PaSsWoRd"
	tests := []struct {
		name string
		op   func(ctx context.Context) error
		want error // nil: any error
	}{
		{"Add invalid name", func(ctx context.Context) error { return s.Add(ctx, "../x", secret, 0) }, ErrInvalidName},
		{"Add empty name", func(ctx context.Context) error { return s.Add(ctx, "", secret, 0) }, ErrInvalidName},
		{"Add empty password", func(ctx context.Context) error { return s.Add(ctx, "bob", "", 0) }, ErrInvalidPassword},
		{"Add long password", func(ctx context.Context) error {
			return s.Add(ctx, "bob", strings.Repeat(secret, 100), 0)
		}, ErrInvalidPassword},
		{"Add negative quota", func(ctx context.Context) error { return s.Add(ctx, "bob", secret, -1) }, nil},
		{"SetPassword invalid name", func(ctx context.Context) error { return s.SetPassword(ctx, "Alice", secret) }, ErrInvalidName},
		{"SetPassword empty", func(ctx context.Context) error { return s.SetPassword(ctx, "alice", "") }, ErrInvalidPassword},
		{"SetPassword long", func(ctx context.Context) error {
			return s.SetPassword(ctx, "alice", strings.Repeat("x", MaxPasswordLen+1))
		}, ErrInvalidPassword},
		{"SetQuota negative", func(ctx context.Context) error { return s.SetQuota(ctx, "alice", -5) }, nil},
		{"SetQuota invalid name", func(ctx context.Context) error { return s.SetQuota(ctx, ".", 5) }, ErrInvalidName},
		{"SetUsed negative", func(ctx context.Context) error { return s.SetUsed(ctx, "alice", -1) }, nil},
		{"SetUsed invalid name", func(ctx context.Context) error { return s.SetUsed(ctx, "a/b", 1) }, ErrInvalidName},
		{"Delete invalid name", func(ctx context.Context) error { return s.Delete(ctx, "..") }, ErrInvalidName},
		{"Get invalid name", func(ctx context.Context) error { _, err := s.Get(ctx, "A"); return err }, ErrInvalidName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.op(t.Context())
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "$argon2id$") {
				t.Errorf("error %q leaks the password or hash", err)
			}
		})
	}
	// Nothing above changed the store.
	if n, err := s.Count(t.Context()); err != nil || n != 1 {
		t.Errorf("Count = %d, %v; want 1", n, err)
	}
	if _, err := s.Authenticate(t.Context(), "alice", "pw"); err != nil {
		t.Errorf("alice's password changed: %v", err)
	}
}

func TestPasswordLengthLimit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t, newPath(t))
	pw := strings.Repeat("p", MaxPasswordLen)
	mustAdd(t, s, "alice", pw, 0)
	if _, err := s.Authenticate(ctx, "alice", pw); err != nil {
		t.Errorf("Authenticate with %d-byte password: %v", MaxPasswordLen, err)
	}
	if _, err := s.Authenticate(ctx, "alice", pw+"p"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("Authenticate with overlong password = %v, want ErrBadCredentials", err)
	}
}

func TestPersistence(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := newPath(t)

	s1, err := Open(path, Options{Params: cheap})
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Add(ctx, "alice", "pw", 42); err != nil {
		t.Fatal(err)
	}
	if err := s1.SetUsed(ctx, "alice", 7); err != nil {
		t.Fatal(err)
	}
	want, err := s1.Get(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openStore(t, path)
	got, err := s2.Get(ctx, "alice")
	if err != nil || got != want {
		t.Fatalf("Get after reopen = %+v, %v; want %+v", got, err, want)
	}
	if _, err := s2.Authenticate(ctx, "alice", "pw"); err != nil {
		t.Errorf("Authenticate after reopen: %v", err)
	}
	var version int
	if err := s2.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&version); err != nil || version != len(migrations) {
		t.Errorf("schema version = %d, %v; want %d", version, err, len(migrations))
	}
}

func TestFileMode(t *testing.T) {
	t.Parallel()
	path := newPath(t)
	s := openStore(t, path)
	mustAdd(t, s, "alice", "pw", 0) // makes SQLite create -wal and -shm
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("stat: %v", err)
			continue
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s mode = %o, want 600", filepath.Base(p), perm)
		}
	}
}

func TestConnectionSettings(t *testing.T) {
	t.Parallel()
	s := openStore(t, newPath(t))
	tests := []struct{ pragma, want string }{
		{"journal_mode", "wal"},
		{"busy_timeout", "5000"},
	}
	for _, tt := range tests {
		var got string
		if err := s.db.QueryRowContext(t.Context(), "PRAGMA "+tt.pragma).Scan(&got); err != nil || got != tt.want {
			t.Errorf("PRAGMA %s = %q, %v; want %q", tt.pragma, got, err, tt.want)
		}
	}
}

func TestOpenPathNeedsEscaping(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a?b#c%20d e")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "users.db")
	s := openStore(t, path)
	mustAdd(t, s, "alice", "pw", 0)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at the given path: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	notDB := filepath.Join(t.TempDir(), "garbage")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("not a database\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		opts Options
	}{
		{"negative MaxConcurrentHashes", newPath(t), Options{Params: cheap, MaxConcurrentHashes: -1}},
		{"partial params", newPath(t), Options{Params: Params{Memory: 64}}},
		{"absurd params", newPath(t), Options{Params: Params{Memory: 64, Time: 1000, Threads: 1}}},
		{"missing directory", filepath.Join(t.TempDir(), "no", "such", "users.db"), Options{Params: cheap}},
		{"not a database", notDB, Options{Params: cheap}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Open(tt.path, tt.opts)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want error")
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not name the path", err)
			}
		})
	}
}

func TestOpenDefaults(t *testing.T) {
	t.Parallel()
	s, err := Open(newPath(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.params != DefaultParams {
		t.Errorf("params = %+v, want DefaultParams", s.params)
	}
	if cap(s.sem) < 1 {
		t.Errorf("semaphore capacity = %d", cap(s.sem))
	}
	if s.dummy.params != DefaultParams {
		t.Errorf("dummy hash params = %+v, want the store's", s.dummy.params)
	}
}

// TestConcurrentStores simulates the admin CLI and the running server: two
// Stores on one file writing and reading at once. None of it may fail with
// "database is locked", and each sees the other's writes at once.
func TestConcurrentStores(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := newPath(t)
	cli, server := openStore(t, path), openStore(t, path)

	const perWorker, workers = 10, 4
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	record := func(err error) {
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	}
	for w := range workers {
		for si, s := range []*Store{cli, server} {
			wg.Go(func() {
				for i := range perWorker {
					name := fmt.Sprintf("u%d_%d_%d", si, w, i)
					record(s.Add(ctx, name, "pw-"+name, int64(i)))
					record(s.SetUsed(ctx, name, int64(i*10)))
					// The other store sees the user at once: no caching.
					other := server
					if s == server {
						other = cli
					}
					_, err := other.Authenticate(ctx, name, "pw-"+name)
					record(err)
				}
			})
		}
	}
	// Readers running alongside the writers.
	for range 2 {
		wg.Go(func() {
			for range 20 {
				_, err := server.List(ctx)
				record(err)
				_, err = cli.Count(ctx)
				record(err)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}

	want := 2 * workers * perWorker
	for _, s := range []*Store{cli, server} {
		if n, err := s.Count(ctx); err != nil || n != want {
			t.Errorf("Count = %d, %v; want %d", n, err, want)
		}
	}
}
