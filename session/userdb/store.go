// Package userdb is qftp's embedded user store: user names, argon2id password
// hashes, quotas and usage in one SQLite file.
//
// The admin CLI (qftpd user add, …) and a running server open the same file
// at the same time. The database therefore runs in WAL mode with a 5 s busy
// timeout, every write is a single statement or a short transaction, and
// nothing is cached: a user added by the CLI is seen by the server's next
// Authenticate.
//
// The schema uses only portable types and constraints so that a networked
// SQL database (PostgreSQL) could hold the same tables later; only the
// placeholders ("?") and the DSN are SQLite-specific.
package userdb

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite" // registers the "sqlite" driver (pure Go, no cgo)
	sqlite3 "modernc.org/sqlite/lib"
)

var (
	// ErrNotFound is returned (wrapped) when the named user does not exist.
	ErrNotFound = errors.New("no such user")
	// ErrExists is returned (wrapped) by Add when the name is taken.
	ErrExists = errors.New("user already exists")
	// ErrBadCredentials is returned (wrapped) by Authenticate for an unknown
	// or invalid user name, a wrong password and an empty password alike, so
	// that callers cannot tell them apart.
	ErrBadCredentials = errors.New("invalid user name or password")
	// ErrNotWritten is matched by a failed release that certainly changed
	// nothing (no connection to be had, the database busy, locked, full,
	// read-only or not to be opened), so that making it again later cannot
	// count it twice.
	ErrNotWritten = errors.New("not written")
)

// errNegative is the cause for a negative quota or usage; the CLI validates
// its input before calling, so nobody needs to branch on it.
var errNegative = errors.New("must not be negative")

const (
	// busyTimeout is how long SQLite waits for another connection's lock
	// (the CLI's, or the server's) before giving up with SQLITE_BUSY.
	busyTimeout = 5 * time.Second
	// maxOpenConns bounds SQLite connections per Store. A login storm then
	// queues in database/sql (honouring ctx) instead of opening a
	// connection, with its own page cache, per client.
	maxOpenConns = 8
)

// Options configure a Store. The zero value is ready to use.
type Options struct {
	// Params are the argon2id parameters for new hashes and for the dummy
	// hash that Authenticate checks unknown users against. Zero means
	// DefaultParams. Tests pass cheap ones.
	Params Params // optional

	// MaxConcurrentHashes bounds how many argon2id computations the Store
	// runs at once, and so the memory simultaneous logins take
	// (MaxConcurrentHashes × Params.Memory KiB). Callers beyond the bound
	// wait, honouring their ctx. Zero means runtime.NumCPU().
	MaxConcurrentHashes int // optional
}

// User is one account as stored. It never carries the password hash.
type User struct {
	Name  string
	Quota int64 // bytes the user may store; 0 means unlimited
	Used  int64 // bytes the user stores, as last recorded with SetUsed
	Rate  int64 // bytes per second over all the user's transfers; 0 means unlimited
	// MaxConns caps the connections of one of the user's sessions; 0 means
	// the server's limit.
	MaxConns int
	Created  time.Time // when Add ran, UTC, whole seconds
	// Credential changes whenever the password is set (it is a digest of
	// the stored hash, which a new salt makes new even for the same
	// password): a session compares it with the one it logged in with.
	Credential uint64
}

func credentialOf(hash string) uint64 {
	sum := sha256.Sum256([]byte(hash))
	return binary.LittleEndian.Uint64(sum[:8])
}

// Store is a handle on the user database file. It is safe for concurrent
// use, and any number of Stores, in this process or others, may have the
// same file open. The caller closes it with Close.
type Store struct {
	db     *sql.DB
	stmts  sync.Map // query → *sql.Stmt, for the statements every transfer runs
	params Params
	sem    chan struct{} // one token per running argon2id computation
	dummy  phcHash       // verified instead of a real hash for unknown users
}

// Open opens the user database at path, creating the file (mode 0o600) and
// the schema if they are missing and migrating an older schema. It fails if
// the file was migrated by a newer qftp than this one.
func Open(path string, opts Options) (*Store, error) {
	s, err := open(path, opts)
	if err != nil {
		return nil, fmt.Errorf("open user database %s: %w", path, err)
	}
	return s, nil
}

