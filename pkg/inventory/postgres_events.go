package inventory

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// AppendEvent records an event.
func (s *Postgres) AppendEvent(ctx context.Context, e Event) (Event, error) {
	return appendEvent(ctx, s, s.now, e)
}

// pgAppendEventTx inserts an event and notifies every listening metald
// when the transaction commits. It takes a transaction-scoped advisory
// lock first so that event ids are assigned in commit order: a follower
// that has seen id N never later finds a smaller id appear. Every caller
// appends its events last in its transaction, so the lock is held only
// to commit and never taken before a row lock (no lock-order deadlock).
func pgAppendEventTx(ctx context.Context, tx pgx.Tx, e Event) (int64, error) {
	e = boundEvent(e)
	data, err := encodeEventData(e.Data)
	if err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(pgLockEvents)); err != nil {
		return 0, fmt.Errorf("append event: lock: %w", err)
	}
	var id int64
	err = tx.QueryRow(ctx, `INSERT INTO events (time, machine, mac, type, message, data) VALUES ($1,$2,$3,$4,$5,$6) RETURNING id`,
		e.Time.UnixNano(), e.Machine, e.MAC, e.Type, e.Message, data).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("append event: %w", err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, pgEventsChannel, strconv.FormatInt(id, 10)); err != nil {
		return 0, fmt.Errorf("append event: notify: %w", err)
	}
	return id, nil
}

// WaitEvents blocks until an event newer than since exists, whichever
// metald appended it.
func (s *Postgres) WaitEvents(ctx context.Context, since int64) error {
	return s.ev.wait(ctx, since)
}

// ListEvents returns the events f selects, oldest first.
func (s *Postgres) ListEvents(ctx context.Context, f EventFilter) ([]Event, error) {
	args := []any{f.Since}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	where := []string{"id > $1"}
	if f.Before > 0 {
		where = append(where, "id < "+arg(f.Before))
	}
	if f.Machine != "" {
		where = append(where, "machine = "+arg(f.Machine))
	}
	if f.Type != "" {
		where = append(where, "(type = "+arg(f.Type)+" OR type LIKE "+arg(likeEscape(f.Type)+".%")+")")
	}
	lim := arg(eventLimit(f.Limit))
	rows, err := s.pool.Query(ctx, `SELECT `+eventCols+` FROM events WHERE `+
		strings.Join(where, " AND ")+` ORDER BY id `+eventOrder(f)+` LIMIT `+lim, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return oldestFirst(f, rows)
}

// likeEscape escapes LIKE's backslash escape character, which PostgreSQL
// has by default and SQLite does not; % and _ stay wildcards as in SQLite.
func likeEscape(s string) string {
	return strings.ReplaceAll(s, `\`, `\\`)
}
