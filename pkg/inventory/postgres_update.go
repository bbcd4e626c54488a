package inventory

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// UpdateMachine applies a patch. Every change is validated before any is
// written, and written with a machine.updated event in one transaction.
func (s *Postgres) UpdateMachine(ctx context.Context, name string, p MachinePatch) (Machine, error) {
	if err := updateMachine(ctx, s, s.sealer, s.now, name, p); err != nil {
		return Machine{}, err
	}
	return s.GetMachine(ctx, name)
}

// DeleteMachine removes a machine; its events stay.
func (s *Postgres) DeleteMachine(ctx context.Context, name string) error {
	return deleteMachine(ctx, s, s.now, name)
}

// Transition changes a machine's lifecycle state; see lifecycle.go. The
// machine's row is locked while the transition is checked and written.
func (s *Postgres) Transition(ctx context.Context, name string, to State, reason string) (Machine, error) {
	if err := transition(ctx, s, s.now, name, to, reason); err != nil {
		return Machine{}, err
	}
	return s.GetMachine(ctx, name)
}

// pgTx is storeTx in PostgreSQL's SQL: lockMachine takes the machine's
// row lock (SELECT … FOR UPDATE), and unique violations from a race with
// another metald become the conflicts the checks would have reported.
type pgTx struct{ tx pgx.Tx }

func (w pgTx) lockMachine(ctx context.Context, name string) (int64, State, error) {
	return pgLockMachine(ctx, w.tx, name)
}

func (w pgTx) deleteMACs(ctx context.Context, id int64) error {
	_, err := w.tx.Exec(ctx, `DELETE FROM machine_macs WHERE machine_id = $1`, id)
	return err
}

func (w pgTx) setColumn(ctx context.Context, id int64, name string, c colSet) error {
	// c.col comes from preparePatch's fixed list, never from input.
	if _, err := w.tx.Exec(ctx, `UPDATE machines SET `+c.col+` = $1 WHERE id = $2`, c.val, id); err != nil {
		var ip string
		if c.col == "ip" { // the one patched column with a unique index
			ip, _ = c.val.(string)
		}
		return pgMachineConflict(err, name, ip)
	}
	return nil
}

func (w pgTx) touch(ctx context.Context, id int64, now time.Time) error {
	_, err := w.tx.Exec(ctx, `UPDATE machines SET updated_at = $1 WHERE id = $2`, now.UnixNano(), id)
	return err
}

func (w pgTx) setState(ctx context.Context, id int64, to State, reason string, now time.Time) error {
	_, err := w.tx.Exec(ctx, `UPDATE machines SET state = $1, state_reason = $2, updated_at = $3 WHERE id = $4`,
		string(to), reason, now.UnixNano(), id)
	return err
}

func (w pgTx) deleteMachine(ctx context.Context, id int64) error {
	_, err := w.tx.Exec(ctx, `DELETE FROM machines WHERE id = $1`, id)
	return err
}

func (w pgTx) appendEvent(ctx context.Context, e Event) (int64, error) {
	return pgAppendEventTx(ctx, w.tx, e)
}

// CountMachinesByState returns how many machines are in each state.
func (s *Postgres) CountMachinesByState(ctx context.Context) (map[State]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT state, COUNT(*) FROM machines GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanStateCounts(rows)
}

// BMCURL returns the BMC URL with credentials, unsealed.
func (s *Postgres) BMCURL(ctx context.Context, name string) (string, error) {
	var sealed []byte
	err := s.pool.QueryRow(ctx, `SELECT bmc_sealed FROM machines WHERE name = $1`, name).Scan(&sealed)
	if err != nil {
		return "", pgScanErr(err, "machine", name)
	}
	return openBMC(s.sealer, name, sealed)
}
