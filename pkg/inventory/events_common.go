package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// The events both stores write with each state change, their encoding,
// and the wake-up behind WaitEvents.

// The events state changes write, built in one place for both stores.

func createdEvent(now time.Time, m Machine) Event {
	return Event{Time: now, Machine: m.Name, MAC: m.MACs[0], Type: "machine.created",
		Message: fmt.Sprintf("machine %s enrolled as %s", m.Name, m.State)}
}

// updatedEvent returns the machine.updated event for changed fields, or
// false when the change is not worth an event (power polling).
func updatedEvent(now time.Time, name string, changed []string) (Event, bool) {
	if len(changed) == 0 || onlyPower(changed) {
		return Event{}, false // the power poll would flood the event log
	}
	sort.Strings(changed)
	return Event{Time: now, Machine: name, Type: "machine.updated",
		Message: "changed " + strings.Join(changed, ", "), Data: map[string]any{"fields": changed}}, true
}

func deletedEvent(now time.Time, name string) Event {
	return Event{Time: now, Machine: name, Type: "machine.deleted", Message: "machine " + name + " removed"}
}

func transitionEvent(now time.Time, name string, from, to State, reason string) Event {
	msg := fmt.Sprintf("%s → %s", from, to)
	if reason != "" {
		msg += ": " + reason
	}
	return Event{Time: now, Machine: name, Type: "machine.state", Message: msg,
		Data: map[string]any{"from": string(from), "to": string(to), "reason": reason}}
}

func jobStateEvent(now time.Time, name string, from, to State, reason string, job int64) Event {
	return Event{Time: now, Machine: name, Type: "machine.state",
		Message: fmt.Sprintf("%s → %s: %s", from, to, reason),
		Data:    map[string]any{"from": string(from), "to": string(to), "reason": reason, "job": job}}
}

func jobStartedEvent(now time.Time, j Job, id int64) Event {
	return Event{Time: now, Machine: j.Machine, Type: "job.started",
		Message: fmt.Sprintf("%s job %d started", j.Kind, id), Data: map[string]any{"job": id, "kind": j.Kind}}
}

func jobFinishedEvent(now time.Time, j Job, state, errText string) Event {
	msg := fmt.Sprintf("%s job %d %s", j.Kind, j.ID, state)
	if errText != "" {
		msg += ": " + errText
	}
	return Event{Time: now, Machine: j.Machine, Type: "job." + state, Message: msg,
		Data: map[string]any{"job": j.ID, "kind": j.Kind, "error": errText}}
}

func activeDeleteErr(name string, st State) error {
	return fmt.Errorf("%w: machine %q is %s: wait for the job to end or move it to maintenance first", ErrConflict, name, st)
}

// prepareEvent validates an event given to AppendEvent.
func prepareEvent(e Event, now func() time.Time) (Event, error) {
	if e.Type == "" {
		return Event{}, fmt.Errorf("%w: event type is required", ErrInvalid)
	}
	if e.Time.IsZero() {
		e.Time = now()
	}
	if e.MAC != "" {
		if m, err := NormalizeMAC(e.MAC); err == nil {
			e.MAC = m
		}
	}
	return boundEvent(e), nil
}

func encodeEventData(d map[string]any) (string, error) {
	if len(d) == 0 {
		return "", nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("event data: %w", err)
	}
	return string(b), nil
}

func decodeEventData(e *Event, data string) error {
	if data == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(data), &e.Data); err != nil {
		return fmt.Errorf("event %d data: %w", e.ID, err)
	}
	return nil
}

// eventOrder is the ORDER BY direction of an event query: the newest
// events are read from the end.
func eventOrder(f EventFilter) string {
	if f.Newest {
		return "DESC"
	}
	return "ASC"
}

// oldestFirst reads an event query's rows and returns them oldest first
// whichever end they were read from.
func oldestFirst(f EventFilter, rows rowScanner) ([]Event, error) {
	evs, err := scanAll(rows, scanEvent)
	if err != nil {
		return nil, err
	}
	if f.Newest {
		slices.Reverse(evs)
	}
	return evs, nil
}

func eventLimit(n int) int {
	if n <= 0 || n > 10000 {
		return 10000
	}
	return n
}

// waker lets WaitEvents callers sleep until an event id above theirs is
// known to have committed.
type waker struct {
	mu   sync.Mutex
	wake chan struct{} // closed and replaced on every new event
	last int64
}

func newWaker(last int64) *waker {
	return &waker{wake: make(chan struct{}), last: last}
}

// notify records that event id has committed and wakes waiters if it is
// new.
func (w *waker) notify(id int64) {
	if id == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if id <= w.last {
		return
	}
	w.last = id
	close(w.wake)
	w.wake = make(chan struct{})
}

// wait blocks until an event above since is known or ctx ends.
func (w *waker) wait(ctx context.Context, since int64) error {
	for {
		w.mu.Lock()
		last, wake := w.last, w.wake
		w.mu.Unlock()
		if last > since {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		}
	}
}
