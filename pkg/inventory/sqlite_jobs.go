package inventory

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
	ID         int64           `json:"id" yaml:"id"`
	Machine    string          `json:"machine" yaml:"machine"`
	Kind       string          `json:"kind" yaml:"kind"`
	State      string          `json:"state" yaml:"state"`
	Phase      string          `json:"phase" yaml:"phase"`
	Params     json.RawMessage `json:"params,omitempty" yaml:"params,omitempty"`
	Progress   json.RawMessage `json:"progress,omitempty" yaml:"progress,omitempty"`
	Error      string          `json:"error,omitempty" yaml:"error,omitempty"`
	Deadline   time.Time       `json:"deadline,omitzero" yaml:"deadline,omitempty"`
	CreatedAt  time.Time       `json:"created_at" yaml:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at" yaml:"updated_at"`
	FinishedAt time.Time       `json:"finished_at,omitzero" yaml:"finished_at,omitempty"`
}

// JobStore is the job half of the inventory, kept apart from Store so
// consumers name only what they use.
type JobStore interface {
	// StartJob moves the machine to the job's active state and creates
	// the job, in one transaction; a machine has at most one running job.
	// It returns the job and its agent token (shown only here and by
	// JobToken).
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
	// JobToken returns a running job's token (to hand the task out again).
	JobToken(ctx context.Context, id int64) (string, error)
}

var _ JobStore = (*SQLite)(nil)

const jobCols = `id, machine, kind, state, phase, params, progress, error, deadline, created_at, updated_at, finished_at`

