package userdb

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migrations holds the schema, one entry per version: migrations[0] takes an
// empty database to version 1, and so on. Append only; never edit an entry
// that has shipped. Each entry is a list of single statements so that a
// driver without multi-statement Exec can run them too.
//
// The schema is kept to portable SQL (TEXT, BIGINT, INTEGER, CHECK, no
// AUTOINCREMENT, no STRICT/WITHOUT ROWID) so that PostgreSQL could hold the
// same tables. The table is "users", not "user", which PostgreSQL reserves.
var migrations = [][]string{
	// 1: initial schema. created is Unix seconds (UTC); quota, used and rate
	// are bytes and bytes per second, 0 meaning unlimited for quota and rate.
	{`CREATE TABLE users (
		name          TEXT   NOT NULL PRIMARY KEY,
		password_hash TEXT   NOT NULL,
		quota         BIGINT NOT NULL DEFAULT 0 CHECK (quota >= 0),
		used          BIGINT NOT NULL DEFAULT 0 CHECK (used >= 0),
		rate          BIGINT NOT NULL DEFAULT 0 CHECK (rate >= 0),
		created       BIGINT NOT NULL
	)`},
	// 2: server-wide settings, such as the default quota for new users.
	{`CREATE TABLE settings (
		name  TEXT NOT NULL PRIMARY KEY,
		value TEXT NOT NULL
	)`},
	// 3: a per-user cap on the connections of one session (0 = the
	// server's limit).
	{`ALTER TABLE users ADD COLUMN max_conns INTEGER NOT NULL DEFAULT 0 CHECK (max_conns >= 0)`},
	// 4: each user's ledger generation (see Store.LedgerGen). A new
	// version, so that older binaries, which would not renew it when they
	// measure a home, refuse the file.
	{`CREATE TABLE ledger (
		name TEXT NOT NULL PRIMARY KEY,
		gen  TEXT NOT NULL
	)`},
}

// migrate brings db to the newest schema version. It runs in one write
// transaction (BEGIN IMMEDIATE via the DSN's _txlock), so two processes
// opening a fresh file at once serialize: the second waits on busy_timeout
// and then finds the schema current.
func migrate(ctx context.Context, db *sql.DB) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // the original error is the one worth reporting
		}
	}()

	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version INTEGER NOT NULL PRIMARY KEY,
		applied BIGINT  NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(migrations) {
		// An older binary (say, the CLI) must not write to a database that a
		// newer one (the server) has migrated.
		return fmt.Errorf("schema version %d is newer than this program supports (%d)", current, len(migrations))
	}
	now := time.Now().Unix()
	for v := current + 1; v <= len(migrations); v++ {
		for _, stmt := range migrations[v-1] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migrate to version %d: %w", v, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, applied) VALUES (?, ?)`, v, now); err != nil {
			return fmt.Errorf("migrate to version %d: %w", v, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
