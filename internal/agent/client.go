package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

// ErrRejected is wrapped when metald answers a request with a 4xx status:
// retrying the same request will not help.
var ErrRejected = errors.New("request rejected by metald")

// Client speaks the agent API. Calls retry with exponential backoff while
// metald is unreachable or answers 5xx (it may restart mid-task), until
// the context ends.
type Client struct {
	Base string // metald base URL, "http://10.0.0.1:8080"
	HTTP *http.Client
	Log  *slog.Logger
	// MinBackoff and MaxBackoff bound the retry delay (1 s and 30 s when
	// zero).
	MinBackoff, MaxBackoff time.Duration
}

// Register posts the inventory and returns the assignment.
func (c *Client) Register(ctx context.Context, req agentapi.RegisterRequest) (agentapi.Assignment, error) {
	req.Version = agentapi.Version
	var a agentapi.Assignment
	err := c.retry(ctx, "register", func() error {
		return c.do(ctx, http.MethodPost, agentapi.PathRegister, "", req, &a)
	})
	return a, err
}

// Poll asks for the machine's current task.
func (c *Client) Poll(ctx context.Context, mac string) (agentapi.Assignment, error) {
	var a agentapi.Assignment
	p := agentapi.PathTask + "?" + url.Values{agentapi.QueryMAC: {mac}}.Encode()
	err := c.retry(ctx, "poll", func() error {
		return c.do(ctx, http.MethodGet, p, "", nil, &a)
	})
	return a, err
}

// Inventory sends the hardware inventory of a task, retrying until
// metald accepts it.
func (c *Client) Inventory(ctx context.Context, token string, r agentapi.InventoryReport) error {
	r.Version = agentapi.Version
	return c.retry(ctx, "inventory", func() error {
		return c.do(ctx, http.MethodPost, agentapi.PathInventory, token, r, nil)
	})
}

// InventoryOnce sends the inventory once: for a provision it is a
// courtesy that must not hold up the image while metald is away.
func (c *Client) InventoryOnce(ctx context.Context, token string, r agentapi.InventoryReport) error {
	r.Version = agentapi.Version
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.do(ctx, http.MethodPost, agentapi.PathInventory, token, r, nil)
}

// Progress sends one progress report, once: a lost report is replaced by
// the next one.
func (c *Client) Progress(ctx context.Context, token string, p agentapi.Progress) error {
	p.Version = agentapi.Version
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return c.do(ctx, http.MethodPost, agentapi.PathProgress, token, p, nil)
}

// Result reports a task's outcome, retrying until metald accepts it.
func (c *Client) Result(ctx context.Context, token string, r agentapi.Result) (agentapi.ResultResponse, error) {
	r.Version = agentapi.Version
	var rr agentapi.ResultResponse
	err := c.retry(ctx, "result", func() error {
		return c.do(ctx, http.MethodPost, agentapi.PathResult, token, r, &rr)
	})
	return rr, err
}

// Swarm trades chunks with metald's tracker, once (the caller retries,
// or gives up on peers).
func (c *Client) Swarm(ctx context.Context, token string, r agentapi.SwarmRequest) (agentapi.SwarmResponse, error) {
	r.Version = agentapi.Version
	var resp agentapi.SwarmResponse
	err := c.do(ctx, http.MethodPost, agentapi.PathSwarm, token, r, &resp)
	return resp, err
}

func (c *Client) retry(ctx context.Context, what string, f func() error) error {
	lo, hi := c.MinBackoff, c.MaxBackoff
	if lo <= 0 {
		lo = time.Second
	}
	if hi <= 0 {
		hi = 30 * time.Second
	}
	d := lo
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || errors.Is(err, ErrRejected) || ctx.Err() != nil {
			return err
		}
		c.log().Warn("metald unreachable, retrying", "call", what, "attempt", attempt, "in", d, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), err)
		case <-time.After(d):
		}
		d = min(d*2, hi)
	}
}

func (c *Client) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

func (c *Client) do(ctx context.Context, method, path, token string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%w: encode %s: %v", ErrRejected, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRejected, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e agentapi.Error
		msg := string(bytes.TrimSpace(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		err := fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, msg)
		if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout {
			return fmt.Errorf("%w: %v", ErrRejected, err)
		}
		return err
	}
	if out != nil && len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}
