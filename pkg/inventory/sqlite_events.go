package inventory

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// AppendEvent records an event.
func (s *SQLite) AppendEvent(ctx context.Context, e Event) (Event, error) {
	return appendEvent(ctx, s, s.now, e)
}

func appendEventTx(ctx context.Context, tx *sql.Tx, e Event) (int64, error) {
	e = boundEvent(e)
	data, err := encodeEventData(e.Data)
	if err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO events (time, machine, mac, type, message, data) VALUES (?,?,?,?,?,?)`,
		e.Time.UnixNano(), e.Machine, e.MAC, e.Type, e.Message, data)
	if err != nil {
		return 0, fmt.Errorf("append event: %w", err)
	}
	return res.LastInsertId()
}

// notify wakes WaitEvents callers once a transaction holding event id has
// committed.
func (s *SQLite) notify(id int64) { s.ev.notify(id) }

// WaitEvents blocks until an event newer than since exists.
func (s *SQLite) WaitEvents(ctx context.Context, since int64) error {
	return s.ev.wait(ctx, since)
}

// ListEvents returns the events f selects, oldest first.
func (s *SQLite) ListEvents(ctx context.Context, f EventFilter) ([]Event, error) {
	where := []string{"id > ?"}
	args := []any{f.Since}
	if f.Before > 0 {
		where = append(where, "id < ?")
		args = append(args, f.Before)
	}
	if f.Machine != "" {
		where = append(where, "machine = ?")
		args = append(args, f.Machine)
	}
	if f.Type != "" {
		where = append(where, "(type = ? OR type LIKE ?)")
		args = append(args, f.Type, f.Type+".%")
	}
	limit := eventLimit(f.Limit)
	rows, err := s.db.QueryContext(ctx, `SELECT `+eventCols+` FROM events WHERE `+
		strings.Join(where, " AND ")+` ORDER BY id `+eventOrder(f)+` LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return oldestFirst(f, rows)
}
