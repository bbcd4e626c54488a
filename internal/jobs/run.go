package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/metal-iaas/metal/pkg/inventory"
)

// errStopping is the cause with which the service's work context ends
// when Run's context ends and the grace period has passed.
var errStopping = errors.New("jobs: metald is stopping")

// steps owns the background job steps (power, finish): every step runs
// under its context and is counted, so that Run returns only after the
// last one did, and the store is never used by a step after Run.
type steps struct {
	ctx    context.Context // ends with errStopping
	cancel context.CancelCauseFunc
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func newSteps() *steps {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &steps{ctx: ctx, cancel: cancel}
}

// spawn runs f in a goroutine unless the service has stopped; a step not
// started leaves its job in its phase, which the next start resumes.
func (st *steps) spawn(f func()) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return false
	}
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		f()
	}()
	return true
}

// stop refuses new steps, lets those in flight finish for up to grace,
// then cancels the rest and waits until they returned.
func (st *steps) stop(grace time.Duration) {
	st.mu.Lock()
	st.closed = true
	st.mu.Unlock()
	done := make(chan struct{})
	go func() { st.wg.Wait(); close(done) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		st.cancel(errStopping)
		<-done
	}
	st.cancel(errStopping)
}

// spawn is async's default: a goroutine owned by Run.
func (s *Service) spawn(f func()) {
	if !s.steps.spawn(f) {
		s.log.Info("metald is stopping: job step left for the next start to resume")
	}
}

// abandoned reports whether a step's failure comes from metald stopping:
// the job then stays in its phase (power and finishing are resumed at the
// next start) rather than failing.
func (s *Service) abandoned(ctx context.Context, j inventory.Job, step string) bool {
	if !errors.Is(context.Cause(ctx), errStopping) {
		return false
	}
	s.log.Info("job step abandoned: metald is stopping; the next start resumes it", "job", j.ID, "machine", j.Machine, "step", step)
	return true
}

// Run resumes jobs a previous metald left in the power or finishing phase
// and fails jobs whose phase deadline passes. When ctx ends it waits for
// the job steps in flight (StopGrace, then they are cancelled and
// abandoned) and returns only after the last one returned.
func (s *Service) Run(ctx context.Context) error {
	defer s.steps.stop(s.cfg.StopGrace)
	if err := s.resume(ctx); err != nil {
		s.log.Warn("resume jobs", "err", err)
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s.expire(ctx)
	}
}

func (s *Service) resume(ctx context.Context) error {
	jobs, err := s.store.ListJobs(ctx, "", true, 0)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		s.log.Info("resuming job", "job", j.ID, "machine", j.Machine, "kind", j.Kind, "phase", j.Phase)
		switch j.Phase {
		case PhasePower:
			s.async(func() { s.powerStep(s.steps.ctx, j) })
		case PhaseFinishing:
			p, err := params(j)
			if err != nil {
				s.fail(ctx, j, err.Error())
				continue
			}
			s.async(func() { s.finishStep(s.steps.ctx, j, p, j.Kind+" succeeded (finished after a metald restart)") })
		}
	}
	return nil
}

func (s *Service) expire(ctx context.Context) {
	jobs, err := s.store.ListJobs(ctx, "", true, 0)
	if err != nil {
		s.log.Warn("list jobs", "err", err)
		return
	}
	now := s.now()
	for _, j := range jobs {
		if !j.Deadline.IsZero() && now.After(j.Deadline) {
			s.fail(ctx, j, fmt.Sprintf("timed out in phase %s (deadline %s)", j.Phase, j.Deadline.Format(time.RFC3339)))
		}
	}
}
