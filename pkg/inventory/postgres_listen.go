package inventory

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PostgreSQL's event waiters: one dedicated pgx connection per store
// LISTENs on pgEventsChannel, outside database/sql's pool, and wakes
// WaitEvents with the ids that pgDialect.afterEvent NOTIFYs.

// pgEventsChannel is the LISTEN/NOTIFY channel every event insert
// notifies, with the event id as payload.
const pgEventsChannel = "metal_events"

// pgPollEvery is how often the listener checks for events it may have
// missed (a dropped connection, a lost notification).
var pgPollEvery = 2 * time.Second

// listen opens the dedicated notification connection.
func (s *Postgres) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.listenCfg.Copy())
	if err != nil {
		return nil, fmt.Errorf("listen connection: %w", err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgEventsChannel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("listen %s: %w", pgEventsChannel, err)
	}
	return conn, nil
}

// listener wakes WaitEvents callers on every NOTIFY, and polls the
// newest event id every pgPollEvery in case a notification was missed
// (the connection dropped and is being re-established).
func (s *Postgres) listener(ctx context.Context, conn *pgx.Conn) {
	defer close(s.done)
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for ctx.Err() == nil {
		if conn == nil {
			c, err := s.listen(ctx)
			if err != nil {
				s.poll(ctx)
				select {
				case <-ctx.Done():
					return
				case <-time.After(pgPollEvery):
				}
				continue
			}
			conn = c
			s.poll(ctx) // catch up on what happened while disconnected
		}
		wctx, cancel := context.WithTimeout(ctx, pgPollEvery)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err == nil {
			if id, perr := strconv.ParseInt(n.Payload, 10, 64); perr == nil {
				s.ev.notify(id)
			} else {
				s.poll(ctx)
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if conn.IsClosed() || !errors.Is(err, context.DeadlineExceeded) && !pgconn.Timeout(err) {
			conn.Close(context.Background())
			conn = nil
			s.relisten.Add(1)
		}
		s.poll(ctx)
	}
}

func (s *Postgres) poll(ctx context.Context) {
	if last, err := s.maxEventID(ctx); err == nil {
		s.ev.notify(last)
	}
}
