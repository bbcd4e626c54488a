package bmc

import (
	"context"
	"sync"
	"time"
)

// Target is one machine's BMC for a fan-out.
type Target struct {
	Name     string
	Endpoint Endpoint
}

// Result is the outcome of an operation on one Target.
type Result struct {
	Target   Target
	State    PowerState // what the operation observed or produced
	Err      error      // nil on success; scrubbed, wraps a sentinel
	Attempts int
	Elapsed  time.Duration
}

// Each runs op on every target in parallel (bounded by the Manager's
// limits) and returns one Result per target, in the order of targets. A
// slow or dead BMC costs at most Config.Timeout and never delays others
// beyond the shared concurrency limit.
func (m *Manager) Each(ctx context.Context, targets []Target, op Op) []Result {
	results := make([]Result, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			st, attempts, err := m.do(ctx, t.Endpoint, op)
			results[i] = Result{Target: t, State: st, Err: err, Attempts: attempts, Elapsed: time.Since(start)}
		}()
	}
	wg.Wait()
	return results
}
