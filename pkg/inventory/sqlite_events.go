package inventory

import (
	"context"
	"strings"
)

// AppendEvent records an event.
func (s *SQLite) AppendEvent(ctx context.Context, e Event) (Event, error) {
	return appendEvent(ctx, s, s.now, e)
}

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
