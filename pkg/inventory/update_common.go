package inventory

import (
	"context"
	"fmt"
	"time"
)

// This file holds the order of the writes that create or change a
// machine. The SQL store core supplies its SQL as a machineTx (sqlTx)
// bound to one transaction; what is written, in which order, with which
// checks and events, is decided here, apart from the SQL.

// machineTx is the SQL for changing machines inside an open
// transaction.
type machineTx interface {
	// lockMachine returns a machine's row id and state, or ErrNotFound.
	// PostgreSQL holds the row lock until the transaction ends.
	lockMachine(ctx context.Context, name string) (int64, State, error)
	// holder returns the name of the machine, other than self, that
	// holds a name, MAC or IP.
	holder(ctx context.Context, kind holdKind, key string, self int64) (string, bool, error)
	// insertMachine creates the machine's row and returns its id.
	insertMachine(ctx context.Context, m Machine, bmcShown string, bmcSealed []byte, now time.Time) (int64, error)
	// deleteMACs removes all of a machine's MACs.
	deleteMACs(ctx context.Context, id int64) error
	// insertMACs adds MACs to a machine, in order.
	insertMACs(ctx context.Context, id int64, macs []string) error
	// setColumn writes one column of a patch; name is the machine's.
	setColumn(ctx context.Context, id int64, name string, c colSet) error
	// mergeTags sets tags; an empty value deletes the key.
	mergeTags(ctx context.Context, id int64, tags map[string]string) error
	// touch sets updated_at.
	touch(ctx context.Context, id int64, now time.Time) error
	// setState writes state, state_reason and updated_at.
	setState(ctx context.Context, id int64, to State, reason string, now time.Time) error
	// deleteMachine removes the machine's row (and, by cascade, its MACs
	// and tags).
	deleteMachine(ctx context.Context, id int64) error
	// appendEvent inserts an event and returns its id.
	appendEvent(ctx context.Context, e Event) (int64, error)
}

// holdKind is what a machine can hold that no other machine may.
type holdKind int

const (
	holdName holdKind = iota
	holdMAC
	holdIP
	holdIP6
)

// checkFree refuses a name, MAC or reserved IPv4 or IPv6 address that
// another machine holds, naming that machine. self is the id of the
// machine being changed, 0 for a new one (whose name is checked too).
func checkFree(ctx context.Context, tx machineTx, name string, macs []string, ip, ip6 string, self int64) error {
	if self == 0 {
		if _, taken, err := tx.holder(ctx, holdName, name, 0); err != nil {
			return err
		} else if taken {
			return fmt.Errorf("%w: machine %q already exists", ErrConflict, name)
		}
	}
	for _, mac := range macs {
		if other, taken, err := tx.holder(ctx, holdMAC, mac, self); err != nil {
			return err
		} else if taken {
			return fmt.Errorf("%w: mac %s already belongs to machine %q", ErrConflict, mac, other)
		}
	}
	if ip != "" {
		if other, taken, err := tx.holder(ctx, holdIP, ip, self); err != nil {
			return err
		} else if taken {
			return fmt.Errorf("%w: ip %s is already reserved for machine %q", ErrConflict, ip, other)
		}
	}
	if ip6 != "" {
		if other, taken, err := tx.holder(ctx, holdIP6, ip6, self); err != nil {
			return err
		} else if taken {
			return fmt.Errorf("%w: ip6 %s is already reserved for machine %q", ErrConflict, ip6, other)
		}
	}
	return nil
}

// applyCreate writes a prepared machine (see prepareMachine) with its
// MACs, tags and machine.created event, after refusing a name, MAC or IP
// another machine holds.
func applyCreate(ctx context.Context, tx machineTx, m Machine, bmcShown string, bmcSealed []byte, now time.Time) (int64, error) {
	if err := checkFree(ctx, tx, m.Name, m.MACs, m.IP, m.IP6, 0); err != nil {
		return 0, err
	}
	id, err := tx.insertMachine(ctx, m, bmcShown, bmcSealed, now)
	if err != nil {
		return 0, err
	}
	if err := tx.insertMACs(ctx, id, m.MACs); err != nil {
		return 0, err
	}
	if err := tx.mergeTags(ctx, id, m.Tags); err != nil {
		return 0, err
	}
	return tx.appendEvent(ctx, createdEvent(now, m))
}

// applyPatch writes a validated patch to machine name: conflict checks,
// MACs, columns in preparePatch's order, tags, then updated_at and the
// machine.updated event if anything changed. It returns the event's id, 0
// when there is none.
func applyPatch(ctx context.Context, tx machineTx, name string, pp preparedPatch, now time.Time) (int64, error) {
	id, _, err := tx.lockMachine(ctx, name)
	if err != nil {
		return 0, err
	}
	if pp.setMACs || pp.checkIP || pp.ip6 != nil {
		ip6 := ""
		if pp.ip6 != nil {
			ip6 = *pp.ip6
		}
		if err := checkFree(ctx, tx, name, pp.macs, pp.ip, ip6, id); err != nil {
			return 0, err
		}
	}
	if pp.setMACs {
		if err := tx.deleteMACs(ctx, id); err != nil {
			return 0, err
		}
		if err := tx.insertMACs(ctx, id, pp.macs); err != nil {
			return 0, err
		}
	}
	for _, c := range pp.cols {
		if err := tx.setColumn(ctx, id, name, c); err != nil {
			return 0, err
		}
	}
	if pp.tags != nil {
		if err := tx.mergeTags(ctx, id, pp.tags); err != nil {
			return 0, err
		}
	}
	changed := pp.changed()
	if len(changed) == 0 {
		return 0, nil
	}
	if err := tx.touch(ctx, id, now); err != nil {
		return 0, err
	}
	ev, ok := updatedEvent(now, name, changed)
	if !ok {
		return 0, nil
	}
	return tx.appendEvent(ctx, ev)
}

// applyDelete removes an inactive machine and records machine.deleted.
func applyDelete(ctx context.Context, tx machineTx, name string, now time.Time) (int64, error) {
	id, st, err := tx.lockMachine(ctx, name)
	if err != nil {
		return 0, err
	}
	if st.Active() {
		return 0, activeDeleteErr(name, st)
	}
	if err := tx.deleteMachine(ctx, id); err != nil {
		return 0, err
	}
	return tx.appendEvent(ctx, deletedEvent(now, name))
}

// applyTransition checks and writes a lifecycle transition with its
// machine.state event.
func applyTransition(ctx context.Context, tx machineTx, name string, to State, reason string, now time.Time) (int64, error) {
	id, from, err := tx.lockMachine(ctx, name)
	if err != nil {
		return 0, err
	}
	if err := CheckTransition(from, to); err != nil {
		return 0, fmt.Errorf("machine %q: %w", name, err)
	}
	if err := tx.setState(ctx, id, to, reason, now); err != nil {
		return 0, err
	}
	return tx.appendEvent(ctx, transitionEvent(now, name, from, to, reason))
}