func open(path string, opts Options) (*Store, error) {
	p := opts.Params
	if p == (Params{}) {
		p = DefaultParams
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	n := opts.MaxConcurrentHashes
	switch {
	case n < 0:
		return nil, fmt.Errorf("MaxConcurrentHashes %d is negative", n)
	case n == 0:
		n = runtime.NumCPU()
	}

	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	// SQLite would create the file with the umask's mode (usually 0o644);
	// it holds password hashes. SQLite gives the -wal and -shm files the
	// main file's mode.
	if err := createPrivate(abs); err != nil {
		return nil, err
	}

	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(maxOpenConns)
	// Idle connections kept open keep their prepared statements (see
	// stmt); closed ones would be reopened and prepare again.
	db.SetMaxIdleConns(maxOpenConns)
	// Open has no ctx; busy_timeout bounds each wait for a lock. Some
	// lock conflicts of processes opening a fresh file at once (while one
	// switches it to WAL) fail with SQLITE_BUSY without waiting: those
	// are tried again, for as long as busy_timeout.
	deadline := time.Now().Add(busyTimeout)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err = migrate(context.Background(), db)
		if err == nil || !isBusy(err) || time.Now().Add(wait).After(deadline) {
			break
		}
		time.Sleep(wait)
	}
	if err != nil {
		_ = db.Close() // report the migration error
		return nil, err
	}

	// The dummy needs no real password behind it: verifying against it runs
	// argon2id with the Store's params exactly like a real user's hash, and
	// a random key matches nothing. So Open pays no hashing cost.
	dummy := phcHash{params: p, salt: make([]byte, saltLen), key: make([]byte, keyLen)}
	_, _ = rand.Read(dummy.salt) // crypto/rand.Read never fails (Go 1.24+)
	_, _ = rand.Read(dummy.key)

	return &Store{db: db, params: p, sem: make(chan struct{}, n), dummy: dummy}, nil
}

// isBusy reports whether err is SQLite's "database is locked".
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// dsn builds a file: URI for path so that any byte in the path ('?', '#',
// '%') survives. The driver applies _busy_timeout before _journal_mode, so a
// second process switching a fresh file to WAL waits instead of failing.
// _txlock=immediate makes BeginTx take the write lock up front: a deferred
// transaction that reads and then writes can fail with SQLITE_BUSY at once
// in WAL mode, without waiting on busy_timeout.
//
// Password changes and new users are durable once the process exits
// normally or after the next checkpoint.
func dsn(abs string) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // Windows: file:///C:/…
	}
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Set("_journal_mode", "WAL")
	q.Set("_txlock", "immediate")
	// In WAL mode NORMAL syncs at checkpoints, not at every commit: a
	// power cut can lose the last usage updates, which the server's
	// reconcile at start restores from the disk anyway.
	q.Add("_pragma", "synchronous(NORMAL)")
	return (&url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}).String()
}

// createPrivate creates path with mode 0o600 unless it exists. An empty file
// is a valid empty SQLite database.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// Close closes the database. Queries already running finish first;
// operations started after Close fail.
func (s *Store) Close() error {
	s.stmts.Range(func(_, v any) bool {
		_ = v.(*sql.Stmt).Close()
		return true
	})
	return s.db.Close()
}

