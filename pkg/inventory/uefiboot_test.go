package inventory

import (
	"context"
	"errors"
	"testing"
)

// TestUEFIBootPatch: a machine's UEFI boot chain is stored, read back by
// every lookup, reset with "default", and anything else is refused
// without changing the machine.
func TestUEFIBootPatch(t *testing.T) {
	forEachStore(t, func(t *testing.T, env *testEnv) {
		s := env.s
		ctx := context.Background()
		if _, err := s.CreateMachine(ctx, Machine{Name: "m1", MACs: []string{"52:54:00:aa:0b:01"}}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ in, want string }{{"shim", "shim"}, {" IPXE ", "ipxe"}, {"default", ""}, {"shim", "shim"}} {
			in := tc.in
			m, err := s.UpdateMachine(ctx, "m1", MachinePatch{UEFIBoot: &in})
			if err != nil || m.UEFIBoot != tc.want {
				t.Fatalf("uefi boot %q: %q, %v; want %q", tc.in, m.UEFIBoot, err, tc.want)
			}
		}
		bad := "grub"
		if _, err := s.UpdateMachine(ctx, "m1", MachinePatch{UEFIBoot: &bad}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("uefi boot grub: %v, want ErrInvalid", err)
		}
		byMAC, err := s.MachineByMAC(ctx, "52:54:00:aa:0b:01")
		if err != nil || byMAC.UEFIBoot != "shim" {
			t.Fatalf("by MAC: %q, %v; want shim kept", byMAC.UEFIBoot, err)
		}
		list, _ := s.ListMachines(ctx, MachineFilter{})
		if len(list) != 1 || list[0].UEFIBoot != "shim" {
			t.Fatalf("list: %+v", list)
		}
	})
}
