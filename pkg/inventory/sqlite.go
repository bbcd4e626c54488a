package inventory

import (
	"context"
	"database/sql"
	"embed"
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

// SQLite is the default Store: one SQLite database in WAL mode, under the
// SQL store core (sqlstore.go) with sqliteDialect.
type SQLite struct {
	sqlStore
}

var (
	_ Store    = (*SQLite)(nil)
	_ JobStore = (*SQLite)(nil)
)

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
	s := &SQLite{sqlStore{db: db, d: sqliteDialect{}, sealer: sealer, now: time.Now}}
	if err := s.init(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// DB exposes the handle for tests and tools in this module.
func (s *SQLite) DB() *sql.DB { return s.db }

// sqliteMigrations is SQLite's schema: NNNN_x.sql is schema version
// NNNN.
var sqliteMigrations = migrationSet{migrationFS, "migrations"}

// SchemaVersion is the schema version this build writes.
func SchemaVersion() int { return sqliteMigrations.version() }

// sqliteDialect is SQLite's side of the core: ? placeholders, one writer
// at a time (every write transaction is BEGIN IMMEDIATE, so no row
// locks), event ids from AUTOINCREMENT in commit order.
type sqliteDialect struct{ questionMarks }

// unique reports a UNIQUE constraint failure with the columns it names
// ("machines.name").
func (sqliteDialect) unique(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	_, cols, ok := strings.Cut(err.Error(), "UNIQUE constraint failed: ")
	cols, _, _ = strings.Cut(cols, " (") // the driver's "(2067)"
	return cols, ok
}

func (sqliteDialect) forUpdate() string { return "" }

func (sqliteDialect) beforeEvent(context.Context, *sql.Tx) error { return nil }

func (sqliteDialect) afterEvent(context.Context, *sql.Tx, int64) error { return nil }

// migrate applies each missing migration in a transaction of its own that
// also sets PRAGMA user_version.
func (sqliteDialect) migrate(ctx context.Context, db *sql.DB) error {
	var have int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&have); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	return sqliteMigrations.run(have, func(version int, body string) error {
		return runTx(ctx, db, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, body); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, version))
			return err
		})
	})
}
