package inventory

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
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
func migrations() ([]string, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for i, n := range names {
		if want := fmt.Sprintf("%04d_", i+1); !strings.HasPrefix(n, want) {
			return nil, fmt.Errorf("migration %s out of sequence (want prefix %s)", n, want)
		}
	}
	return names, nil
}

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
	if have > len(names) {
		return fmt.Errorf("%w: database schema version %d, this metald knows up to %d: upgrade metald or restore a backup", ErrSchemaTooNew, have, len(names))
	}
	for i := have; i < len(names); i++ {
		body, err := migrationFS.ReadFile("migrations/" + names[i])
		if err != nil {
			return err
		}
		err = s.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, i+1))
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", names[i], err)
		}
	}
	return nil
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