func scanJob(sc interface{ Scan(...any) error }) (Job, error) {
	var j Job
	var params, progress string
	var deadline, created, updated, finished int64
	if err := sc.Scan(&j.ID, &j.Machine, &j.Kind, &j.State, &j.Phase, &params, &progress, &j.Error,
		&deadline, &created, &updated, &finished); err != nil {
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

// StartJob implements JobStore.
func (s *SQLite) StartJob(ctx context.Context, j Job, to State, reason string) (Job, string, error) {
	if err := checkJob(j); err != nil {
		return Job{}, "", err
	}
	token, err := newJobToken()
	if err != nil {
		return Job{}, "", err
	}
	now := s.now()
	var id, evID int64
	err = s.tx(ctx, func(tx *sql.Tx) error {
		mid, from, err := machineID(ctx, tx, j.Machine)
		if err != nil {
			return err
		}
		var running int64
		err = tx.QueryRowContext(ctx, `SELECT id FROM jobs WHERE machine = ? AND state = ?`, j.Machine, JobRunning).Scan(&running)
		if err == nil {
			return fmt.Errorf("%w: machine %q already has job %d running", ErrConflict, j.Machine, running)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err := CheckTransition(from, to); err != nil {
			return fmt.Errorf("machine %q: %w", j.Machine, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE machines SET state = ?, state_reason = ?, updated_at = ? WHERE id = ?`,
			string(to), reason, now.UnixNano(), mid); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO jobs (machine, kind, state, phase, params, deadline, created_at, updated_at, token_hash, token_sealed)
			VALUES (?,?,?,?,?,?,?,?,?,?)`, j.Machine, j.Kind, JobRunning, j.Phase, string(j.Params), unixNano(j.Deadline),
			now.UnixNano(), now.UnixNano(), tokenHash(token), s.sealer.Seal([]byte(token)))
		if err != nil {
			return err
		}
		id, _ = res.LastInsertId()
		if _, err = appendEventTx(ctx, tx, jobStateEvent(now, j.Machine, from, to, reason, id)); err != nil {
			return err
		}
		evID, err = appendEventTx(ctx, tx, jobStartedEvent(now, j, id))
		return err
	})
	if err != nil {
		return Job{}, "", err
	}
	s.notify(evID)
	job, err := s.GetJob(ctx, id)
	return job, token, err
}

// GetJob implements JobStore.
func (s *SQLite) GetJob(ctx context.Context, id int64) (Job, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, fmt.Errorf("%w: job %d", ErrNotFound, id)
	}
	return j, err
}

// ActiveJob implements JobStore.
func (s *SQLite) ActiveJob(ctx context.Context, machine string) (Job, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE machine = ? AND state = ?`, machine, JobRunning))
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, fmt.Errorf("%w: machine %q has no running job", ErrNotFound, machine)
	}
	return j, err
}

// ListJobs implements JobStore: newest first.
func (s *SQLite) ListJobs(ctx context.Context, machine string, activeOnly bool, limit int) ([]Job, error) {
	var where []string
	var args []any
	if machine != "" {
		where = append(where, "machine = ?")
		args = append(args, machine)
	}
	if activeOnly {
		where = append(where, "state = ?")
		args = append(args, JobRunning)
	}
	clause := ""
	if len(where) > 0 {
		clause = "WHERE " + strings.Join(where, " AND ")
	}
	limit = jobLimit(limit)
	rows, err := s.db.QueryContext(ctx, `SELECT `+jobCols+` FROM jobs `+clause+` ORDER BY id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Job{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// UpdateJob implements JobStore.
func (s *SQLite) UpdateJob(ctx context.Context, id int64, phase string, progress json.RawMessage, deadline time.Time, ev *Event) error {
	now := s.now()
	var evID int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET phase = ?, progress = CASE WHEN ? = '' THEN progress ELSE ? END,
			deadline = ?, updated_at = ? WHERE id = ? AND state = ?`,
			phase, string(progress), string(progress), unixNano(deadline), now.UnixNano(), id, JobRunning)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: job %d is not running", ErrConflict, id)
		}
		if ev != nil {
			if ev.Time.IsZero() {
				ev.Time = now
			}
			evID, err = appendEventTx(ctx, tx, *ev)
		}
		return err
	})
	if err != nil {
		return err
	}
	s.notify(evID)
	return nil
}

// FinishJob implements JobStore.
func (s *SQLite) FinishJob(ctx context.Context, id int64, success bool, errText string, to State, reason string) (Job, error) {
	now := s.now()
	var evID int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		j, err := scanJob(tx.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: job %d", ErrNotFound, id)
		} else if err != nil {
			return err
		}
		if j.State != JobRunning {
			return fmt.Errorf("%w: job %d already %s", ErrConflict, id, j.State)
		}
		state := jobFinalState(success)
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = ?, error = ?, updated_at = ?, finished_at = ?, token_hash = '', token_sealed = NULL WHERE id = ?`,
			state, errText, now.UnixNano(), now.UnixNano(), id); err != nil {
			return err
		}
		mid, from, err := machineID(ctx, tx, j.Machine)
		if err != nil {
			return err
		}
		if from != to {
			if err := CheckTransition(from, to); err != nil {
				return fmt.Errorf("machine %q: %w", j.Machine, err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE machines SET state = ?, state_reason = ?, updated_at = ? WHERE id = ?`,
				string(to), reason, now.UnixNano(), mid); err != nil {
				return err
			}
			if _, err := appendEventTx(ctx, tx, jobStateEvent(now, j.Machine, from, to, reason, id)); err != nil {
				return err
			}
		}
		evID, err = appendEventTx(ctx, tx, jobFinishedEvent(now, j, state, errText))
		return err
	})
	if err != nil {
		return Job{}, err
	}
	s.notify(evID)
	return s.GetJob(ctx, id)
}

// JobByToken implements JobStore.
func (s *SQLite) JobByToken(ctx context.Context, token string) (Job, error) {
	if token == "" {
		return Job{}, ErrUnauthorized
	}
	j, err := scanJob(s.db.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE token_hash = ? AND state = ?`, tokenHash(token), JobRunning))
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, ErrUnauthorized
	}
	return j, err
}

// JobToken implements JobStore.
func (s *SQLite) JobToken(ctx context.Context, id int64) (string, error) {
	var sealed []byte
	err := s.db.QueryRowContext(ctx, `SELECT token_sealed FROM jobs WHERE id = ? AND state = ?`, id, JobRunning).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) || len(sealed) == 0 {
		return "", fmt.Errorf("%w: job %d is not running", ErrNotFound, id)
	} else if err != nil {
		return "", err
	}
	tok, err := s.sealer.Open(sealed)
	return string(tok), err
}
