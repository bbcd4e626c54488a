package inventory

import (
	"context"
	"fmt"
	"time"
)

// Event retention, shared by both stores: the oldest events go first, in
// batches of pruneBatch rows, each deleted in its own short transaction
// so that a prune of a million rows never holds the write lock for long.

// pruneBatch is the most events one prune transaction deletes (a
// variable for the tests).
var pruneBatch = 1000

// eventAge is one event's id and time, oldest first.
type eventAge struct {
	id   int64
	time time.Time
}

// eventPruner is the SQL a store contributes to pruneEvents.
type eventPruner interface {
	// countEvents returns how many events are kept.
	countEvents(ctx context.Context) (int64, error)
	// oldestEvents returns the ids and times of the n oldest events.
	oldestEvents(ctx context.Context, n int) ([]eventAge, error)
	// deleteEventsThrough deletes every event with an id up to id, in
	// one transaction, and returns how many it deleted.
	deleteEventsThrough(ctx context.Context, id int64) (int64, error)
}

// pruneEvents deletes, oldest first, the events older than before (zero:
// no age limit) and those beyond the newest keepRows (0: no row limit).
// It stops at the first event that is neither, so an event whose time is
// out of order (a clock step) is kept with all that follow it. It
// returns how many events it deleted, also when ctx ends it early.
func pruneEvents(ctx context.Context, p eventPruner, before time.Time, keepRows int) (int64, error) {
	if keepRows < 0 {
		return 0, fmt.Errorf("%w: keep rows %d must not be negative", ErrInvalid, keepRows)
	}
	var excess int64
	if keepRows > 0 {
		n, err := p.countEvents(ctx)
		if err != nil {
			return 0, fmt.Errorf("prune events: count: %w", err)
		}
		excess = max(n-int64(keepRows), 0)
	}
	if before.IsZero() && excess == 0 {
		return 0, nil
	}
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		oldest, err := p.oldestEvents(ctx, pruneBatch)
		if err != nil {
			return total, fmt.Errorf("prune events: %w", err)
		}
		n := 0
		for n < len(oldest) && (int64(n) < excess || oldest[n].time.Before(before)) {
			n++
		}
		if n == 0 {
			return total, nil
		}
		deleted, err := p.deleteEventsThrough(ctx, oldest[n-1].id)
		total += deleted
		if err != nil {
			return total, fmt.Errorf("prune events: %w", err)
		}
		excess -= int64(n)
		if n < len(oldest) {
			return total, nil // the rest of the batch is kept, and all after it
		}
	}
}

// PruneEvents deletes the events older than before (zero: no age limit)
// and all but the newest keepRows (0: no row limit), oldest first, in
// short transactions of at most 1000 rows. It returns how many it
// deleted. Several metalds sharing a PostgreSQL database may prune at
// once.
func (s *sqlStore) PruneEvents(ctx context.Context, before time.Time, keepRows int) (int64, error) {
	return pruneEvents(ctx, s, before, keepRows)
}

func (s *sqlStore) countEvents(ctx context.Context) (int64, error) {
	var n int64
	err := s.queryRow(ctx, `SELECT COUNT(*) FROM events`).Scan(&n)
	return n, err
}

func (s *sqlStore) oldestEvents(ctx context.Context, n int) ([]eventAge, error) {
	return queryAll(ctx, s, `SELECT id, time FROM events ORDER BY id LIMIT ?`, scanEventAge, n)
}

func (s *sqlStore) deleteEventsThrough(ctx context.Context, id int64) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx sqlTx) error {
		var err error
		n, err = affected(tx.exec(ctx, `DELETE FROM events WHERE id <= ?`, id))
		return err
	})
	return n, err
}

func scanEventAge(r scanner) (eventAge, error) {
	var e eventAge
	var ns int64
	if err := r.Scan(&e.id, &ns); err != nil {
		return eventAge{}, err
	}
	e.time = time.Unix(0, ns)
	return e, nil
}
