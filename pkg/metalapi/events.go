package metalapi

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"time"
)

// Event is one thing that happened, in order, as GET /api/v1/events shows
// it (one JSON object per line with follow=true).
type Event struct {
	ID      int64          `json:"id" yaml:"id"`
	Time    time.Time      `json:"time" yaml:"time"`
	Machine string         `json:"machine,omitempty" yaml:"machine,omitempty"`
	MAC     string         `json:"mac,omitempty" yaml:"mac,omitempty"`
	Type    string         `json:"type" yaml:"type"`
	Message string         `json:"message,omitempty" yaml:"message,omitempty"`
	Data    map[string]any `json:"data,omitempty" yaml:"data,omitempty"`
}

// GET /api/v1/events answers one page at a time, oldest first, so that no
// request makes metald hold its whole event log in memory. When more
// events follow in the page order, the answer has a Link header (RFC 8288)
// with rel="next" whose target is the next page's request.
const (
	// DefaultEventLimit is the page size without limit.
	DefaultEventLimit = 100
	// MaxEventLimit is the largest page; a larger limit is read as this.
	MaxEventLimit = 1000
)

// Event page orders: which end of the selected window a page is read
// from.
const (
	// OrderOldest (the default) reads the page nearest since; the next
	// page follows it.
	OrderOldest = "oldest"
	// OrderNewest reads the page nearest before (or the latest events);
	// the next page precedes it.
	OrderNewest = "newest"
)

// EventQuery selects events: the query of GET /api/v1/events.
type EventQuery struct {
	// Since selects events after this id, Before events before it.
	Since  int64
	Before int64
	// Machine selects one machine's events; Type events of a type or its
	// prefix ("dhcp" matches dhcp.*).
	Machine string
	Type    string
	// Limit is the page size (0: DefaultEventLimit).
	Limit int
	// Newest reads the page nearest Before (or the latest events) and
	// pages backward (order=newest); otherwise pages go forward from
	// Since.
	Newest bool
	// Wait long-polls: if nothing is newer than Since, metald waits up to
	// this long for an event (since only, not with Before or Newest).
	Wait time.Duration
}

// Values encodes q as the query string of GET /api/v1/events. Following
// (follow=true, NDJSON until the client goes away) is added by the caller.
func (q EventQuery) Values() url.Values {
	v := url.Values{}
	if q.Since > 0 {
		v.Set("since", strconv.FormatInt(q.Since, 10))
	}
	if q.Before > 0 {
		v.Set("before", strconv.FormatInt(q.Before, 10))
	}
	if q.Newest {
		v.Set("order", OrderNewest)
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

// NextLink is the Link header value that points at the next page.
func NextLink(target string) string { return fmt.Sprintf(`<%s>; rel="next"`, target) }

var nextLinkRE = regexp.MustCompile(`<([^>]*)>\s*;\s*rel="?next"?`)

// NextEventQuery turns an answer's Link header into the query of the next
// page in q's direction: nil when there is no next page, an error when the
// link is malformed or does not move.
func NextEventQuery(q EventQuery, link string) (*EventQuery, error) {
	m := nextLinkRE.FindStringSubmatch(link)
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