// stmt returns query prepared once per Store. Every transfer reads its
// user and every upload reserves quota, and parsing the SQL each time cost
// as much as running it (with many small files, a tenth of the server's
// CPU).
func (s *Store) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		_ = st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// Add creates user name with password and quota (bytes, 0 = unlimited). The
// password must be 1 to MaxPasswordLen bytes (ErrInvalidPassword); the error
// wraps ErrInvalidName, ErrExists or ErrInvalidPassword where those apply.
// Hashing waits for a slot among Options.MaxConcurrentHashes, honouring ctx.
func (s *Store) Add(ctx context.Context, name, password string, quota int64) error {
	if err := ValidName(name); err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	if err := CheckPassword(password); err != nil {
		return fmt.Errorf("add user %s: %w", name, err)
	}
	if quota < 0 {
		return fmt.Errorf("add user %s: quota %w", name, errNegative)
	}
	hash, err := s.hash(ctx, password)
	if err != nil {
		return fmt.Errorf("add user %s: %w", name, err)
	}
	// ON CONFLICT DO NOTHING (SQLite and PostgreSQL) turns a duplicate into
	// zero rows affected instead of a driver-specific constraint error.
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO users (name, password_hash, quota, used, rate, created)
		VALUES (?, ?, ?, 0, 0, ?) ON CONFLICT (name) DO NOTHING`,
		name, hash, quota, time.Now().Unix())
	if err != nil {
		return fmt.Errorf("add user %s: %w", name, err)
	}
	if err := oneRow(res, ErrExists); err != nil {
		return fmt.Errorf("add user %s: %w", name, err)
	}
	return nil
}

// SetPassword replaces the password of user name. The password rules and
// hashing are those of Add. The error wraps ErrNotFound for an unknown user.
func (s *Store) SetPassword(ctx context.Context, name, password string) error {
	if err := ValidName(name); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	if err := CheckPassword(password); err != nil {
		return fmt.Errorf("set password %s: %w", name, err)
	}
	hash, err := s.hash(ctx, password)
	if err != nil {
		return fmt.Errorf("set password %s: %w", name, err)
	}
	return s.update(ctx, "set password", name, `UPDATE users SET password_hash = ? WHERE name = ?`, hash, name)
}

// SetQuota sets the quota of user name in bytes; 0 means unlimited and a
// negative quota is an error. The error wraps ErrNotFound for an unknown
// user.
func (s *Store) SetQuota(ctx context.Context, name string, quota int64) error {
	return s.setCount(ctx, "set quota", name, "quota", quota)
}

// SetRate sets user name's total transfer rate cap in bytes per second
// (0 = unlimited), shared by all of the user's sessions.
func (s *Store) SetRate(ctx context.Context, name string, rate int64) error {
	return s.setCount(ctx, "set rate", name, "rate", rate)
}

// SetMaxConns caps the connections one session of user name may stripe
// over (0 = the server's limit).
func (s *Store) SetMaxConns(ctx context.Context, name string, n int) error {
	return s.setCount(ctx, "set connections", name, "max_conns", int64(n))
}

// SetUsed records that user name stores used bytes; negative is an error.
// The error wraps ErrNotFound for an unknown user. It starts a new ledger
// generation (see LedgerGen).
func (s *Store) SetUsed(ctx context.Context, name string, used int64) error {
	if used < 0 {
		return fmt.Errorf("set used %s: used %w", name, errNegative)
	}
	return s.newGeneration(ctx, "set used", name, `UPDATE users SET used = ? WHERE name = ?`, used, name)
}

// LedgerGen returns user name's ledger generation: a value that changes
// whenever its usage is set from a walk of its home (SetUsed) or the user
// is deleted. A release that failed can be made again later with
// ReleaseIfGen and the generation read before it: if the usage was
// measured anew since, the walk has counted the release already.
func (s *Store) LedgerGen(ctx context.Context, name string) (string, error) {
	var gen string
	err := s.db.QueryRowContext(ctx, `SELECT gen FROM ledger WHERE name = ?`, name).Scan(&gen)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read ledger generation of %s: %w", name, err)
	}
	return gen, nil
}

// newGeneration runs query (a write of user name's row) and gives the user
// a new ledger generation, in one transaction.
func (s *Store) newGeneration(ctx context.Context, op, name, query string, args ...any) (err error) {
	if err := ValidName(name); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, name, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	res, err := tx.ExecContext(ctx, query, args...)
	if err == nil {
		err = oneRow(res, ErrNotFound)
	}
	if err == nil {
		gen := make([]byte, 16)
		_, _ = rand.Read(gen)
		_, err = tx.ExecContext(ctx, `INSERT INTO ledger (name, gen) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET gen = excluded.gen`,
			name, hex.EncodeToString(gen))
	}
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, name, err)
	}
	return nil
}

// setCount stores a non-negative number in column (one of this file's
// constants, never user input) of user name's row.
func (s *Store) setCount(ctx context.Context, op, name, column string, v int64) error {
	if v < 0 {
		return fmt.Errorf("%s %s: %s %w", op, name, column, errNegative)
	}
	return s.update(ctx, op, name, "UPDATE users SET "+column+" = ? WHERE name = ?", v, name)
}

// Setting names.
const (
	// SettingDefaultQuota is the quota (decimal bytes, 0 = unlimited) of
	// users added without one; qftpd serve --default-quota sets it.
	SettingDefaultQuota = "default_quota"
)

// SetSetting stores a server-wide setting.
func (s *Store) SetSetting(ctx context.Context, name, value string) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	if err != nil {
		return fmt.Errorf("set %s: %w", name, err)
	}
	return nil
}

// Setting returns a server-wide setting; ok is false if it was never set.
func (s *Store) Setting(ctx context.Context, name string) (value string, ok bool, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read %s: %w", name, err)
	}
	return value, true, nil
}

// ErrQuota is returned by Reserve when the bytes would not fit the quota.
var ErrQuota = errors.New("quota exceeded")

// QuotaError is Reserve's refusal, with the quota and the usage that the
// bytes did not fit. It matches ErrQuota.
type QuotaError struct {
	Need, Quota, Used int64
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("quota exceeded: %d bytes more, %d of %d used", e.Need, e.Used, e.Quota)
}

func (e *QuotaError) Is(target error) bool { return target == ErrQuota }

// Reserve adds n bytes to user name's usage if that keeps it within the
// quota, atomically with respect to every other Reserve on the same file,
// in any process: two sessions can never together pass the quota. It fails
// with a *QuotaError (and changes nothing) if the bytes do not fit,
// ErrNotFound for an unknown user. n <= 0 is a no-op.
func (s *Store) Reserve(ctx context.Context, name string, n int64) (err error) {
	if n <= 0 {
		return nil
	}
	err = s.update(ctx, "reserve", name,
		`UPDATE users SET used = used + ? WHERE name = ? AND (quota = 0 OR used + ? <= quota)`, n, name, n)
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	// No row: no such user, or no room. Look again holding the write lock
	// (_txlock=immediate), which tells the two apart with figures that
	// are true together, and takes the bytes if room was freed meanwhile.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("reserve %d bytes for %s: %w", n, name, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
			err = fmt.Errorf("reserve %d bytes for %s: %w", n, name, err)
		}
	}()
	var quota, used int64
	err = tx.QueryRowContext(ctx, `SELECT quota, used FROM users WHERE name = ?`, name).Scan(&quota, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if quota > 0 && used+n > quota {
		return &QuotaError{Need: n, Quota: quota, Used: used}
	}
	if _, err = tx.ExecContext(ctx, `UPDATE users SET used = used + ? WHERE name = ?`, n, name); err != nil {
		return err
	}
	return tx.Commit()
}

// Release subtracts n bytes from user name's usage (never below zero).
// n <= 0 is a no-op. ctx bounds only the wait for a database connection:
// once started, the statement runs to its end (its wait for the write lock
// is busy_timeout's), because one that ctx interrupts may have committed
// all the same, and the caller could not tell whether to make it again.
// The error wraps ErrNotWritten when the release certainly did not happen.
func (s *Store) Release(ctx context.Context, name string, n int64) error {
	return s.releaseBytes(ctx, name, n, "", false)
}

// ReleaseIfGen is Release, made only if user name's ledger generation is
// still gen (see LedgerGen); else it fails with ErrNotFound, as for an
// unknown user.
func (s *Store) ReleaseIfGen(ctx context.Context, name string, n int64, gen string) error {
	return s.releaseBytes(ctx, name, n, gen, true)
}

func (s *Store) releaseBytes(ctx context.Context, name string, n int64, gen string, ifGen bool) error {
	if n <= 0 {
		return nil
	}
	if err := ValidName(name); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	query, args := `UPDATE users SET used = CASE WHEN used > ? THEN used - ? ELSE 0 END WHERE name = ?`, []any{n, n, name}
	if ifGen {
		query += ` AND COALESCE((SELECT gen FROM ledger WHERE name = ?), '') = ?`
		args = append(args, name, gen)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("release %s: %w (%w)", name, err, ErrNotWritten) // nothing ran
	}
	defer conn.Close()
	res, err := conn.ExecContext(context.Background(), query, args...)
	if err == nil {
		err = oneRow(res, ErrNotFound)
	} else if notWritten(err) {
		err = fmt.Errorf("%w (%w)", err, ErrNotWritten)
	}
	if err != nil {
		return fmt.Errorf("release %s: %w", name, err)
	}
	return nil
}

// notWritten reports whether a statement that failed with err (not
// interrupted: see Release) certainly left the database as it was: in WAL
// mode SQLite reports these before it commits anything. (An I/O error or
// running out of memory may come after the commit's frames are written.)
func notWritten(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN:
		return true
	}
	return false
}

// Delete removes user name. The error wraps ErrNotFound for an unknown user.
// It does not touch the user's files. A user added again later has another
// ledger generation.
func (s *Store) Delete(ctx context.Context, name string) error {
	return s.newGeneration(ctx, "delete user", name, `DELETE FROM users WHERE name = ?`, name)
}

// update runs a single-statement write on one user's row. A single
// statement needs no explicit transaction and waits on busy_timeout for
// the write lock.
func (s *Store) update(ctx context.Context, op, name, query string, args ...any) error {
	if err := ValidName(name); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	st, err := s.stmt(ctx, query)
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, name, err)
	}
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, name, err)
	}
	if err := oneRow(res, ErrNotFound); err != nil {
		return fmt.Errorf("%s %s: %w", op, name, err)
	}
	return nil
}

// oneRow returns none if the statement affected no row.
func oneRow(res sql.Result, none error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return none
	}
	return nil
}

// Get returns user name. The error wraps ErrNotFound for an unknown user.
func (s *Store) Get(ctx context.Context, name string) (User, error) {
	if err := ValidName(name); err != nil {
		return User{}, fmt.Errorf("get user: %w", err)
	}
	u, _, err := s.lookup(ctx, name)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("get user %s: %w", name, err)
	}
	return u, nil
}

// lookup reads one user and its encoded hash; sql.ErrNoRows if absent.
func (s *Store) lookup(ctx context.Context, name string) (User, string, error) {
	var (
		u       User
		hash    string
		created int64
	)
	st, err := s.stmt(ctx, `SELECT name, password_hash, quota, used, rate, max_conns, created FROM users WHERE name = ?`)
	if err != nil {
		return User{}, "", err
	}
	err = st.QueryRowContext(ctx, name).Scan(&u.Name, &hash, &u.Quota, &u.Used, &u.Rate, &u.MaxConns, &created)
	if err != nil {
		return User{}, "", err
	}
	u.Created = time.Unix(created, 0).UTC()
	u.Credential = credentialOf(hash)
	return u, hash, nil
}

// List returns all users sorted by name (byte order), or an empty, non-nil
// slice if there are none.
func (s *Store) List(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT name, password_hash, quota, used, rate, max_conns, created FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	users := []User{}
	for rows.Next() {
		var (
			u       User
			hash    string
			created int64
		)
		if err := rows.Scan(&u.Name, &hash, &u.Quota, &u.Used, &u.Rate, &u.MaxConns, &created); err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		u.Created = time.Unix(created, 0).UTC()
		u.Credential = credentialOf(hash)
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// Count returns the number of users.
func (s *Store) Count(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// CheckPassword applies the rules for new passwords. The error never
// contains the password.
func CheckPassword(password string) error {
	switch {
	case password == "":
		return fmt.Errorf("%w: empty", ErrInvalidPassword)
	case len(password) > MaxPasswordLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidPassword, MaxPasswordLen)
	}
	return nil
}
