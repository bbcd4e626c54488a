package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

// maxWait bounds a long poll.
const maxWait = 5 * time.Minute

// heartbeat is how often a follow stream writes an empty line so idle
// connections stay open through proxies.
const heartbeat = 15 * time.Second

// listEvents serves GET /api/v1/events: one page of events, oldest
// first, with a Link rel="next" header when there may be more.
//
//	since=ID      only events after ID (default 0)
//	before=ID     only events before ID
//	order=O       oldest (default): the page nearest since, the next one
//	              after it; newest: the page nearest before (or the end),
//	              the next one before it
//	machine=N     only events of machine N
//	type=T        only events of type T or T.*
//	limit=N       at most N events (default 100, at most 1000)
//	wait=DUR      long poll: if nothing is newer than since, wait up to DUR
//	follow=true   stream events as NDJSON until the client goes away
//	              (limit is then the batch size)
func (s *Server) listEvents(c *gin.Context) {
	f, err := eventFilter(c)
	if err != nil {
		s.abort(c, err)
		return
	}
	follow := c.Query("follow") == "true" || c.Query("follow") == "1"
	if (follow || c.Query("wait") != "") && (f.Newest || f.Before > 0) {
		s.abort(c, fmt.Errorf("%w: wait and follow read new events: they take since, not before or order=newest", errBadRequest))
		return
	}
	var wait time.Duration
	if w := c.Query("wait"); w != "" {
		if wait, err = time.ParseDuration(w); err != nil || wait < 0 {
			s.abort(c, fmt.Errorf("%w: wait %q: want a duration such as 30s", errBadRequest, w))
			return
		}
	}
	if follow {
		s.followEvents(c, f)
		return
	}
	ctx := c.Request.Context()
	probe := f // one more than the page, to know whether another follows
	probe.Limit++
	evs, err := s.store.ListEvents(ctx, probe)
	if err != nil {
		s.abort(c, err)
		return
	}
	if wait > 0 && len(evs) == 0 {
		evs, err = s.waitFor(ctx, probe, min(wait, maxWait))
		if err != nil {
			s.abort(c, err)
			return
		}
	}
	evs, more := pageOf(f, evs)
	if more {
		setNextLink(c, f, evs)
	}
	c.JSON(http.StatusOK, toEvents(evs))
}

// waitFor waits until events matching f exist or d passes.
func (s *Server) waitFor(ctx context.Context, f inventory.EventFilter, d time.Duration) ([]inventory.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		if err := s.store.WaitEvents(ctx, f.Since); err != nil {
			return []inventory.Event{}, nil // timed out: an empty answer
		}
		evs, err := s.store.ListEvents(ctx, f)
		if err != nil || len(evs) > 0 {
			return evs, err
		}
		// Newer events exist but none match the filter: skip past them.
		all, err := s.store.ListEvents(ctx, inventory.EventFilter{Since: f.Since, Limit: metalapi.MaxEventLimit})
		if err != nil {
			return nil, err
		}
		if len(all) > 0 {
			f.Since = all[len(all)-1].ID
		}
	}
}

func (s *Server) followEvents(c *gin.Context, f inventory.EventFilter) {
	ctx := c.Request.Context()
	c.Header("Content-Type", "application/x-ndjson")
	c.Header("Cache-Control", "no-cache")
	c.Status(http.StatusOK)
	enc := json.NewEncoder(c.Writer)
	for {
		evs, err := s.store.ListEvents(ctx, f)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("follow events", "err", err)
			}
			return
		}
		for _, e := range evs {
			if err := enc.Encode(toEvent(e)); err != nil {
				return
			}
			f.Since = e.ID
		}
		c.Writer.Flush()
		if len(evs) == 0 {
			wctx, cancel := context.WithTimeout(ctx, heartbeat)
			err := s.store.WaitEvents(wctx, f.Since)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if err != nil { // heartbeat
				if _, err := c.Writer.Write([]byte("\n")); err != nil {
					return
				}
				c.Writer.Flush()
			} else if all, err := s.store.ListEvents(ctx, inventory.EventFilter{Since: f.Since, Limit: metalapi.MaxEventLimit}); err == nil && len(all) > 0 {
				if matched, _ := s.store.ListEvents(ctx, f); len(matched) == 0 {
					f.Since = all[len(all)-1].ID
				}
			}
		}
	}
}
