package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Job kinds.
const (
	JobProvision   = "provision"
	JobInspect     = "inspect"
	JobDeprovision = "deprovision"
)

// Job states.
const (
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
)

// Job is one long operation on one machine, persisted so that it survives
// a metald restart. Phase and Progress are the job runner's; Params are
// what the job was asked to do.
type Job struct {
	ID         int64
	Machine    string
	Kind       string
	State      string
	Phase      string
	Params     json.RawMessage
	Progress   json.RawMessage
	Error      string
	Deadline   time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
	FinishedAt time.Time
	// AgentAddr is the address the job's agent claimed its task from
	// (ClaimJobToken); empty until then.
	AgentAddr string
}

// JobStore is the job half of the inventory, kept apart from Store so
// consumers name only what they use.
type JobStore interface {
	// StartJob moves the machine to the job's active state and creates
	// the job, in one transaction; a machine has at most one running job.
	// It returns the job and its first agent token (ClaimJobToken hands
	// out the ones agents use).
	StartJob(ctx context.Context, j Job, to State, reason string) (Job, string, error)
	GetJob(ctx context.Context, id int64) (Job, error)
	ActiveJob(ctx context.Context, machine string) (Job, error)
	ListJobs(ctx context.Context, machine string, activeOnly bool, limit int) ([]Job, error)
	// UpdateJob records phase, progress and deadline of a running job;
	// with a non-empty event type it also appends that event.
	UpdateJob(ctx context.Context, id int64, phase string, progress json.RawMessage, deadline time.Time, event *Event) error
	// FinishJob ends a running job and moves its machine to `to` with the
	// reason, in one transaction. The job's token stops working.
	FinishJob(ctx context.Context, id int64, success bool, errText string, to State, reason string) (Job, error)
	// JobByToken returns the running job a task token belongs to.
	JobByToken(ctx context.Context, token string) (Job, error)
	// ClaimJobToken hands out a fresh task token for a running job,
	// revoking the previous one, and binds the job to the agent address
	// addr. A job already bound to another address is refused with
	// ErrConflict; a job that is not running with ErrNotFound.
	ClaimJobToken(ctx context.Context, id int64, addr string) (string, error)
}

const jobCols = `id, machine, kind, state, phase, params, progress, error, deadline, created_at, updated_at, finished_at, agent_addr`

func scanJob(sc scanner) (Job, error) {
	var j Job
	var params, progress string
	var deadline, created, updated, finished int64
	if err := sc.Scan(&j.ID, &j.Machine, &j.Kind, &j.State, &j.Phase, &params, &progress, &j.Error,
		&deadline, &created, &updated, &finished, &j.AgentAddr); err != nil {
		return Job{}, err
	}
	if params != "" {
		j.Params = json.RawMessage(params)
	}
	if progress != "" {
		j.Progress = json.RawMessage(progress)
	}
	j.Deadline, j.CreatedAt, j.UpdatedAt, j.FinishedAt = fromNano(deadline), fromNano(created), fromNano(updated), fromNano(finished)
	return j, nil
}

// storeTx is the SQL (sqlTx) for machines and jobs inside an open
// transaction.
type storeTx interface {
	machineTx
	// runningJob returns the id of the machine's running job, if any.
	runningJob(ctx context.Context, machine string) (int64, bool, error)
	// updateRunningJob sets phase, progress (unless empty) and deadline
	// of a running job; false if no running job has that id.
	updateRunningJob(ctx context.Context, id int64, phase string, progress json.RawMessage, deadline, now time.Time) (bool, error)
	// finishJobRow ends a job in state, dropping its token.
	finishJobRow(ctx context.Context, id int64, state, errText string, now time.Time) error
	// insertJob creates j as running and returns its id.
	insertJob(ctx context.Context, j Job, hash string, tokenSealed []byte, now time.Time) (int64, error)
}

// applyStartJob moves the machine to the job's active state and creates
// the job with its state and job.started events. It returns the job's id
// and the last event's.
func applyStartJob(ctx context.Context, tx storeTx, j Job, to State, reason, token string, tokenSealed []byte, now time.Time) (id, evID int64, err error) {
	mid, from, err := tx.lockMachine(ctx, j.Machine)
	if err != nil {
		return 0, 0, err
	}
	running, ok, err := tx.runningJob(ctx, j.Machine)
	if err != nil {
		return 0, 0, err
	}
	if ok {
		return 0, 0, fmt.Errorf("%w: machine %q already has job %d running", ErrConflict, j.Machine, running)
	}
	if err := CheckTransition(from, to); err != nil {
		return 0, 0, fmt.Errorf("machine %q: %w", j.Machine, err)
	}
	if err := tx.setState(ctx, mid, to, reason, now); err != nil {
		return 0, 0, err
	}
	if id, err = tx.insertJob(ctx, j, tokenHash(token), tokenSealed, now); err != nil {
		return 0, 0, err
	}
	if _, err := tx.appendEvent(ctx, jobStateEvent(now, j.Machine, from, to, reason, id)); err != nil {
		return 0, 0, err
	}
	evID, err = tx.appendEvent(ctx, jobStartedEvent(now, j, id))
	return id, evID, err
}

// endJob ends running job j as succeeded or failed and returns that
// state.
func endJob(ctx context.Context, tx storeTx, j Job, success bool, errText string, now time.Time) (string, error) {
	if j.State != JobRunning {
		return "", fmt.Errorf("%w: job %d already %s", ErrConflict, j.ID, j.State)
	}
	state := jobFinalState(success)
	return state, tx.finishJobRow(ctx, j.ID, state, errText, now)
}

// applyJobUpdate records a running job's phase, progress and deadline and
// appends ev (its time defaulting to now) if there is one. It returns the
// event's id, 0 without one.
func applyJobUpdate(ctx context.Context, tx storeTx, id int64, phase string, progress json.RawMessage, deadline time.Time, ev *Event, now time.Time) (int64, error) {
	ok, err := tx.updateRunningJob(ctx, id, phase, progress, deadline, now)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("%w: job %d is not running", ErrConflict, id)
	}
	if ev == nil {
		return 0, nil
	}
	if ev.Time.IsZero() {
		ev.Time = now
	}
	return tx.appendEvent(ctx, *ev)
}

// applyJobEnd is the end of FinishJob, once the job row is finished: the
// machine (row id mid, in state from) moves to `to` if it is not there,
// with its state event, and job.finished is recorded. It returns the last
// event's id.
func applyJobEnd(ctx context.Context, tx machineTx, j Job, mid int64, from, to State, reason, state, errText string, now time.Time) (int64, error) {
	if from != to {
		if err := CheckTransition(from, to); err != nil {
			return 0, fmt.Errorf("machine %q: %w", j.Machine, err)
		}
		if err := tx.setState(ctx, mid, to, reason, now); err != nil {
			return 0, err
		}
		if _, err := tx.appendEvent(ctx, jobStateEvent(now, j.Machine, from, to, reason, j.ID)); err != nil {
			return 0, err
		}
	}
	return tx.appendEvent(ctx, jobFinishedEvent(now, j, state, errText))
}
