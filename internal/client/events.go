package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/metal-iaas/metal/pkg/metalapi"
)

// metald answers GET /api/v1/events one page at a time (at most
// metalapi.MaxEventLimit events, metalapi.DefaultEventLimit by default):
// EventPage reads one, ListEvents as many as asked for, FollowEvents
// streams.

// Events returns one page of events, oldest first (long-polling when
// q.Wait is set).
func (c *Client) Events(ctx context.Context, q metalapi.EventQuery) ([]metalapi.Event, error) {
	evs, _, err := c.EventPage(ctx, q)
	return evs, err
}

// EventPage returns one page of events, oldest first, and the query of
// the next page in q's direction, or nil when this page is the last.
func (c *Client) EventPage(ctx context.Context, q metalapi.EventQuery) ([]metalapi.Event, *metalapi.EventQuery, error) {
	const path = metalapi.PathEvents
	resp, err := c.send(ctx, http.MethodGet, path, q.Values(), nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	var evs []metalapi.Event
	if err := json.NewDecoder(resp.Body).Decode(&evs); err != nil {
		return nil, nil, fmt.Errorf("GET %s: decode answer: %w", path, err)
	}
	next, err := metalapi.NextEventQuery(q, resp.Header.Get("Link"))
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", path, err)
	}
	return evs, next, nil
}

// maxPages bounds ListEvents against a metald that never ends its pages.
const maxPages = 1 << 20

// ListEvents reads pages until maxEvents events (0: all of them) or the last
// page, and returns them oldest first. With q.Newest they are the latest
// maxEvents events.
func (c *Client) ListEvents(ctx context.Context, q metalapi.EventQuery, maxEvents int) ([]metalapi.Event, error) {
	q.Wait = 0
	if q.Limit <= 0 {
		q.Limit = metalapi.MaxEventLimit
	}
	var pages [][]metalapi.Event
	n := 0
	for range maxPages {
		if maxEvents > 0 {
			q.Limit = min(maxEvents-n, metalapi.MaxEventLimit)
		}
		evs, next, err := c.EventPage(ctx, q)
		if err != nil {
			return nil, err
		}
		pages = append(pages, evs)
		n += len(evs)
		if next == nil || len(evs) == 0 || (maxEvents > 0 && n >= maxEvents) {
			break
		}
		q = *next
	}
	out := make([]metalapi.Event, 0, n)
	for i := range pages {
		if q.Newest { // pages came newest first
			out = append(out, pages[len(pages)-1-i]...)
		} else {
			out = append(out, pages[i]...)
		}
	}
	return out, nil
}

// FollowEvents streams events to fn until ctx ends or the stream breaks.
func (c *Client) FollowEvents(ctx context.Context, q metalapi.EventQuery, fn func(metalapi.Event) error) error {
	v := q.Values()
	v.Set("follow", "true")
	resp, err := c.send(ctx, http.MethodGet, metalapi.PathEvents, v, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue // heartbeat
		}
		var e metalapi.Event
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("event stream: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	return errors.New("event stream closed by metald")
}
