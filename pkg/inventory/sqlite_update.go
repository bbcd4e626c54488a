package inventory

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
)

// UpdateMachine applies a patch. Every change is validated before any is
// written, and written with a machine.updated event in one transaction.
func (s *SQLite) UpdateMachine(ctx context.Context, name string, p MachinePatch) (Machine, error) {
	var macs []string
	var err error
	if p.MACs != nil {
		if macs, err = NormalizeMACs(*p.MACs); err != nil {
			return Machine{}, err
		}
	}
	var ip string
	if p.IP != nil {
		if ip, err = NormalizeIP(*p.IP); err != nil {
			return Machine{}, err
		}
	}
	if err := ValidateTags(p.Tags); err != nil {
		return Machine{}, err
	}
	var bmcShown string
	var bmcSealed []byte
	if p.BMC != nil {
		if bmcShown, bmcSealed, err = s.sealBMC(*p.BMC); err != nil {
			return Machine{}, err
		}
	}
	now := s.now()
	var evID int64
	err = s.tx(ctx, func(tx *sql.Tx) error {
		id, _, err := machineID(ctx, tx, name)
		if err != nil {
			return err
		}
		var changed []string
		set := func(col string, v any) error {
			changed = append(changed, col)
			_, err := tx.ExecContext(ctx, `UPDATE machines SET `+col+` = ? WHERE id = ?`, v, id)
			return err
		}
		if p.MACs != nil || p.IP != nil {
			if err := s.checkFree(ctx, tx, name, macs, ip, id); err != nil {
				return err
			}
		}
		if p.MACs != nil {
			if _, err := tx.ExecContext(ctx, `DELETE FROM machine_macs WHERE machine_id = ?`, id); err != nil {
				return err
			}
			if err := insertMACs(ctx, tx, id, macs); err != nil {
				return err
			}
			changed = append(changed, "macs")
		}
		if p.IP != nil {
			if err := set("ip", ip); err != nil {
				return err
			}
		}
		if p.UUID != nil {
			if err := set("uuid", strings.TrimSpace(*p.UUID)); err != nil {
				return err
			}
		}
		if p.Serial != nil {
			if err := set("serial", strings.TrimSpace(*p.Serial)); err != nil {
				return err
			}
		}
		if p.BMC != nil {
			if err := set("bmc_url", bmcShown); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE machines SET bmc_sealed = ? WHERE id = ?`, bmcSealed, id); err != nil {
				return err
			}
		}
		if p.Hardware != nil {
			if err := set("hardware", string(p.Hardware)); err != nil {
				return err
			}
		}
		if p.PowerState != nil {
			if err := set("power_state", *p.PowerState); err != nil {
				return err
			}
		}
		if p.PowerAt != nil {
			if err := set("power_checked_at", unixNano(*p.PowerAt)); err != nil {
				return err
			}
		}
		if len(p.Tags) > 0 {
			if err := mergeTags(ctx, tx, id, p.Tags); err != nil {
				return err
			}
			changed = append(changed, "tags")
		}
		if len(changed) == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE machines SET updated_at = ? WHERE id = ?`, now.UnixNano(), id); err != nil {
			return err
		}
		if onlyPower(changed) {
			return nil // the power poll would flood the event log
		}
		sort.Strings(changed)
		evID, err = appendEventTx(ctx, tx, Event{Time: now, Machine: name, Type: "machine.updated",
			Message: "changed " + strings.Join(changed, ", "), Data: map[string]any{"fields": changed}})
		return err
	})
	if err != nil {
		return Machine{}, err
	}
	s.notify(evID)
	return s.GetMachine(ctx, name)
}

func onlyPower(cols []string) bool {
	for _, c := range cols {
		if c != "power_state" && c != "power_checked_at" {
			return false
		}
	}
	return true
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
			return fmt.Errorf("%w: machine %q is %s: wait for the job to end or move it to maintenance first", ErrConflict, name, st)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM machines WHERE id = ?`, id); err != nil {
			return err
		}
		evID, err = appendEventTx(ctx, tx, Event{Time: now, Machine: name, Type: "machine.deleted", Message: "machine " + name + " removed"})
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
		msg := fmt.Sprintf("%s → %s", from, to)
		if reason != "" {
			msg += ": " + reason
		}
		evID, err = appendEventTx(ctx, tx, Event{Time: now, Machine: name, Type: "machine.state", Message: msg,
			Data: map[string]any{"from": string(from), "to": string(to), "reason": reason}})
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
