package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// StartJob implements JobStore. The machine's row is locked first, so of
// two metalds starting a job on one machine the second waits, then sees
// the first one's job and gets ErrConflict.
func (s *Postgres) StartJob(ctx context.Context, j Job, to State, reason string) (Job, string, error) {
	id, token, err := startJob(ctx, s, s.sealer, s.now, j, to, reason)
	if err != nil {
		return Job{}, "", err
	}
	job, err := s.GetJob(ctx, id)
	return job, token, err
}

// GetJob implements JobStore.
func (s *Postgres) GetJob(ctx context.Context, id int64) (Job, error) {
	j, err := scanJob(s.pool.QueryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = $1`, id))
	if pgNoRows(err) {
		return Job{}, fmt.Errorf("%w: job %d", ErrNotFound, id)
	}
	return j, err
}

// ActiveJob implements JobStore.
func (s *Postgres) ActiveJob(ctx context.Context, machine string) (Job, error) {
	j, err := scanJob(s.pool.QueryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE machine = $1 AND state = $2`, machine, JobRunning))
	if pgNoRows(err) {
		return Job{}, fmt.Errorf("%w: machine %q has no running job", ErrNotFound, machine)
	}
	return j, err
}

// ListJobs implements JobStore: newest first.
func (s *Postgres) ListJobs(ctx context.Context, machine string, activeOnly bool, limit int) ([]Job, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if machine != "" {
		where = append(where, "machine = "+arg(machine))
	}
	if activeOnly {
		where = append(where, "state = "+arg(JobRunning))
	}
	clause := ""
	if len(where) > 0 {
		clause = "WHERE " + strings.Join(where, " AND ")
	}
	lim := arg(jobLimit(limit))
	rows, err := s.pool.Query(ctx, `SELECT `+jobCols+` FROM jobs `+clause+` ORDER BY id DESC LIMIT `+lim, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanAll(rows, scanJob)
}

// UpdateJob implements JobStore.
func (s *Postgres) UpdateJob(ctx context.Context, id int64, phase string, progress json.RawMessage, deadline time.Time, ev *Event) error {
	return updateJob(ctx, s, s.now, id, phase, progress, deadline, ev)
}

// FinishJob implements JobStore. Locks are taken machine first, then
// job, the order StartJob uses.
func (s *Postgres) FinishJob(ctx context.Context, id int64, success bool, errText string, to State, reason string) (Job, error) {
	now := s.now()
	var evID int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var machine string
		err := tx.QueryRow(ctx, `SELECT machine FROM jobs WHERE id = $1`, id).Scan(&machine)
		if pgNoRows(err) {
			return fmt.Errorf("%w: job %d", ErrNotFound, id)
		} else if err != nil {
			return err
		}
		mid, from, machErr := pgLockMachine(ctx, tx, machine)
		if machErr != nil && !errors.Is(machErr, ErrNotFound) {
			return machErr
		}
		j, err := scanJob(tx.QueryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = $1 FOR UPDATE`, id))
		if pgNoRows(err) {
			return fmt.Errorf("%w: job %d", ErrNotFound, id)
		} else if err != nil {
			return err
		}
		state, err := endJob(ctx, pgTx{tx}, j, success, errText, now)
		if err != nil {
			return err
		}
		if machErr != nil {
			return machErr
		}
		evID, err = applyJobEnd(ctx, pgTx{tx}, j, mid, from, to, reason, state, errText, now)
		return err
	})
	if err != nil {
		return Job{}, err
	}
	s.ev.notify(evID)
	return s.GetJob(ctx, id)
}

// JobByToken implements JobStore.
func (s *Postgres) JobByToken(ctx context.Context, token string) (Job, error) {
	if token == "" {
		return Job{}, ErrUnauthorized
	}
	j, err := scanJob(s.pool.QueryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE token_hash = $1 AND state = $2`, tokenHash(token), JobRunning))
	if pgNoRows(err) {
		return Job{}, ErrUnauthorized
	}
	return j, err
}

// ClaimJobToken implements JobStore.
func (s *Postgres) ClaimJobToken(ctx context.Context, id int64, addr string) (string, error) {
	return claimJobToken(ctx, id, addr, s.GetJob, func(hash string) (int64, error) {
		tag, err := s.pool.Exec(ctx, `UPDATE jobs SET token_hash = $1, token_sealed = NULL, agent_addr = $2
			WHERE id = $3 AND state = $4 AND (agent_addr = '' OR agent_addr = $2)`, hash, addr, id, JobRunning)
		if err != nil {
			return 0, err
		}
		return tag.RowsAffected(), nil
	})
}

// runningJob implements storeTx.
func (w pgTx) runningJob(ctx context.Context, machine string) (int64, bool, error) {
	var id int64
	err := w.tx.QueryRow(ctx, `SELECT id FROM jobs WHERE machine = $1 AND state = $2`, machine, JobRunning).Scan(&id)
	if pgNoRows(err) {
		return 0, false, nil
	}
	return id, err == nil, err
}

// insertJob implements storeTx. A unique violation (jobs_one_running) is
// another metald's job started on the machine at the same moment.
func (w pgTx) insertJob(ctx context.Context, j Job, hash string, tokenSealed []byte, now time.Time) (int64, error) {
	var id int64
	err := w.tx.QueryRow(ctx, `INSERT INTO jobs (machine, kind, state, phase, params, deadline, created_at, updated_at, token_hash, token_sealed)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) RETURNING id`, j.Machine, j.Kind, JobRunning, j.Phase, string(j.Params), unixNano(j.Deadline),
		now.UnixNano(), now.UnixNano(), hash, tokenSealed).Scan(&id)
	if _, ok := pgUnique(err); ok {
		return 0, fmt.Errorf("%w: machine %q already has a job running", ErrConflict, j.Machine)
	}
	return id, err
}

// updateRunningJob implements storeTx.
func (w pgTx) updateRunningJob(ctx context.Context, id int64, phase string, progress json.RawMessage, deadline, now time.Time) (bool, error) {
	tag, err := w.tx.Exec(ctx, `UPDATE jobs SET phase = $1, progress = CASE WHEN $2 = '' THEN progress ELSE $2 END,
		deadline = $3, updated_at = $4 WHERE id = $5 AND state = $6`,
		phase, string(progress), unixNano(deadline), now.UnixNano(), id, JobRunning)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() > 0, nil
}

// finishJobRow implements storeTx.
func (w pgTx) finishJobRow(ctx context.Context, id int64, state, errText string, now time.Time) error {
	_, err := w.tx.Exec(ctx, `UPDATE jobs SET state = $1, error = $2, updated_at = $3, finished_at = $4, token_hash = '', token_sealed = NULL WHERE id = $5`,
		state, errText, now.UnixNano(), now.UnixNano(), id)
	return err
}
