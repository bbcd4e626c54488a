package inventory

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DBFile is the SQLite database's name inside the data dir.
const DBFile = "metald.db"

// SQLite is the default Store: one SQLite database in WAL mode.
type SQLite struct {
	db     *sql.DB
	sealer *Sealer
	now    func() time.Time

	ev *waker
}

var _ Store = (*SQLite)(nil)

// OpenSQLite opens (creating if needed) the inventory in dataDir: the
// database metald.db and the sealing key secret.key. It refuses a data dir
// it cannot write and a database whose schema is newer than this build.
func OpenSQLite(ctx context.Context, dataDir string) (*SQLite, error) {
	if err := checkWritableDir(dataDir); err != nil {
		return nil, err
	}
	sealer, err := LoadOrCreateKey(filepath.Join(dataDir, KeyFile))
	if err != nil {
		return nil, err
	}
	if err := privateDBFiles(dataDir); err != nil {
		return nil, err
	}
	dsn := "file:" + filepath.Join(dataDir, DBFile) +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db.SetMaxOpenConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &SQLite{db: db, sealer: sealer, now: time.Now}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	var last int64
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id),0) FROM events`).Scan(&last); err != nil {
		db.Close()
		return nil, fmt.Errorf("read events: %w", err)
	}
	s.ev = newWaker(last)
	return s, nil
}

// migrations returns the embedded migrations in order; file NNNN_x.sql is
// schema version NNNN.
func migrations() ([]string, error) { return migrationNames(migrationFS, "migrations") }

// SchemaVersion is the schema version this build writes.
func SchemaVersion() int {
	names, _ := migrations()
	return len(names)
}

func (s *SQLite) migrate(ctx context.Context) error {
	names, err := migrations()
	if err != nil {
		return err
	}
	var have int
	if err := s.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&have); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	// One transaction per migration, each setting its version.
	return runMigrations(migrationFS, "migrations", names, have, func(version int, body string) error {
		return s.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, body); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, version))
			return err
		})
	})
}

// tx runs fn in a write transaction (BEGIN IMMEDIATE).
func (s *SQLite) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// write implements txRunner.
func (s *SQLite) write(ctx context.Context, fn func(storeTx) (int64, error)) error {
	var evID int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		evID, err = fn(sqliteTx{tx})
		return err
	})
	if err != nil {
		return err
	}
	s.notify(evID)
	return nil
}

// Close closes the database.
func (s *SQLite) Close() error {
	return s.db.Close()
}

// DB exposes the handle for tests and tools in this module.
func (s *SQLite) DB() *sql.DB { return s.db }

// isUnique reports whether err is a SQLite UNIQUE constraint failure.
func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

func scanErr(err error, what, name string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return notFound(what, name)
	}
	return err
}
