package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/metal-iaas/metal/pkg/inventory"
)

// EventQuery selects events. metald answers one page at a time (at most
// 1000 events, 100 by default); EventPage reads one, ListEvents as many
// as asked for.
type EventQuery struct {
	Since   int64
	Before  int64
	Machine string
	Type    string
	// Limit is the page size (0: metald's default).
	Limit int
	// Newest reads the page nearest Before (or the latest events) and
	// pages backward; otherwise pages go forward from Since.
	Newest bool
	Wait   time.Duration
}

func (q EventQuery) values() url.Values {
	v := url.Values{}
	if q.Since > 0 {
		v.Set("since", strconv.FormatInt(q.Since, 10))
	}
	if q.Before > 0 {
		v.Set("before", strconv.FormatInt(q.Before, 10))
	}
	if q.Newest {
		v.Set("order", "newest")
	}
	if q.Machine != "" {
		v.Set("machine", q.Machine)
	}
	if q.Type != "" {
		v.Set("type", q.Type)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Wait > 0 {
		v.Set("wait", q.Wait.String())
	}
	return v
}

// Events returns one page of events, oldest first (long-polling when
// q.Wait is set).
func (c *Client) Events(ctx context.Context, q EventQuery) ([]inventory.Event, error) {
	evs, _, err := c.EventPage(ctx, q)
	return evs, err
}

// EventPage returns one page of events, oldest first, and the query of
// the next page in q's direction, or nil when this page is the last.
func (c *Client) EventPage(ctx context.Context, q EventQuery) ([]inventory.Event, *EventQuery, error) {
	const path = "/api/v1/events"
	resp, err := c.send(ctx, http.MethodGet, path, q.values(), nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	var evs []inventory.Event
	if err := json.NewDecoder(resp.Body).Decode(&evs); err != nil {
		return nil, nil, fmt.Errorf("GET %s: decode answer: %w", path, err)
	}
	next, err := nextPage(q, resp.Header.Get("Link"))
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
func (c *Client) ListEvents(ctx context.Context, q EventQuery, maxEvents int) ([]inventory.Event, error) {
	q.Wait = 0
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	var pages [][]inventory.Event
	n := 0
	for range maxPages {
		if maxEvents > 0 {
			q.Limit = min(maxEvents-n, 1000)
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
	out := make([]inventory.Event, 0, n)
	for i := range pages {
		if q.Newest { // pages came newest first
			out = append(out, pages[len(pages)-1-i]...)
		} else {
			out = append(out, pages[i]...)
		}
	}
	return out, nil
}

var nextLink = regexp.MustCompile(`<([^>]*)>\s*;\s*rel="?next"?`)

// nextPage turns the answer's Link header into the next page's query.
func nextPage(q EventQuery, link string) (*EventQuery, error) {
	m := nextLink.FindStringSubmatch(link)
	if m == nil {
		return nil, nil
	}
	u, err := url.Parse(m[1])
	if err != nil {
		return nil, fmt.Errorf("link %q: %w", link, err)
	}
	next := q
	for _, p := range []struct {
		name string
		to   *int64
	}{{"since", &next.Since}, {"before", &next.Before}} {
		if v := u.Query().Get(p.name); v != "" {
			if *p.to, err = strconv.ParseInt(v, 10, 64); err != nil {
				return nil, fmt.Errorf("link %q: %s: %w", link, p.name, err)
			}
		}
	}
	if next.Since == q.Since && next.Before == q.Before {
		return nil, fmt.Errorf("link %q does not move", link)
	}
	return &next, nil
}

// FollowEvents streams events to fn until ctx ends or the stream breaks.
func (c *Client) FollowEvents(ctx context.Context, q EventQuery, fn func(inventory.Event) error) error {
	v := q.values()
	v.Set("follow", "true")
	resp, err := c.send(ctx, http.MethodGet, "/api/v1/events", v, nil)
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
		var e inventory.Event
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
