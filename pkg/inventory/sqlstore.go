package inventory

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// sqlStore is the one store core: every Store and JobStore method over
// database/sql, written once with ? placeholders. SQLite and Postgres
// embed it and differ only in how they open the database and in their
// dialect (placeholders, unique violations, row locks, what an event
// insert also does, migrations).
type sqlStore struct {
	db     *sql.DB
	d      dialect
	sealer *Sealer
	now    func() time.Time
	ev     *waker
}

var (
	_ Store    = (*sqlStore)(nil)
	_ JobStore = (*sqlStore)(nil)
)

// init migrates the schema and learns the newest event id, the start of
// WaitEvents.
func (s *sqlStore) init(ctx context.Context) error {
	if err := s.d.migrate(ctx, s.db); err != nil {
		return err
	}
	last, err := s.maxEventID(ctx)
	if err != nil {
		return err
	}
	s.ev = newWaker(last)
	return nil
}

// query, queryRow and exec run one statement outside a transaction.
func (s *sqlStore) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return s.db.QueryContext(ctx, s.d.rebind(q), args...)
}

func (s *sqlStore) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return s.db.QueryRowContext(ctx, s.d.rebind(q), args...)
}

func (s *sqlStore) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return s.db.ExecContext(ctx, s.d.rebind(q), args...)
}

// tx runs fn in a write transaction: BEGIN IMMEDIATE on SQLite, READ
// COMMITTED on PostgreSQL, where row locks (dialect.forUpdate) serialise
// changes to one machine.
func (s *sqlStore) tx(ctx context.Context, fn func(sqlTx) error) error {
	return runTx(ctx, s.db, func(tx *sql.Tx) error { return fn(sqlTx{tx: tx, d: s.d}) })
}

// write implements txRunner.
func (s *sqlStore) write(ctx context.Context, fn func(storeTx) (int64, error)) error {
	var evID int64
	err := s.tx(ctx, func(tx sqlTx) error {
		var err error
		evID, err = fn(tx)
		return err
	})
	if err != nil {
		return err
	}
	s.ev.notify(evID)
	return nil
}

// Close closes the database.
func (s *sqlStore) Close() error { return s.db.Close() }

// sqlTx is one open transaction of the core: storeTx in the core's SQL.
type sqlTx struct {
	tx *sql.Tx
	d  dialect
}

func (w sqlTx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return w.tx.QueryRowContext(ctx, w.d.rebind(q), args...)
}

func (w sqlTx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return w.tx.ExecContext(ctx, w.d.rebind(q), args...)
}

// insertID runs an INSERT … RETURNING id and returns the id.
func (w sqlTx) insertID(ctx context.Context, q string, args ...any) (int64, error) {
	var id int64
	err := w.queryRow(ctx, q+` RETURNING id`, args...).Scan(&id)
	return id, err
}

// affected returns the rows a statement changed.
func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func noRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

func scanErr(err error, what, name string) error {
	if noRows(err) {
		return notFound(what, name)
	}
	return err
}
