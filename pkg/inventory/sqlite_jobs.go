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

var _ JobStore = (*SQLite)(nil)

// StartJob implements JobStore.
func (s *SQLite) StartJob(ctx context.Context, j Job, to State, reason string) (Job, string, error) {
	id, token, err := startJob(ctx, s, s.sealer, s.now, j, to, reason)
	if err != nil {
		return Job{}, "", err
	}
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
	return scanAll(rows, scanJob)
}

// UpdateJob implements JobStore.
func (s *SQLite) UpdateJob(ctx context.Context, id int64, phase string, progress json.RawMessage, deadline time.Time, ev *Event) error {
	return updateJob(ctx, s, s.now, id, phase, progress, deadline, ev)
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
		state, err := endJob(ctx, sqliteTx{tx}, j, success, errText, now)
		if err != nil {
			return err
		}
		mid, from, err := machineID(ctx, tx, j.Machine)
		if err != nil {
			return err
		}
		evID, err = applyJobEnd(ctx, sqliteTx{tx}, j, mid, from, to, reason, state, errText, now)
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

// ClaimJobToken implements JobStore.
func (s *SQLite) ClaimJobToken(ctx context.Context, id int64, addr string) (string, error) {
	return claimJobToken(ctx, id, addr, s.GetJob, func(hash string) (int64, error) {
		res, err := s.db.ExecContext(ctx, `UPDATE jobs SET token_hash = ?, token_sealed = NULL, agent_addr = ?
			WHERE id = ? AND state = ? AND (agent_addr = '' OR agent_addr = ?)`, hash, addr, id, JobRunning, addr)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	})
}

// runningJob implements storeTx.
func (w sqliteTx) runningJob(ctx context.Context, machine string) (int64, bool, error) {
	var id int64
	err := w.tx.QueryRowContext(ctx, `SELECT id FROM jobs WHERE machine = ? AND state = ?`, machine, JobRunning).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return id, err == nil, err
}

// insertJob implements storeTx.
func (w sqliteTx) insertJob(ctx context.Context, j Job, hash string, tokenSealed []byte, now time.Time) (int64, error) {
	res, err := w.tx.ExecContext(ctx, `INSERT INTO jobs (machine, kind, state, phase, params, deadline, created_at, updated_at, token_hash, token_sealed)
		VALUES (?,?,?,?,?,?,?,?,?,?)`, j.Machine, j.Kind, JobRunning, j.Phase, string(j.Params), unixNano(j.Deadline),
		now.UnixNano(), now.UnixNano(), hash, tokenSealed)
	if err != nil {
		return 0, err
	}
	id, _ := res.LastInsertId()
	return id, nil
}

// updateRunningJob implements storeTx.
func (w sqliteTx) updateRunningJob(ctx context.Context, id int64, phase string, progress json.RawMessage, deadline, now time.Time) (bool, error) {
	res, err := w.tx.ExecContext(ctx, `UPDATE jobs SET phase = ?, progress = CASE WHEN ? = '' THEN progress ELSE ? END,
		deadline = ?, updated_at = ? WHERE id = ? AND state = ?`,
		phase, string(progress), string(progress), unixNano(deadline), now.UnixNano(), id, JobRunning)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// finishJobRow implements storeTx.
func (w sqliteTx) finishJobRow(ctx context.Context, id int64, state, errText string, now time.Time) error {
	_, err := w.tx.ExecContext(ctx, `UPDATE jobs SET state = ?, error = ?, updated_at = ?, finished_at = ?, token_hash = '', token_sealed = NULL WHERE id = ?`,
		state, errText, now.UnixNano(), now.UnixNano(), id)
	return err
}
