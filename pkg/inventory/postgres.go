package inventory

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

//go:embed migrations_pg/*.sql
var pgMigrationFS embed.FS

// Advisory lock keys (pg_advisory_xact_lock) shared by every metald on a
// database.
const (
	pgLockMigrate = 0x6d6574616c01 // "metal" 1: schema migrations
	pgLockEvents  = 0x6d6574616c02 // "metal" 2: event ids in commit order
)

// Postgres is the Store for sites where several metalds share one
// PostgreSQL database. Semantics are those of SQLite (the same SQL store
// core, with pgDialect); see docs/postgres.md.
type Postgres struct {
	sqlStore
	pool *pgxpool.Pool // under db (pgx's stdlib adapter)

	listenCfg *pgx.ConnConfig
	relisten  atomic.Int64 // listener connections dropped and reopened
	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

var (
	_ Store    = (*Postgres)(nil)
	_ JobStore = (*Postgres)(nil)
)

// IsPostgresURL reports whether s selects the PostgreSQL store.
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// OpenPostgres connects to the database at url (postgres://…), migrates
// its schema, and starts the listener that wakes WaitEvents on events any
// metald appends. The sealing key still lives in dataDir, which must be
// writable; every metald sharing the database needs the same key.
//
// No error it returns shows the URL's passwords (user info or the
// password query parameter), whatever pgx put in it.
func OpenPostgres(ctx context.Context, url string, dataDir string) (*Postgres, error) {
	s, err := openPostgres(ctx, url, dataDir)
	if err != nil {
		return nil, redactError(err, url)
	}
	return s, nil
}

func openPostgres(ctx context.Context, url string, dataDir string) (*Postgres, error) {
	if !IsPostgresURL(url) {
		return nil, fmt.Errorf("%w: database URL %s: want postgres://…", ErrInvalid, RedactURL(url))
	}
	if err := checkWritableDir(dataDir); err != nil {
		return nil, err
	}
	sealer, err := LoadOrCreateKey(filepath.Join(dataDir, KeyFile))
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%w: database URL %s: %v", ErrInvalid, RedactURL(url), redactErr(err, url))
	}
	if !strings.Contains(url, "pool_max_conns=") {
		cfg.MaxConns = 8 // as SQLite's pool; the URL's pool_max_conns wins
	}
	cfg.MaxConnIdleTime = 5 * time.Minute
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", RedactURL(url), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to %s: %w", RedactURL(url), err)
	}
	// database/sql takes its connections from the pool and gives them
	// back after each statement or transaction.
	db := stdlib.OpenDBFromPool(pool)
	s := &Postgres{
		sqlStore:  sqlStore{db: db, d: pgDialect{}, sealer: sealer, now: time.Now},
		pool:      pool,
		listenCfg: cfg.ConnConfig.Copy(),
		done:      make(chan struct{}),
	}
	if err := s.init(ctx); err != nil {
		db.Close()
		pool.Close()
		return nil, err
	}
	// The listener connects before Open returns so that no event committed
	// after Open is missed by WaitEvents.
	conn, err := s.listen(ctx)
	if err != nil {
		db.Close()
		pool.Close()
		return nil, err
	}
	lctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go s.listener(lctx, conn)
	return s, nil
}

// Close stops the listener and closes the database and its pool.
func (s *Postgres) Close() error {
	s.closeOnce.Do(func() {
		s.stop()
		<-s.done
		s.db.Close()
		s.pool.Close()
	})
	return nil
}

// Pool exposes the connection pool for tests and tools in this module.
func (s *Postgres) Pool() *pgxpool.Pool { return s.pool }

// pgMigrations is PostgreSQL's schema: NNNN_x.sql is schema version
// NNNN.
var pgMigrations = migrationSet{pgMigrationFS, "migrations_pg"}

// PostgresSchemaVersion is the PostgreSQL schema version this build writes.
func PostgresSchemaVersion() int { return pgMigrations.version() }

// pgDialect is PostgreSQL's side of the core: $n placeholders, row locks
// (SELECT … FOR UPDATE) so that several metalds can share the database,
// and events in commit order, each announced with NOTIFY.
type pgDialect struct{ dollarNumbers }

// unique reports a unique violation (23505) and names its constraint.
func (pgDialect) unique(err error) (string, bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return pe.ConstraintName, true
	}
	return "", false
}

func (pgDialect) forUpdate() string { return " FOR UPDATE" }

// beforeEvent takes a transaction-scoped advisory lock so that event ids
// are assigned in commit order: a follower that has seen id N never later
// finds a smaller id appear. Every caller appends its events last in its
// transaction, so the lock is held only to commit and never taken before
// a row lock (no lock-order deadlock).
func (pgDialect) beforeEvent(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(pgLockEvents))
	return err
}

// afterEvent notifies every listening metald when the transaction
// commits.
func (pgDialect) afterEvent(ctx context.Context, tx *sql.Tx, id int64) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, pgEventsChannel, strconv.FormatInt(id, 10))
	return err
}

// migrate brings the schema up to date in one transaction, under an
// advisory lock so that metalds starting together migrate once.
func (pgDialect) migrate(ctx context.Context, db *sql.DB) error {
	return runTx(ctx, db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(pgLockMigrate)); err != nil {
			return fmt.Errorf("lock schema: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_version: %w", err)
		}
		var have int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&have); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		// Every missing migration in this one transaction.
		if err := pgMigrations.run(have, func(_ int, body string) error {
			_, err := tx.ExecContext(ctx, body)
			return err
		}); err != nil {
			return err
		}
		if want := pgMigrations.version(); have < want {
			if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, want); err != nil {
				return err
			}
		}
		return nil
	})
}
