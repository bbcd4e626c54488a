package inventory

import "testing"

// TestEveryStateBoots: the lifecycle names a boot for every state, and
// only for states.
func TestEveryStateBoots(t *testing.T) {
	want := map[State]Boot{StateDiscovered: BootAgent, StateInspecting: BootAgent, StateDeprovisioning: BootAgent,
		StateReady: BootLocal, StateProvisioned: BootLocal, StateFailed: BootLocal, StateMaintenance: BootMaintenance}
	for _, s := range States {
		b, ok := s.Boot()
		if !ok || b == "" {
			t.Errorf("state %s has no boot", s)
		}
		if w, listed := want[s]; listed && b != w {
			t.Errorf("state %s boots %s, want %s", s, b, w)
		}
	}
	if b, ok := State("exploded").Boot(); ok {
		t.Errorf("unknown state boots %s", b)
	}
}
