package inventory

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestPatchWritesInOrder checks, on every store, what applyPatch decides
// for both: a machine may keep its own MACs and IP, a MAC or IP another
// machine holds is refused naming it (and nothing is written), the
// changed fields are named in one machine.updated event, and a power-only
// patch writes no event.
func TestPatchWritesInOrder(t *testing.T) {
	forEachStore(t, func(t *testing.T, env *testEnv) {
		s := env.s
		ctx := context.Background()
		for _, m := range []Machine{
			{Name: "m1", MACs: []string{"52:54:00:aa:00:01"}, IP: "10.0.0.1"},
			{Name: "m2", MACs: []string{"52:54:00:aa:00:02"}, IP: "10.0.0.2"},
		} {
			if _, err := s.CreateMachine(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		own := []string{"52:54:00:AA:00:01", "52:54:00:aa:00:11"}
		ownIP, serial := "10.0.0.1", " S1 "
		m, err := s.UpdateMachine(ctx, "m1", MachinePatch{MACs: &own, IP: &ownIP, Serial: &serial})
		if err != nil {
			t.Fatalf("keeping its own MAC and IP: %v", err)
		}
		if strings.Join(m.MACs, ",") != "52:54:00:aa:00:01,52:54:00:aa:00:11" || m.Serial != "S1" {
			t.Fatalf("patched machine %+v", m)
		}
		evs, err := s.ListEvents(ctx, EventFilter{Machine: "m1", Type: "machine.updated"})
		if err != nil || len(evs) != 1 || !strings.Contains(evs[0].Message, "ip, macs, serial") {
			t.Fatalf("machine.updated events %+v, %v", evs, err)
		}

		theirIP, theirMAC := "10.0.0.2", []string{"52:54:00:aa:00:02"}
		for _, p := range []MachinePatch{{IP: &theirIP, Serial: &serial}, {MACs: &theirMAC, Serial: &serial}} {
			_, err := s.UpdateMachine(ctx, "m1", p)
			if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), `machine "m2"`) {
				t.Fatalf("taking m2's address: %v", err)
			}
		}
		if got, _ := s.GetMachine(ctx, "m1"); got.IP != "10.0.0.1" || len(got.MACs) != 2 {
			t.Fatalf("a refused patch changed m1: %+v", got)
		}

		power, at := "on", time.Unix(1700000000, 0)
		if m, err = s.UpdateMachine(ctx, "m1", MachinePatch{PowerState: &power, PowerAt: &at}); err != nil || m.PowerState != "on" || !m.PowerCheckedAt.Equal(at) {
			t.Fatalf("power patch: %+v, %v", m, err)
		}
		if evs, _ := s.ListEvents(ctx, EventFilter{Machine: "m1", Type: "machine.updated"}); len(evs) != 1 {
			t.Fatalf("a power-only patch wrote an event: %+v", evs)
		}
	})
}
