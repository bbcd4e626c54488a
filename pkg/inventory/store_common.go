package inventory

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// This file holds the logic both stores (SQLite and PostgreSQL) share:
// input preparation, the events every state change writes, token
// formats and the WaitEvents wake-up. The stores differ only in SQL.

// prepareMachine validates a machine to create and returns it with its
// normalised MACs, IP and initial state.
func prepareMachine(m Machine) (Machine, []string, error) {
	if err := ValidateName("name", m.Name); err != nil {
		return Machine{}, nil, err
	}
	macs, err := NormalizeMACs(m.MACs)
	if err != nil {
		return Machine{}, nil, err
	}
	if m.IP, err = NormalizeIP(m.IP); err != nil {
		return Machine{}, nil, err
	}
	if err := ValidateTags(m.Tags); err != nil {
		return Machine{}, nil, err
	}
	if m.State == "" {
		m.State = StateNew
	}
	if m.State != StateNew && m.State != StateDiscovered {
		return Machine{}, nil, fmt.Errorf("%w: state: a machine is created as new or discovered, not %q", ErrInvalid, m.State)
	}
	m.MACs = macs
	return m, macs, nil
}

// sealBMC validates a BMC URL and returns the masked form shown to users
// and the sealed form holding the credentials.
func sealBMC(sealer *Sealer, raw string) (string, []byte, error) {
	if raw == "" {
		return "", nil, nil
	}
	if err := ValidateBMCURL(raw); err != nil {
		return "", nil, err
	}
	return RedactURL(raw), sealer.Seal([]byte(raw)), nil
}

// colSet is one column a patch writes; listed columns are named in the
// machine.updated event.
type colSet struct {
	col    string
	val    any
	listed bool
}

// preparedPatch is a validated MachinePatch.
type preparedPatch struct {
	macs    []string // nil: unchanged
	setMACs bool
	checkIP bool
	ip      string
	cols    []colSet
	tags    map[string]string
}

// preparePatch validates every field of a patch before anything is
// written and lists the column writes in a fixed order.
func preparePatch(sealer *Sealer, p MachinePatch) (preparedPatch, error) {
	var pp preparedPatch
	var err error
	if p.MACs != nil {
		if pp.macs, err = NormalizeMACs(*p.MACs); err != nil {
			return pp, err
		}
		pp.setMACs = true
	}
	if p.IP != nil {
		if pp.ip, err = NormalizeIP(*p.IP); err != nil {
			return pp, err
		}
		pp.checkIP = true
	}
	if err := ValidateTags(p.Tags); err != nil {
		return pp, err
	}
	if p.IP != nil {
		pp.cols = append(pp.cols, colSet{"ip", pp.ip, true})
	}
	if p.UUID != nil {
		pp.cols = append(pp.cols, colSet{"uuid", strings.TrimSpace(*p.UUID), true})
	}
	if p.Serial != nil {
		pp.cols = append(pp.cols, colSet{"serial", strings.TrimSpace(*p.Serial), true})
	}
	if p.BMC != nil {
		shown, sealed, err := sealBMC(sealer, *p.BMC)
		if err != nil {
			return pp, err
		}
		pp.cols = append(pp.cols, colSet{"bmc_url", shown, true}, colSet{"bmc_sealed", sealed, false})
	}
	if p.Hardware != nil {
		pp.cols = append(pp.cols, colSet{"hardware", string(p.Hardware), true})
	}
	if p.PowerState != nil {
		pp.cols = append(pp.cols, colSet{"power_state", *p.PowerState, true})
	}
	if p.PowerAt != nil {
		pp.cols = append(pp.cols, colSet{"power_checked_at", unixNano(*p.PowerAt), true})
	}
	if len(p.Tags) > 0 {
		pp.tags = p.Tags
	}
	return pp, nil
}

// changed lists the fields a prepared patch changes, as the event names
// them.
func (pp preparedPatch) changed() []string {
	var out []string
	for _, c := range pp.cols {
		if c.listed {
			out = append(out, c.col)
		}
	}
	if pp.setMACs {
		out = append(out, "macs")
	}
	if pp.tags != nil {
		out = append(out, "tags")
	}
	return out
}

func onlyPower(cols []string) bool {
	for _, c := range cols {
		if c != "power_state" && c != "power_checked_at" {
			return false
		}
	}
	return true
}

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
	return e, nil
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

func eventLimit(n int) int {
	if n <= 0 || n > 10000 {
		return 10000
	}
	return n
}

func jobLimit(n int) int {
	if n <= 0 || n > 1000 {
		return 1000
	}
	return n
}

// newJobToken returns a fresh agent task token.
func newJobToken() (string, error) {
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	return "mt_" + hex.EncodeToString(raw), nil
}

func tokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

func checkJob(j Job) error {
	if j.Kind == "" || j.Machine == "" {
		return fmt.Errorf("%w: job needs a machine and a kind", ErrInvalid)
	}
	return nil
}

// newAPIToken returns a token id, its secret, and the secret's hash.
func newAPIToken(name string) (id, secret string, hash []byte, err error) {
	if strings.TrimSpace(name) == "" {
		return "", "", nil, fmt.Errorf("%w: token name must not be empty", ErrInvalid)
	}
	idb := make([]byte, 6)
	sec := make([]byte, 24)
	if _, err := rand.Read(idb); err != nil {
		return "", "", nil, err
	}
	if _, err := rand.Read(sec); err != nil {
		return "", "", nil, err
	}
	secret = hex.EncodeToString(sec)
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(idb), secret, sum[:], nil
}

// parseAPIToken splits metal_<id>_<secret>.
func parseAPIToken(s string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || id == "" || secret == "" {
		return "", "", false
	}
	return id, secret, true
}

func jobFinalState(success bool) string {
	if success {
		return JobSucceeded
	}
	return JobFailed
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
