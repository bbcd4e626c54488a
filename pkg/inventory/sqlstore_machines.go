package inventory

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// CreateMachine enrols a machine. A machine without a state starts as new.
func (s *sqlStore) CreateMachine(ctx context.Context, m Machine) (Machine, error) {
	name, err := createMachine(ctx, s, s.sealer, s.now, m)
	if err != nil {
		return Machine{}, err
	}
	return s.GetMachine(ctx, name)
}

// machineConflict turns a unique violation on machines (on PostgreSQL, a
// race lost to another metald) into the conflict the checks would have
// reported.
func (w sqlTx) machineConflict(err error, name, ip, ip6 string) error {
	c, ok := w.d.unique(err)
	switch {
	case ok && c == "machines_ip":
		return fmt.Errorf("%w: ip %s is already reserved for another machine", ErrConflict, ip)
	case ok && c == "machines_ip6":
		return fmt.Errorf("%w: ip6 %s is already reserved for another machine", ErrConflict, ip6)
	case ok:
		return fmt.Errorf("%w: machine %q already exists", ErrConflict, name)
	}
	return err
}

// insertMachine implements machineTx.
func (w sqlTx) insertMachine(ctx context.Context, m Machine, bmcShown string, bmcSealed []byte, now time.Time) (int64, error) {
	id, err := w.insertID(ctx, `INSERT INTO machines (name, uuid, serial, state, ip, ip6, bmc_url, bmc_sealed, created_at, updated_at)
		VALUES (?,?,?,?,?,?,?,?,?,?)`, m.Name, m.UUID, m.Serial, string(m.State), m.IP, m.IP6, bmcShown, bmcSealed, now.UnixNano(), now.UnixNano())
	if err != nil {
		return 0, w.machineConflict(err, m.Name, m.IP, m.IP6)
	}
	return id, nil
}

// holderQueries find the machine, other than the second argument,
// holding a name, MAC or IP (the first).
var holderQueries = [...]string{
	holdName: `SELECT name FROM machines WHERE name = ? AND id <> ?`,
	holdMAC: `SELECT m.name FROM machine_macs x JOIN machines m ON m.id = x.machine_id
		WHERE x.mac = ? AND x.machine_id <> ?`,
	holdIP:  `SELECT name FROM machines WHERE ip = ? AND id <> ?`,
	holdIP6: `SELECT name FROM machines WHERE ip6 = ? AND id <> ?`,
}

// holder implements machineTx.
func (w sqlTx) holder(ctx context.Context, kind holdKind, key string, self int64) (string, bool, error) {
	var other string
	err := w.queryRow(ctx, holderQueries[kind], key, self).Scan(&other)
	if noRows(err) {
		return "", false, nil
	}
	return other, err == nil, err
}

// insertMACs implements machineTx.
func (w sqlTx) insertMACs(ctx context.Context, id int64, macs []string) error {
	for i, mac := range macs {
		if _, err := w.exec(ctx, `INSERT INTO machine_macs (mac, machine_id, position) VALUES (?,?,?)`, mac, id, i); err != nil {
			if _, ok := w.d.unique(err); ok {
				return fmt.Errorf("%w: mac %s already belongs to another machine", ErrConflict, mac)
			}
			return err
		}
	}
	return nil
}

// mergeTags implements machineTx.
func (w sqlTx) mergeTags(ctx context.Context, id int64, tags map[string]string) error {
	for k, v := range tags {
		var err error
		if v == "" {
			_, err = w.exec(ctx, `DELETE FROM machine_tags WHERE machine_id = ? AND key = ?`, id, k)
		} else {
			_, err = w.exec(ctx, `INSERT INTO machine_tags (machine_id, key, value) VALUES (?,?,?)
				ON CONFLICT (machine_id, key) DO UPDATE SET value = excluded.value`, id, k, v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// lockMachine implements machineTx: a machine's row id and state, its
// row locked until the transaction ends where the dialect has row locks
// (two metalds changing one machine take turns); SQLite's BEGIN
// IMMEDIATE already holds the database's write lock.
func (w sqlTx) lockMachine(ctx context.Context, name string) (int64, State, error) {
	var id int64
	var st string
	err := w.queryRow(ctx, `SELECT id, state FROM machines WHERE name = ?`+w.d.forUpdate(), name).Scan(&id, &st)
	return id, State(st), scanErr(err, "machine", name)
}

// GetMachine returns a machine by name.
func (s *sqlStore) GetMachine(ctx context.Context, name string) (Machine, error) {
	return machineByName(ctx, s.queryMachines, `WHERE name = ?`, name)
}

// MachineByMAC returns the machine owning a MAC, in any notation.
func (s *sqlStore) MachineByMAC(ctx context.Context, mac string) (Machine, error) {
	return machineByMAC(ctx, s.queryMachines, `WHERE id = (SELECT machine_id FROM machine_macs WHERE mac = ?)`, mac)
}

// MachineByUUID returns the machine with a system UUID (any letter case).
func (s *sqlStore) MachineByUUID(ctx context.Context, uuid string) (Machine, error) {
	return machineByUUID(ctx, s.queryMachines, `WHERE lower(uuid) = ?`, uuid)
}

// ListMachines returns machines ordered by name (bytewise on both
// databases: the PostgreSQL schema collates names as "C").
func (s *sqlStore) ListMachines(ctx context.Context, f MachineFilter) ([]Machine, error) {
	var where []string
	var args []any
	if f.State != "" {
		where = append(where, `state = ?`)
		args = append(args, string(f.State))
	}
	keys := make([]string, 0, len(f.Tags))
	for k := range f.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		where = append(where, `id IN (SELECT machine_id FROM machine_tags WHERE key = ? AND value = ?)`)
		args = append(args, k, f.Tags[k])
	}
	clause := ""
	if len(where) > 0 {
		clause = "WHERE " + strings.Join(where, " AND ")
	}
	return s.queryMachines(ctx, clause+` ORDER BY name`, args...)
}

// queryMachines loads machines and, in two more queries, their MACs and
// tags: those of at most 500 machines by id, those of more by the same
// clause as a sub-select.
func (s *sqlStore) queryMachines(ctx context.Context, clause string, args ...any) ([]Machine, error) {
	rows, err := s.query(ctx, `SELECT `+machineCols+` FROM machines `+clause, args...)
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
	in := "machine_id IN (SELECT id FROM machines " + clause + ")"
	qargs := args
	if len(mr.ids) <= 500 {
		in = "machine_id IN (?" + strings.Repeat(",?", len(mr.ids)-1) + ")"
		qargs = make([]any, len(mr.ids))
		for i, id := range mr.ids {
			qargs[i] = id
		}
	}
	mrows, err := s.query(ctx, `SELECT machine_id, mac FROM machine_macs WHERE `+stripOrder(in)+` ORDER BY machine_id, position`, qargs...)
	if err != nil {
		return nil, err
	}
	err = mr.fillMACs(mrows)
	mrows.Close()
	if err != nil {
		return nil, err
	}
	trows, err := s.query(ctx, `SELECT machine_id, key, value FROM machine_tags WHERE `+stripOrder(in), qargs...)
	if err != nil {
		return nil, err
	}
	defer trows.Close()
	if err := mr.fillTags(trows); err != nil {
		return nil, err
	}
	return mr.list, nil
}

// stripOrder removes an ORDER BY from a sub-select clause.
func stripOrder(s string) string {
	if i := strings.Index(s, " ORDER BY"); i >= 0 {
		return s[:i] + ")"
	}
	return s
}
