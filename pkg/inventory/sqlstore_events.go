package inventory

import (
	"context"
	"fmt"
	"strings"
)

// appendEvent implements machineTx: the event, bounded, with what the
// dialect does around an event insert (PostgreSQL: ids in commit order
// and a NOTIFY to every metald).
func (w sqlTx) appendEvent(ctx context.Context, e Event) (int64, error) {
	e = boundEvent(e)
	data, err := encodeEventData(e.Data)
	if err != nil {
		return 0, err
	}
	if err := w.d.beforeEvent(ctx, w.tx); err != nil {
		return 0, fmt.Errorf("append event: lock: %w", err)
	}
	id, err := w.insertID(ctx, `INSERT INTO events (time, machine, mac, type, message, data) VALUES (?,?,?,?,?,?)`,
		e.Time.UnixNano(), e.Machine, e.MAC, e.Type, e.Message, data)
	if err != nil {
		return 0, fmt.Errorf("append event: %w", err)
	}
	if err := w.d.afterEvent(ctx, w.tx, id); err != nil {
		return 0, fmt.Errorf("append event: notify: %w", err)
	}
	return id, nil
}

// maxEventID returns the newest event's id, 0 without events.
func (s *sqlStore) maxEventID(ctx context.Context) (int64, error) {
	var last int64
	if err := s.queryRow(ctx, `SELECT COALESCE(MAX(id),0) FROM events`).Scan(&last); err != nil {
		return 0, fmt.Errorf("read events: %w", err)
	}
	return last, nil
}

// AppendEvent records an event.
func (s *sqlStore) AppendEvent(ctx context.Context, e Event) (Event, error) {
	return appendEvent(ctx, s, s.now, e)
}

// WaitEvents blocks until an event newer than since exists, whichever
// metald appended it (PostgreSQL's listener, postgres_listen.go, learns
// of other metalds' events).
func (s *sqlStore) WaitEvents(ctx context.Context, since int64) error {
	return s.ev.wait(ctx, since)
}

// ListEvents returns the events f selects, oldest first. A type filter
// matches the type and its dotted sub-types; in it, % and _ stay LIKE's
// wildcards and the backslash is escaped on both databases.
func (s *sqlStore) ListEvents(ctx context.Context, f EventFilter) ([]Event, error) {
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
		where = append(where, `(type = ? OR type LIKE ? ESCAPE '\')`)
		args = append(args, f.Type, likeEscape(f.Type)+".%")
	}
	rows, err := s.query(ctx, `SELECT `+eventCols+` FROM events WHERE `+
		strings.Join(where, " AND ")+` ORDER BY id `+eventOrder(f)+` LIMIT ?`, append(args, eventLimit(f.Limit))...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return oldestFirst(f, rows)
}

// likeEscape escapes the LIKE escape character the queries name (ESCAPE
// '\'); % and _ stay wildcards.
func likeEscape(s string) string {
	return strings.ReplaceAll(s, `\`, `\\`)
}
