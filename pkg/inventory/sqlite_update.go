package inventory

import (
	"context"
	"database/sql"
	"fmt"
)

// UpdateMachine applies a patch. Every change is validated before any is
// written, and written with a machine.updated event in one transaction.
func (s *SQLite) UpdateMachine(ctx context.Context, name string, p MachinePatch) (Machine, error) {
	pp, err := preparePatch(s.sealer, p)
	if err != nil {
		return Machine{}, err
	}
	now := s.now()
	var evID int64
	err = s.tx(ctx, func(tx *sql.Tx) error {
		id, _, err := machineID(ctx, tx, name)
		if err != nil {
			return err
		}
		if pp.setMACs || pp.checkIP {
			if err := s.checkFree(ctx, tx, name, pp.macs, pp.ip, id); err != nil {
				return err
			}
		}
		if pp.setMACs {
			if _, err := tx.ExecContext(ctx, `DELETE FROM machine_macs WHERE machine_id = ?`, id); err != nil {
				return err
			}
			if err := insertMACs(ctx, tx, id, pp.macs); err != nil {
				return err
			}
		}
		for _, c := range pp.cols {
			if _, err := tx.ExecContext(ctx, `UPDATE machines SET `+c.col+` = ? WHERE id = ?`, c.val, id); err != nil {
				return err
			}
		}
		if pp.tags != nil {
			if err := mergeTags(ctx, tx, id, pp.tags); err != nil {
				return err
			}
		}
		changed := pp.changed()
		if len(changed) == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE machines SET updated_at = ? WHERE id = ?`, now.UnixNano(), id); err != nil {
			return err
		}
		ev, ok := updatedEvent(now, name, changed)
		if !ok {
			return nil
		}
		evID, err = appendEventTx(ctx, tx, ev)
		return err
	})
	if err != nil {
		return Machine{}, err
	}
	s.notify(evID)
	return s.GetMachine(ctx, name)
}

// DeleteMachine removes a machine; its events stay.
func (s *SQLite) DeleteMachine(ctx context.Context, name string) error {
	now := s.now()
	var evID int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		id, st, err := machineID(ctx, tx, name)
		if err != nil {
			return err
		}
		if st.Active() {
			return activeDeleteErr(name, st)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM machines WHERE id = ?`, id); err != nil {
			return err
		}
		evID, err = appendEventTx(ctx, tx, deletedEvent(now, name))
		return err
	})
	if err != nil {
		return err
	}
	s.notify(evID)
	return nil
}

// Transition changes a machine's lifecycle state; see lifecycle.go.
func (s *SQLite) Transition(ctx context.Context, name string, to State, reason string) (Machine, error) {
	now := s.now()
	var evID int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		id, from, err := machineID(ctx, tx, name)
		if err != nil {
			return err
		}
		if err := CheckTransition(from, to); err != nil {
			return fmt.Errorf("machine %q: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE machines SET state = ?, state_reason = ?, updated_at = ? WHERE id = ?`,
			string(to), reason, now.UnixNano(), id); err != nil {
			return err
		}
		evID, err = appendEventTx(ctx, tx, transitionEvent(now, name, from, to, reason))
		return err
	})
	if err != nil {
		return Machine{}, err
	}
	s.notify(evID)
	return s.GetMachine(ctx, name)
}

// CountMachinesByState returns how many machines are in each state.
func (s *SQLite) CountMachinesByState(ctx context.Context) (map[State]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT state, COUNT(*) FROM machines GROUP BY state`)
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
func (s *SQLite) BMCURL(ctx context.Context, name string) (string, error) {
	var sealed []byte
	err := s.db.QueryRowContext(ctx, `SELECT bmc_sealed FROM machines WHERE name = ?`, name).Scan(&sealed)
	if err != nil {
		return "", scanErr(err, "machine", name)
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
