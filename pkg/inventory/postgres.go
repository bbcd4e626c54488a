package inventory

import (
	"context"
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
)

//go:embed migrations_pg/*.sql
var pgMigrationFS embed.FS

// pgEventsChannel is the LISTEN/NOTIFY channel every event insert
// notifies, with the event id as payload.
const pgEventsChannel = "metal_events"

// Advisory lock keys (pg_advisory_xact_lock) shared by every metald on a
// database.
const (
	pgLockMigrate = 0x6d6574616c01 // "metal" 1: schema migrations
	pgLockEvents  = 0x6d6574616c02 // "metal" 2: event ids in commit order
)

// pgPollEvery is how often the listener checks for events it may have
// missed (a dropped connection, a lost notification).
var pgPollEvery = 2 * time.Second

// Postgres is the Store for sites where several metalds share one
// PostgreSQL database. Semantics are those of SQLite; see docs/postgres.md.
type Postgres struct {
	pool   *pgxpool.Pool
	sealer *Sealer
	now    func() time.Time
	ev     *waker

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
	s := &Postgres{pool: pool, sealer: sealer, now: time.Now, listenCfg: cfg.ConnConfig.Copy(), done: make(chan struct{})}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	last, err := s.maxEventID(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.ev = newWaker(last)
	// The listener connects before Open returns so that no event committed
	// after Open is missed by WaitEvents.
	conn, err := s.listen(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	lctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go s.listener(lctx, conn)
	return s, nil
}

// pgMigrations returns the embedded migrations in order; NNNN_x.sql is
// schema version NNNN.
func pgMigrations() ([]string, error) { return migrationNames(pgMigrationFS, "migrations_pg") }

// PostgresSchemaVersion is the PostgreSQL schema version this build writes.
func PostgresSchemaVersion() int {
	names, _ := pgMigrations()
	return len(names)
}

// migrate brings the schema up to date in one transaction, under an
// advisory lock so that metalds starting together migrate once.
func (s *Postgres) migrate(ctx context.Context) error {
	names, err := pgMigrations()
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(pgLockMigrate)); err != nil {
			return fmt.Errorf("lock schema: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_version: %w", err)
		}
		var have int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&have); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		// Every missing migration in this one transaction.
		if err := runMigrations(pgMigrationFS, "migrations_pg", names, have, func(_ int, body string) error {
			_, err := tx.Exec(ctx, body)
			return err
		}); err != nil {
			return err
		}
		if have < len(names) {
			if _, err := tx.Exec(ctx, `DELETE FROM schema_version`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, len(names)); err != nil {
				return err
			}
		}
		return nil
	})
}

// tx runs fn in a READ COMMITTED transaction; row locks (SELECT … FOR
// UPDATE) serialise changes to one machine.
func (s *Postgres) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback(context.Background())
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// write implements txRunner.
func (s *Postgres) write(ctx context.Context, fn func(storeTx) (int64, error)) error {
	var evID int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		evID, err = fn(pgTx{tx})
		return err
	})
	if err != nil {
		return err
	}
	s.ev.notify(evID)
	return nil
}

func (s *Postgres) maxEventID(ctx context.Context) (int64, error) {
	var last int64
	if err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(id),0) FROM events`).Scan(&last); err != nil {
		return 0, fmt.Errorf("read events: %w", err)
	}
	return last, nil
}

// listen opens the dedicated notification connection.
func (s *Postgres) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.listenCfg.Copy())
	if err != nil {
		return nil, fmt.Errorf("listen connection: %w", err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgEventsChannel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("listen %s: %w", pgEventsChannel, err)
	}
	return conn, nil
}

// listener wakes WaitEvents callers on every NOTIFY, and polls the
// newest event id every pgPollEvery in case a notification was missed
// (the connection dropped and is being re-established).
func (s *Postgres) listener(ctx context.Context, conn *pgx.Conn) {
	defer close(s.done)
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for ctx.Err() == nil {
		if conn == nil {
			c, err := s.listen(ctx)
			if err != nil {
				s.poll(ctx)
				select {
				case <-ctx.Done():
					return
				case <-time.After(pgPollEvery):
				}
				continue
			}
			conn = c
			s.poll(ctx) // catch up on what happened while disconnected
		}
		wctx, cancel := context.WithTimeout(ctx, pgPollEvery)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err == nil {
			if id, perr := strconv.ParseInt(n.Payload, 10, 64); perr == nil {
				s.ev.notify(id)
			} else {
				s.poll(ctx)
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if conn.IsClosed() || !errors.Is(err, context.DeadlineExceeded) && !pgconn.Timeout(err) {
			conn.Close(context.Background())
			conn = nil
			s.relisten.Add(1)
		}
		s.poll(ctx)
	}
}

func (s *Postgres) poll(ctx context.Context) {
	if last, err := s.maxEventID(ctx); err == nil {
		s.ev.notify(last)
	}
}

// Close stops the listener and closes the pool.
func (s *Postgres) Close() error {
	s.closeOnce.Do(func() {
		s.stop()
		<-s.done
		s.pool.Close()
	})
	return nil
}

// Pool exposes the connection pool for tests and tools in this module.
func (s *Postgres) Pool() *pgxpool.Pool { return s.pool }

// pgUnique reports whether err is a unique-constraint violation and names
// the constraint.
func pgUnique(err error) (string, bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return pe.ConstraintName, true
	}
	return "", false
}

func pgNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

func pgScanErr(err error, what, name string) error {
	if pgNoRows(err) {
		return notFound(what, name)
	}
	return err
}
