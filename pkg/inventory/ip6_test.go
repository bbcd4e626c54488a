package inventory

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestMachineIP6 checks, on every store, a machine's reserved IPv6
// address: stored normalised, refused when another machine holds it
// (naming that machine, on create and on patch), cleared by an empty
// patch, named in machine.updated, and refused when it cannot be a
// machine's address.
func TestMachineIP6(t *testing.T) {
	forEachStore(t, func(t *testing.T, env *testEnv) {
		s := env.s
		ctx := context.Background()
		m1, err := s.CreateMachine(ctx, Machine{Name: "m1", MACs: []string{"52:54:00:aa:00:01"}, IP: "10.0.0.1", IP6: " FD00:0::0005 "})
		if err != nil {
			t.Fatal(err)
		}
		if m1.IP6 != "fd00::5" || m1.IP != "10.0.0.1" {
			t.Fatalf("created %+v, want ip6 fd00::5", m1)
		}
		if got, err := s.MachineByMAC(ctx, "52:54:00:aa:00:01"); err != nil || got.IP6 != "fd00::5" {
			t.Fatalf("read back %+v, %v", got, err)
		}
		_, err = s.CreateMachine(ctx, Machine{Name: "m2", MACs: []string{"52:54:00:aa:00:02"}, IP6: "fd00::5"})
		if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), `ip6 fd00::5 is already reserved for machine "m1"`) {
			t.Fatalf("duplicate ip6 on create: %v", err)
		}
		if _, err := s.CreateMachine(ctx, Machine{Name: "m2", MACs: []string{"52:54:00:aa:00:02"}, IP6: "2001:db8::2"}); err != nil {
			t.Fatal(err)
		}
		taken := "fd00::5"
		if _, err := s.UpdateMachine(ctx, "m2", MachinePatch{IP6: &taken}); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), `machine "m1"`) {
			t.Fatalf("taking m1's ip6: %v", err)
		}
		if got, _ := s.GetMachine(ctx, "m2"); got.IP6 != "2001:db8::2" {
			t.Fatalf("a refused patch changed m2: %+v", got)
		}
		own := "fd00::5"
		if _, err := s.UpdateMachine(ctx, "m1", MachinePatch{IP6: &own}); err != nil {
			t.Fatalf("keeping its own ip6: %v", err)
		}
		none := ""
		if m, err := s.UpdateMachine(ctx, "m1", MachinePatch{IP6: &none}); err != nil || m.IP6 != "" || m.IP != "10.0.0.1" {
			t.Fatalf("clearing ip6: %+v, %v", m, err)
		}
		if _, err := s.UpdateMachine(ctx, "m2", MachinePatch{IP6: &taken}); err != nil {
			t.Fatalf("a freed ip6 is free: %v", err)
		}
		evs, err := s.ListEvents(ctx, EventFilter{Machine: "m2", Type: "machine.updated"})
		if err != nil || len(evs) != 1 || !strings.Contains(evs[0].Message, "ip6") {
			t.Fatalf("machine.updated events %+v, %v", evs, err)
		}
		for _, bad := range []struct{ ip6, want string }{
			{"10.0.0.9", "not an IPv6 address"},
			{"::ffff:10.0.0.9", "not an IPv6 address"},
			{"fd00::zz", "not an IPv6 address"},
			{"fe80::1", "link-local"},
			{"fd00::1%eth0", "zone"},
			{"ff02::1", "cannot be assigned"},
			{"::1", "cannot be assigned"},
			{"::", "cannot be assigned"},
		} {
			_, err := s.CreateMachine(ctx, Machine{Name: "m9", MACs: []string{"52:54:00:aa:00:09"}, IP6: bad.ip6})
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), bad.want) {
				t.Errorf("create with ip6 %q: %v, want invalid naming %q", bad.ip6, err, bad.want)
			}
			v := bad.ip6
			if _, err := s.UpdateMachine(ctx, "m1", MachinePatch{IP6: &v}); !errors.Is(err, ErrInvalid) {
				t.Errorf("patch ip6 %q: %v, want invalid", bad.ip6, err)
			}
		}
	})
}
