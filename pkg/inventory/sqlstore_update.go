package inventory

import (
	"context"
	"time"
)

// UpdateMachine applies a patch. Every change is validated before any is
// written, and written with a machine.updated event in one transaction.
func (s *sqlStore) UpdateMachine(ctx context.Context, name string, p MachinePatch) (Machine, error) {
	if err := updateMachine(ctx, s, s.sealer, s.now, name, p); err != nil {
		return Machine{}, err
	}
	return s.GetMachine(ctx, name)
}

// DeleteMachine removes a machine; its events stay.
func (s *sqlStore) DeleteMachine(ctx context.Context, name string) error {
	return deleteMachine(ctx, s, s.now, name)
}

// Transition changes a machine's lifecycle state; see lifecycle.go. The
// machine's row is locked while the transition is checked and written.
func (s *sqlStore) Transition(ctx context.Context, name string, to State, reason string) (Machine, error) {
	if err := transition(ctx, s, s.now, name, to, reason); err != nil {
		return Machine{}, err
	}
	return s.GetMachine(ctx, name)
}

func (w sqlTx) deleteMACs(ctx context.Context, id int64) error {
	_, err := w.exec(ctx, `DELETE FROM machine_macs WHERE machine_id = ?`, id)
	return err
}

func (w sqlTx) setColumn(ctx context.Context, id int64, name string, c colSet) error {
	// c.col comes from preparePatch's fixed list, never from input.
	if _, err := w.exec(ctx, `UPDATE machines SET `+c.col+` = ? WHERE id = ?`, c.val, id); err != nil {
		var ip, ip6 string
		switch c.col { // the patched columns with a unique index (PostgreSQL)
		case "ip":
			ip, _ = c.val.(string)
		case "ip6":
			ip6, _ = c.val.(string)
		}
		return w.machineConflict(err, name, ip, ip6)
	}
	return nil
}

func (w sqlTx) touch(ctx context.Context, id int64, now time.Time) error {
	_, err := w.exec(ctx, `UPDATE machines SET updated_at = ? WHERE id = ?`, now.UnixNano(), id)
	return err
}

func (w sqlTx) setState(ctx context.Context, id int64, to State, reason string, now time.Time) error {
	_, err := w.exec(ctx, `UPDATE machines SET state = ?, state_reason = ?, updated_at = ? WHERE id = ?`,
		string(to), reason, now.UnixNano(), id)
	return err
}

func (w sqlTx) deleteMachine(ctx context.Context, id int64) error {
	_, err := w.exec(ctx, `DELETE FROM machines WHERE id = ?`, id)
	return err
}

// CountMachinesByState returns how many machines are in each state.
func (s *sqlStore) CountMachinesByState(ctx context.Context) (map[State]int, error) {
	rows, err := s.query(ctx, `SELECT state, COUNT(*) FROM machines GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanStateCounts(rows)
}

// BMCURL returns the BMC URL with credentials, unsealed.
func (s *sqlStore) BMCURL(ctx context.Context, name string) (string, error) {
	var sealed []byte
	err := s.queryRow(ctx, `SELECT bmc_sealed FROM machines WHERE name = ?`, name).Scan(&sealed)
	if err != nil {
		return "", scanErr(err, "machine", name)
	}
	return openBMC(s.sealer, name, sealed)
}
