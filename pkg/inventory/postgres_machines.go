package inventory

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// CreateMachine enrols a machine. A machine without a state starts as new.
func (s *Postgres) CreateMachine(ctx context.Context, m Machine) (Machine, error) {
	name, err := createMachine(ctx, s, s.sealer, s.now, m)
	if err != nil {
		return Machine{}, err
	}
	return s.GetMachine(ctx, name)
}

// pgMachineConflict turns a unique violation on machines (lost race with
// another metald) into the conflict the checks would have reported.
func pgMachineConflict(err error, name, ip string) error {
	c, ok := pgUnique(err)
	switch {
	case ok && c == "machines_ip":
		return fmt.Errorf("%w: ip %s is already reserved for another machine", ErrConflict, ip)
	case ok:
		return fmt.Errorf("%w: machine %q already exists", ErrConflict, name)
	}
	return err
}

// insertMachine implements machineTx.
func (w pgTx) insertMachine(ctx context.Context, m Machine, bmcShown string, bmcSealed []byte, now time.Time) (int64, error) {
	var id int64
	err := w.tx.QueryRow(ctx, `INSERT INTO machines (name, uuid, serial, state, ip, bmc_url, bmc_sealed, created_at, updated_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) RETURNING id`, m.Name, m.UUID, m.Serial, string(m.State), m.IP, bmcShown, bmcSealed,
		now.UnixNano(), now.UnixNano()).Scan(&id)
	if err != nil {
		return 0, pgMachineConflict(err, m.Name, m.IP)
	}
	return id, nil
}

// pgHolderQueries find the machine, other than $2, holding a name, MAC
// or IP ($1).
var pgHolderQueries = [...]string{
	holdName: `SELECT name FROM machines WHERE name = $1 AND id <> $2`,
	holdMAC: `SELECT m.name FROM machine_macs x JOIN machines m ON m.id = x.machine_id
		WHERE x.mac = $1 AND x.machine_id <> $2`,
	holdIP: `SELECT name FROM machines WHERE ip = $1 AND id <> $2`,
}

// holder implements machineTx.
func (w pgTx) holder(ctx context.Context, kind holdKind, key string, self int64) (string, bool, error) {
	var other string
	err := w.tx.QueryRow(ctx, pgHolderQueries[kind], key, self).Scan(&other)
	if pgNoRows(err) {
		return "", false, nil
	}
	return other, err == nil, err
}

// insertMACs implements machineTx.
func (w pgTx) insertMACs(ctx context.Context, id int64, macs []string) error {
	for i, mac := range macs {
		if _, err := w.tx.Exec(ctx, `INSERT INTO machine_macs (mac, machine_id, position) VALUES ($1,$2,$3)`, mac, id, i); err != nil {
			if _, ok := pgUnique(err); ok {
				return fmt.Errorf("%w: mac %s already belongs to another machine", ErrConflict, mac)
			}
			return err
		}
	}
	return nil
}

// mergeTags implements machineTx.
func (w pgTx) mergeTags(ctx context.Context, id int64, tags map[string]string) error {
	for k, v := range tags {
		var err error
		if v == "" {
			_, err = w.tx.Exec(ctx, `DELETE FROM machine_tags WHERE machine_id = $1 AND key = $2`, id, k)
		} else {
			_, err = w.tx.Exec(ctx, `INSERT INTO machine_tags (machine_id, key, value) VALUES ($1,$2,$3)
				ON CONFLICT (machine_id, key) DO UPDATE SET value = excluded.value`, id, k, v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// GetMachine returns a machine by name.
func (s *Postgres) GetMachine(ctx context.Context, name string) (Machine, error) {
	return machineByName(ctx, s.queryMachines, `WHERE name = $1`, name)
}

// MachineByMAC returns the machine owning a MAC, in any notation.
func (s *Postgres) MachineByMAC(ctx context.Context, mac string) (Machine, error) {
	return machineByMAC(ctx, s.queryMachines, `WHERE id = (SELECT machine_id FROM machine_macs WHERE mac = $1)`, mac)
}

// MachineByUUID returns the machine with a system UUID (any letter case).
func (s *Postgres) MachineByUUID(ctx context.Context, uuid string) (Machine, error) {
	return machineByUUID(ctx, s.queryMachines, `WHERE lower(uuid) = $1`, uuid)
}

// ListMachines returns machines ordered by name (bytewise, as SQLite).
func (s *Postgres) ListMachines(ctx context.Context, f MachineFilter) ([]Machine, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.State != "" {
		where = append(where, `state = `+arg(string(f.State)))
	}
	keys := make([]string, 0, len(f.Tags))
	for k := range f.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		where = append(where, `id IN (SELECT machine_id FROM machine_tags WHERE key = `+arg(k)+` AND value = `+arg(f.Tags[k])+`)`)
	}
	clause := ""
	if len(where) > 0 {
		clause = "WHERE " + strings.Join(where, " AND ")
	}
	return s.queryMachines(ctx, clause+` ORDER BY name`, args...)
}

// queryMachines loads machines and, in two more queries, their MACs and
// tags.
func (s *Postgres) queryMachines(ctx context.Context, clause string, args ...any) ([]Machine, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+machineCols+` FROM machines `+clause, args...)
	if err != nil {
		return nil, err
	}
	mr, err := scanMachines(rows)
	rows.Close() // give the connection back before the next query
	if err != nil {
		return nil, err
	}
	if len(mr.list) == 0 {
		return mr.list, nil
	}
	mrows, err := s.pool.Query(ctx, `SELECT machine_id, mac FROM machine_macs WHERE machine_id = ANY($1) ORDER BY machine_id, position`, mr.ids)
	if err != nil {
		return nil, err
	}
	err = mr.fillMACs(mrows)
	mrows.Close()
	if err != nil {
		return nil, err
	}
	trows, err := s.pool.Query(ctx, `SELECT machine_id, key, value FROM machine_tags WHERE machine_id = ANY($1)`, mr.ids)
	if err != nil {
		return nil, err
	}
	defer trows.Close()
	if err := mr.fillTags(trows); err != nil {
		return nil, err
	}
	return mr.list, nil
}

// pgLockMachine returns a machine's row id and state within tx and holds
// its row lock until the transaction ends: two metalds changing one
// machine take turns.
func pgLockMachine(ctx context.Context, tx pgx.Tx, name string) (int64, State, error) {
	var id int64
	var st string
	err := tx.QueryRow(ctx, `SELECT id, state FROM machines WHERE name = $1 FOR UPDATE`, name).Scan(&id, &st)
	return id, State(st), pgScanErr(err, "machine", name)
}
