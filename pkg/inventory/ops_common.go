package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// The Store and JobStore writes: validation outside the transaction,
// then the apply* steps inside it. The SQL store core contributes its
// transaction runner (write) and, through storeTx (sqlTx), its SQL; its
// methods only call these and read the result back.

// txRunner is a store's way of writing.
type txRunner interface {
	// write runs fn in one transaction and, once it has committed, wakes
	// WaitEvents callers for the event id fn returned (0: none).
	write(ctx context.Context, fn func(tx storeTx) (int64, error)) error
}

// createMachine returns the new machine's name.
func createMachine(ctx context.Context, w txRunner, sealer *Sealer, clock func() time.Time, m Machine) (string, error) {
	m, err := prepareMachine(m)
	if err != nil {
		return "", err
	}
	bmcShown, bmcSealed, err := sealBMC(sealer, m.BMC)
	if err != nil {
		return "", err
	}
	now := clock()
	err = w.write(ctx, func(tx storeTx) (int64, error) {
		return applyCreate(ctx, tx, m, bmcShown, bmcSealed, now)
	})
	if err != nil {
		return "", err
	}
	return m.Name, nil
}

func updateMachine(ctx context.Context, w txRunner, sealer *Sealer, clock func() time.Time, name string, p MachinePatch) error {
	pp, err := preparePatch(sealer, p)
	if err != nil {
		return err
	}
	now := clock()
	return w.write(ctx, func(tx storeTx) (int64, error) {
		return applyPatch(ctx, tx, name, pp, now)
	})
}

func deleteMachine(ctx context.Context, w txRunner, clock func() time.Time, name string) error {
	now := clock()
	return w.write(ctx, func(tx storeTx) (int64, error) {
		return applyDelete(ctx, tx, name, now)
	})
}

func transition(ctx context.Context, w txRunner, clock func() time.Time, name string, to State, reason string) error {
	now := clock()
	return w.write(ctx, func(tx storeTx) (int64, error) {
		return applyTransition(ctx, tx, name, to, reason, now)
	})
}

func appendEvent(ctx context.Context, w txRunner, clock func() time.Time, e Event) (Event, error) {
	e, err := prepareEvent(e, clock)
	if err != nil {
		return Event{}, err
	}
	err = w.write(ctx, func(tx storeTx) (int64, error) {
		id, err := tx.appendEvent(ctx, e)
		e.ID = id
		return id, err
	})
	if err != nil {
		return Event{}, err
	}
	e.Time = e.Time.UTC()
	return e, nil
}

// startJob returns the new job's id and its agent token.
func startJob(ctx context.Context, w txRunner, sealer *Sealer, clock func() time.Time, j Job, to State, reason string) (int64, string, error) {
	if err := checkJob(j); err != nil {
		return 0, "", err
	}
	token, err := newJobToken()
	if err != nil {
		return 0, "", err
	}
	sealed := sealer.Seal([]byte(token))
	now := clock()
	var id int64
	err = w.write(ctx, func(tx storeTx) (int64, error) {
		var evID int64
		var err error
		id, evID, err = applyStartJob(ctx, tx, j, to, reason, token, sealed, now)
		return evID, err
	})
	return id, token, err
}

// claimJobToken is ClaimJobToken over a store's conditional update,
// which sets the token hash and the address where the job is running
// and unbound or bound to addr, and reports the rows it changed.
func claimJobToken(ctx context.Context, id int64, addr string, get func(context.Context, int64) (Job, error), update func(hash string) (int64, error)) (string, error) {
	if addr == "" {
		return "", fmt.Errorf("%w: job %d: claiming a task needs the agent's address", ErrInvalid, id)
	}
	token, err := newJobToken()
	if err != nil {
		return "", err
	}
	n, err := update(tokenHash(token))
	if err != nil {
		return "", err
	}
	if n == 1 {
		return token, nil
	}
	j, err := get(ctx, id)
	switch {
	case err != nil:
		return "", err
	case j.State != JobRunning:
		return "", fmt.Errorf("%w: job %d is not running", ErrNotFound, id)
	}
	return "", fmt.Errorf("%w: job %d belongs to the agent at %s, not %s", ErrConflict, id, j.AgentAddr, addr)
}

func updateJob(ctx context.Context, w txRunner, clock func() time.Time, id int64, phase string, progress json.RawMessage, deadline time.Time, ev *Event) error {
	now := clock()
	return w.write(ctx, func(tx storeTx) (int64, error) {
		return applyJobUpdate(ctx, tx, id, phase, progress, deadline, ev, now)
	})
}
