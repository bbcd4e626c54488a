package api

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

// eventFilter reads the query of GET /api/v1/events.
func eventFilter(c *gin.Context) (inventory.EventFilter, error) {
	f := inventory.EventFilter{Limit: metalapi.DefaultEventLimit}
	for _, p := range []struct {
		name string
		to   *int64
	}{{"since", &f.Since}, {"before", &f.Before}} {
		v := c.Query(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return f, fmt.Errorf("%w: %s %q: want an event id (a non-negative integer)", errBadRequest, p.name, v)
		}
		*p.to = n
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return f, fmt.Errorf("%w: limit %q: want a positive integer (at most %d)", errBadRequest, v, metalapi.MaxEventLimit)
		}
		f.Limit = min(n, metalapi.MaxEventLimit)
	}
	switch o := c.Query("order"); o {
	case "", metalapi.OrderOldest:
	case metalapi.OrderNewest:
		f.Newest = true
	default:
		return f, fmt.Errorf("%w: order %q: want oldest or newest", errBadRequest, o)
	}
	f.Machine = c.Query("machine")
	f.Type = c.Query("type")
	return f, nil
}

// pageOf cuts the events read with a limit one above f's (the probe)
// to f's page, and reports whether more events follow in the page order.
func pageOf(f inventory.EventFilter, evs []inventory.Event) ([]inventory.Event, bool) {
	if len(evs) <= f.Limit {
		return evs, false
	}
	if f.Newest { // read from the end: the extra event is the oldest
		return evs[len(evs)-f.Limit:], true
	}
	return evs[:f.Limit], true
}

// setNextLink tells the client where the next page is when there is
// one: a Link header (RFC 8288) with rel="next", paging forward from the
// last event (order=oldest) or backward from the first (order=newest).
func setNextLink(c *gin.Context, f inventory.EventFilter, evs []inventory.Event) {
	if len(evs) == 0 {
		return
	}
	q := url.Values{}
	for k, v := range c.Request.URL.Query() {
		q[k] = v
	}
	q.Set("limit", strconv.Itoa(f.Limit))
	if f.Newest {
		q.Set("before", strconv.FormatInt(evs[0].ID, 10))
	} else {
		q.Set("since", strconv.FormatInt(evs[len(evs)-1].ID, 10))
	}
	q.Del("wait")
	next := url.URL{Path: c.Request.URL.Path, RawQuery: q.Encode()}
	c.Header("Link", metalapi.NextLink(next.String()))
}
