package inventory

import (
	"context"
	"database/sql"
	"time"
)

// UpdateMachine applies a patch. Every change is validated before any is
// written, and written with a machine.updated event in one transaction.
func (s *SQLite) UpdateMachine(ctx context.Context, name string, p MachinePatch) (Machine, error) {
	if err := updateMachine(ctx, s, s.sealer, s.now, name, p); err != nil {
		return Machine{}, err
	}
	return s.GetMachine(ctx, name)
}

// DeleteMachine removes a machine; its events stay.
func (s *SQLite) DeleteMachine(ctx context.Context, name string) error {
	return deleteMachine(ctx, s, s.now, name)
}

// Transition changes a machine's lifecycle state; see lifecycle.go.
func (s *SQLite) Transition(ctx context.Context, name string, to State, reason string) (Machine, error) {
	if err := transition(ctx, s, s.now, name, to, reason); err != nil {
		return Machine{}, err
	}
	return s.GetMachine(ctx, name)
}

// sqliteTx is storeTx in SQLite's SQL. BEGIN IMMEDIATE already holds
// the database's write lock, so lockMachine only reads.
type sqliteTx struct{ tx *sql.Tx }

func (w sqliteTx) lockMachine(ctx context.Context, name string) (int64, State, error) {
	return machineID(ctx, w.tx, name)
}

func (w sqliteTx) deleteMACs(ctx context.Context, id int64) error {
	_, err := w.tx.ExecContext(ctx, `DELETE FROM machine_macs WHERE machine_id = ?`, id)
	return err
}

func (w sqliteTx) setColumn(ctx context.Context, id int64, _ string, c colSet) error {
	// c.col comes from preparePatch's fixed list, never from input.
	_, err := w.tx.ExecContext(ctx, `UPDATE machines SET `+c.col+` = ? WHERE id = ?`, c.val, id)
	return err
}

func (w sqliteTx) touch(ctx context.Context, id int64, now time.Time) error {
	_, err := w.tx.ExecContext(ctx, `UPDATE machines SET updated_at = ? WHERE id = ?`, now.UnixNano(), id)
	return err
}

func (w sqliteTx) setState(ctx context.Context, id int64, to State, reason string, now time.Time) error {
	_, err := w.tx.ExecContext(ctx, `UPDATE machines SET state = ?, state_reason = ?, updated_at = ? WHERE id = ?`,
		string(to), reason, now.UnixNano(), id)
	return err
}

func (w sqliteTx) deleteMachine(ctx context.Context, id int64) error {
	_, err := w.tx.ExecContext(ctx, `DELETE FROM machines WHERE id = ?`, id)
	return err
}

func (w sqliteTx) appendEvent(ctx context.Context, e Event) (int64, error) {
	return appendEventTx(ctx, w.tx, e)
}

// CountMachinesByState returns how many machines are in each state.
func (s *SQLite) CountMachinesByState(ctx context.Context) (map[State]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT state, COUNT(*) FROM machines GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanStateCounts(rows)
}

// BMCURL returns the BMC URL with credentials, unsealed.
func (s *SQLite) BMCURL(ctx context.Context, name string) (string, error) {
	var sealed []byte
	err := s.db.QueryRowContext(ctx, `SELECT bmc_sealed FROM machines WHERE name = ?`, name).Scan(&sealed)
	if err != nil {
		return "", scanErr(err, "machine", name)
	}
	return openBMC(s.sealer, name, sealed)
}
