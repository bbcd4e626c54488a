package inventory

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// UpdateMachine applies a patch. Every change is validated before any is
// written, and written with a machine.updated event in one transaction.
func (s *Postgres) UpdateMachine(ctx context.Context, name string, p MachinePatch) (Machine, error) {
	pp, err := preparePatch(s.sealer, p)
	if err != nil {
		return Machine{}, err
	}
	now := s.now()
	var evID int64
	err = s.tx(ctx, func(tx pgx.Tx) error {
		id, _, err := pgLockMachine(ctx, tx, name)
		if err != nil {
			return err
		}
		if pp.setMACs || pp.checkIP {
			if err := pgCheckFree(ctx, tx, name, pp.macs, pp.ip, id); err != nil {
				return err
			}
		}
		if pp.setMACs {
			if _, err := tx.Exec(ctx, `DELETE FROM machine_macs WHERE machine_id = $1`, id); err != nil {
				return err
			}
			if err := pgInsertMACs(ctx, tx, id, pp.macs); err != nil {
				return err
			}
		}
		for _, c := range pp.cols {
			// c.col comes from preparePatch's fixed list, never from input.
			if _, err := tx.Exec(ctx, `UPDATE machines SET `+c.col+` = $1 WHERE id = $2`, c.val, id); err != nil {
				return pgMachineConflict(err, name, pp.ip)
			}
		}
		if pp.tags != nil {
			if err := pgMergeTags(ctx, tx, id, pp.tags); err != nil {
				return err
			}
		}
		changed := pp.changed()
		if len(changed) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE machines SET updated_at = $1 WHERE id = $2`, now.UnixNano(), id); err != nil {
			return err
		}
		ev, ok := updatedEvent(now, name, changed)
		if !ok {
			return nil
		}
		evID, err = pgAppendEventTx(ctx, tx, ev)
		return err
	})
	if err != nil {
		return Machine{}, err
	}
	s.ev.notify(evID)
	return s.GetMachine(ctx, name)
}

// DeleteMachine removes a machine; its events stay.
func (s *Postgres) DeleteMachine(ctx context.Context, name string) error {
	now := s.now()
	var evID int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		id, st, err := pgLockMachine(ctx, tx, name)
		if err != nil {
			return err
		}
		if st.Active() {
			return activeDeleteErr(name, st)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM machines WHERE id = $1`, id); err != nil {
			return err
		}
		evID, err = pgAppendEventTx(ctx, tx, deletedEvent(now, name))
		return err
	})
	if err != nil {
		return err
	}
	s.ev.notify(evID)
	return nil
}

// Transition changes a machine's lifecycle state; see lifecycle.go. The
// machine's row is locked while the transition is checked and written.
func (s *Postgres) Transition(ctx context.Context, name string, to State, reason string) (Machine, error) {
	now := s.now()
	var evID int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		id, from, err := pgLockMachine(ctx, tx, name)
		if err != nil {
			return err
		}
		if err := CheckTransition(from, to); err != nil {
			return fmt.Errorf("machine %q: %w", name, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE machines SET state = $1, state_reason = $2, updated_at = $3 WHERE id = $4`,
			string(to), reason, now.UnixNano(), id); err != nil {
			return err
		}
		evID, err = pgAppendEventTx(ctx, tx, transitionEvent(now, name, from, to, reason))
		return err
	})
	if err != nil {
		return Machine{}, err
	}
	s.ev.notify(evID)
	return s.GetMachine(ctx, name)
}

// CountMachinesByState returns how many machines are in each state.
func (s *Postgres) CountMachinesByState(ctx context.Context) (map[State]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT state, COUNT(*) FROM machines GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[State]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[State(st)] = n
	}
	return out, rows.Err()
}

// BMCURL returns the BMC URL with credentials, unsealed.
func (s *Postgres) BMCURL(ctx context.Context, name string) (string, error) {
	var sealed []byte
	err := s.pool.QueryRow(ctx, `SELECT bmc_sealed FROM machines WHERE name = $1`, name).Scan(&sealed)
	if err != nil {
		return "", pgScanErr(err, "machine", name)
	}
	if len(sealed) == 0 {
		return "", fmt.Errorf("%w: machine %q has no BMC", ErrNotFound, name)
	}
	pt, err := s.sealer.Open(sealed)
	if err != nil {
		return "", fmt.Errorf("machine %q: %w", name, err)
	}
	return string(pt), nil
}
