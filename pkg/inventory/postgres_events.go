package inventory

import (
	"context"
	"fmt"
	"strings"
)

// AppendEvent records an event.
func (s *Postgres) AppendEvent(ctx context.Context, e Event) (Event, error) {
	return appendEvent(ctx, s, s.now, e)
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
