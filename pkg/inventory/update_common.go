package inventory

import (
	"context"
	"fmt"
	"time"
)

// This file holds the order of the writes that change an existing
// machine, for both stores. Each store supplies its SQL as a machineTx
// bound to one of its transactions; what is written, in which order, with
// which checks and events, is decided here once.

// machineTx is one store's SQL for changing machines inside an open
// transaction.
type machineTx interface {
	// lockMachine returns a machine's row id and state, or ErrNotFound.
	// PostgreSQL holds the row lock until the transaction ends.
	lockMachine(ctx context.Context, name string) (int64, State, error)
	// checkFree refuses a MAC or reserved IP another machine than self
	// holds (and, for self 0, a taken name), naming that machine.
	checkFree(ctx context.Context, name string, macs []string, ip string, self int64) error
	// replaceMACs sets a machine's MACs, in order.
	replaceMACs(ctx context.Context, id int64, macs []string) error
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

// applyPatch writes a validated patch to machine name: conflict checks,
// MACs, columns in preparePatch's order, tags, then updated_at and the
// machine.updated event if anything changed. It returns the event's id, 0
// when there is none.
func applyPatch(ctx context.Context, tx machineTx, name string, pp preparedPatch, now time.Time) (int64, error) {
	id, _, err := tx.lockMachine(ctx, name)
	if err != nil {
		return 0, err
	}
	if pp.setMACs || pp.checkIP {
		if err := tx.checkFree(ctx, name, pp.macs, pp.ip, id); err != nil {
			return 0, err
		}
	}
	if pp.setMACs {
		if err := tx.replaceMACs(ctx, id, pp.macs); err != nil {
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
