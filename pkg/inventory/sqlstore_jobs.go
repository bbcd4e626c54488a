package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// StartJob implements JobStore. The machine's row is locked first, so of
// two metalds starting a job on one machine the second waits, then sees
// the first one's job and gets ErrConflict.
func (s *sqlStore) StartJob(ctx context.Context, j Job, to State, reason string) (Job, string, error) {
	id, token, err := startJob(ctx, s, s.sealer, s.now, j, to, reason)
	if err != nil {
		return Job{}, "", err
	}
	job, err := s.GetJob(ctx, id)
	return job, token, err
}

// GetJob implements JobStore.
func (s *sqlStore) GetJob(ctx context.Context, id int64) (Job, error) {
	j, err := scanJob(s.queryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = ?`, id))
	if noRows(err) {
		return Job{}, fmt.Errorf("%w: job %d", ErrNotFound, id)
	}
	return j, err
}

// ActiveJob implements JobStore.
func (s *sqlStore) ActiveJob(ctx context.Context, machine string) (Job, error) {
	j, err := scanJob(s.queryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE machine = ? AND state = ?`, machine, JobRunning))
	if noRows(err) {
		return Job{}, fmt.Errorf("%w: machine %q has no running job", ErrNotFound, machine)
	}
	return j, err
}

// ListJobs implements JobStore: newest first.
func (s *sqlStore) ListJobs(ctx context.Context, machine string, activeOnly bool, limit int) ([]Job, error) {
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
	return queryAll(ctx, s, `SELECT `+jobCols+` FROM jobs `+clause+` ORDER BY id DESC LIMIT ?`, scanJob, append(args, jobLimit(limit))...)
}

// UpdateJob implements JobStore.
func (s *sqlStore) UpdateJob(ctx context.Context, id int64, phase string, progress json.RawMessage, deadline time.Time, ev *Event) error {
	return updateJob(ctx, s, s.now, id, phase, progress, deadline, ev)
}

// JobByToken implements JobStore.
func (s *sqlStore) JobByToken(ctx context.Context, token string) (Job, error) {
	if token == "" {
		return Job{}, ErrUnauthorized
	}
	j, err := scanJob(s.queryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE token_hash = ? AND state = ?`, tokenHash(token), JobRunning))
	if noRows(err) {
		return Job{}, ErrUnauthorized
	}
	return j, err
}

// ClaimJobToken implements JobStore.
func (s *sqlStore) ClaimJobToken(ctx context.Context, id int64, addr string) (string, error) {
	return claimJobToken(ctx, id, addr, s.GetJob, func(hash string) (int64, error) {
		return affected(s.exec(ctx, `UPDATE jobs SET token_hash = ?, token_sealed = NULL, agent_addr = ?
			WHERE id = ? AND state = ? AND (agent_addr = '' OR agent_addr = ?)`, hash, addr, id, JobRunning, addr))
	})
}

// FinishJob implements JobStore. Locks are taken machine first, then
// job, the order StartJob uses.
func (s *sqlStore) FinishJob(ctx context.Context, id int64, success bool, errText string, to State, reason string) (Job, error) {
	now := s.now()
	var evID int64
	err := s.tx(ctx, func(tx sqlTx) error {
		var machine string
		err := tx.queryRow(ctx, `SELECT machine FROM jobs WHERE id = ?`, id).Scan(&machine)
		if noRows(err) {
			return fmt.Errorf("%w: job %d", ErrNotFound, id)
		} else if err != nil {
			return err
		}
		mid, from, machErr := tx.lockMachine(ctx, machine)
		if machErr != nil && !errors.Is(machErr, ErrNotFound) {
			return machErr
		}
		j, err := scanJob(tx.queryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = ?`+tx.d.forUpdate(), id))
		if noRows(err) {
			return fmt.Errorf("%w: job %d", ErrNotFound, id)
		} else if err != nil {
			return err
		}
		state, err := endJob(ctx, tx, j, success, errText, now)
		if err != nil {
			return err
		}
		if machErr != nil {
			return machErr
		}
		evID, err = applyJobEnd(ctx, tx, j, mid, from, to, reason, state, errText, now)
		return err
	})
	if err != nil {
		return Job{}, err
	}
	s.ev.notify(evID)
	return s.GetJob(ctx, id)
}

// runningJob implements storeTx.
func (w sqlTx) runningJob(ctx context.Context, machine string) (int64, bool, error) {
	var id int64
	err := w.queryRow(ctx, `SELECT id FROM jobs WHERE machine = ? AND state = ?`, machine, JobRunning).Scan(&id)
	if noRows(err) {
		return 0, false, nil
	}
	return id, err == nil, err
}

// insertJob implements storeTx. A unique violation (PostgreSQL's
// jobs_one_running) is another metald's job started on the machine at
// the same moment.
func (w sqlTx) insertJob(ctx context.Context, j Job, hash string, tokenSealed []byte, now time.Time) (int64, error) {
	id, err := w.insertID(ctx, `INSERT INTO jobs (machine, kind, state, phase, params, deadline, created_at, updated_at, token_hash, token_sealed)
		VALUES (?,?,?,?,?,?,?,?,?,?)`, j.Machine, j.Kind, JobRunning, j.Phase, string(j.Params), unixNano(j.Deadline),
		now.UnixNano(), now.UnixNano(), hash, tokenSealed)
	if _, ok := w.d.unique(err); ok {
		return 0, fmt.Errorf("%w: machine %q already has a job running", ErrConflict, j.Machine)
	}
	return id, err
}

// updateRunningJob implements storeTx.
func (w sqlTx) updateRunningJob(ctx context.Context, id int64, phase string, progress json.RawMessage, deadline, now time.Time) (bool, error) {
	n, err := affected(w.exec(ctx, `UPDATE jobs SET phase = ?, progress = CASE WHEN ? = '' THEN progress ELSE ? END,
		deadline = ?, updated_at = ? WHERE id = ? AND state = ?`,
		phase, string(progress), string(progress), unixNano(deadline), now.UnixNano(), id, JobRunning))
	return n > 0, err
}

// finishJobRow implements storeTx.
func (w sqlTx) finishJobRow(ctx context.Context, id int64, state, errText string, now time.Time) error {
	_, err := w.exec(ctx, `UPDATE jobs SET state = ?, error = ?, updated_at = ?, finished_at = ?, token_hash = '', token_sealed = NULL WHERE id = ?`,
		state, errText, now.UnixNano(), now.UnixNano(), id)
	return err
}
