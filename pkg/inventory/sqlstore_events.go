package inventory

import (
	"context"
	"fmt"
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
