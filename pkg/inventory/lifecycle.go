package inventory

import (
	"fmt"
	"slices"
	"strings"
)

// State is a machine's lifecycle state (SPEC §3).
type State string

const (
	StateDiscovered     State = "discovered"
	StateNew            State = "new"
	StateInspecting     State = "inspecting"
	StateReady          State = "ready"
	StateProvisioning   State = "provisioning"
	StateProvisioned    State = "provisioned"
	StateDeprovisioning State = "deprovisioning"
	StateFailed         State = "failed"
	StateMaintenance    State = "maintenance"
)

// States lists every state in lifecycle order.
var States = []State{
	StateDiscovered, StateNew, StateInspecting, StateReady, StateProvisioning,
	StateProvisioned, StateDeprovisioning, StateFailed, StateMaintenance,
}

// transitions is the lifecycle: from → allowed targets. It is the only
// place the lifecycle is written down.
var transitions = map[State][]State{
	StateDiscovered:     {StateNew, StateInspecting, StateMaintenance},
	StateNew:            {StateInspecting, StateReady, StateMaintenance},
	StateInspecting:     {StateReady, StateFailed, StateMaintenance},
	StateReady:          {StateInspecting, StateProvisioning, StateMaintenance},
	StateProvisioning:   {StateProvisioned, StateFailed, StateMaintenance},
	StateProvisioned:    {StateDeprovisioning, StateMaintenance},
	StateDeprovisioning: {StateReady, StateFailed, StateMaintenance},
	StateFailed:         {StateInspecting, StateProvisioning, StateDeprovisioning, StateReady, StateMaintenance},
	StateMaintenance:    {StateNew, StateReady, StateProvisioned, StateInspecting, StateDeprovisioning},
}

// Boot is what a machine boots into from the network.
type Boot string

// Boots.
const (
	BootAgent       Boot = "agent"       // the stage-2 agent (jobs run or wait for it)
	BootLocal       Boot = "local"       // its own disk
	BootMaintenance Boot = "maintenance" // nothing: metald leaves it alone
)

// boots is which boot each state gets; like transitions, it is written
// down only here (pkg/pxe renders the script of a boot, not of a state).
var boots = map[State]Boot{
	StateDiscovered:     BootAgent,
	StateNew:            BootAgent,
	StateInspecting:     BootAgent,
	StateProvisioning:   BootAgent,
	StateDeprovisioning: BootAgent,
	StateReady:          BootLocal,
	StateProvisioned:    BootLocal,
	StateFailed:         BootLocal,
	StateMaintenance:    BootMaintenance,
}

// Boot is what a machine in state s boots into from the network; ok is
// false for an unknown state.
func (s State) Boot() (b Boot, ok bool) {
	b, ok = boots[s]
	return b, ok
}

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	_, ok := transitions[s]
	return ok
}

// Active reports whether a job is running against a machine in this state.
func (s State) Active() bool {
	return s == StateInspecting || s == StateProvisioning || s == StateDeprovisioning
}

// ParseState validates a state name.
func ParseState(s string) (State, error) {
	st := State(strings.ToLower(strings.TrimSpace(s)))
	if !st.Valid() {
		return "", fmt.Errorf("%w: unknown state %q (known: %s)", ErrInvalid, s, joinStates(States))
	}
	return st, nil
}

// CheckTransition returns nil if from → to is allowed, and an error naming
// the allowed targets otherwise.
func CheckTransition(from, to State) error {
	if !to.Valid() {
		return fmt.Errorf("%w: unknown state %q", ErrInvalid, to)
	}
	allowed, ok := transitions[from]
	if !ok {
		return fmt.Errorf("%w: machine is in unknown state %q", ErrInvalidTransition, from)
	}
	if slices.Contains(allowed, to) {
		return nil
	}
	return fmt.Errorf("%w: %s → %s is not allowed (from %s: %s)",
		ErrInvalidTransition, from, to, from, joinStates(allowed))
}

// AllowedTransitions returns the states reachable from s.
func AllowedTransitions(s State) []State {
	return slices.Clone(transitions[s])
}

func joinStates(ss []State) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, ", ")
}
