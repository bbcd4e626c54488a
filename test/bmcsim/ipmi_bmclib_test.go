package bmcsim_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metal-iaas/metal/pkg/bmc"
	"github.com/metal-iaas/metal/test/bmcsim"
)

func startIPMISim(t *testing.T, vm []string) *bmcsim.IPMISim {
	t.Helper()
	need(t, "ipmi_sim", "openipmi")
	need(t, "ipmitool", "ipmitool")
	if vm != nil {
		need(t, vm[0], "qemu-system-x86")
	}
	sim, err := bmcsim.StartIPMISim(context.Background(), bmcsim.IPMIConfig{Dir: t.TempDir(), User: "admin", Password: "ipmi-secret", VM: vm})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

func ipmitoolPower(t *testing.T, sim *bmcsim.IPMISim) bmc.PowerState {
	t.Helper()
	out, err := sim.Ipmitool(context.Background(), "chassis", "power", "status")
	if err != nil {
		t.Fatalf("ipmitool: %v: %s", err, out)
	}
	return bmc.NormalizePowerState(out)
}

// TestIPMIQEMU drives ipmi_sim through pkg/bmc (bmclib's ipmitool
// provider); chassis control starts and stops a real QEMU VM.
func TestIPMIQEMU(t *testing.T) {
	sim := startIPMISim(t, bmcsim.DefaultVM())
	ep := mustParse(t, sim.URL())
	m := newManager(t, 20*time.Second)
	ctx := context.Background()

	if err := m.Verify(ctx, ep); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if st, err := m.PowerStatus(ctx, ep); err != nil || st != bmc.PowerOff {
		t.Fatalf("PowerStatus = %v, %v; want off", st, err)
	}
	if err := m.SetBootDevice(ctx, ep, bmc.BootPXE, false, false); err != nil {
		t.Fatalf("SetBootDevice: %v", err)
	}
	if got := sim.BootDevice(); got != "pxe" {
		t.Fatalf("chassis control boot device = %q, want pxe (log %v)", got, sim.ChassisLog())
	}
	if err := m.PowerOn(ctx, ep); err != nil {
		t.Fatalf("PowerOn: %v", err)
	}
	pid := sim.VMPID()
	if pid == 0 {
		t.Fatalf("no VM process after PowerOn (log %v)", sim.ChassisLog())
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		t.Fatalf("VM process %d: %v", pid, err)
	}
	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if !strings.Contains(string(cmdline), "qemu-system-x86_64") || sim.VMBootArg() != "n" {
		t.Fatalf("VM %q started with -boot %q, want qemu with -boot n", cmdline, sim.VMBootArg())
	}
	st, err := m.PowerStatus(ctx, ep)
	if err != nil || st != bmc.PowerOn {
		t.Fatalf("PowerStatus = %v, %v; want on", st, err)
	}
	if got := ipmitoolPower(t, sim); got != st {
		t.Fatalf("ipmitool says %v, pkg/bmc says %v", got, st)
	}
	// Reset restarts the VM (new process).
	if err := m.PowerReset(ctx, ep); err != nil {
		t.Fatalf("PowerReset: %v", err)
	}
	if p2 := sim.VMPID(); p2 == 0 || p2 == pid {
		t.Fatalf("reset: VM pid %d -> %d, want a new process", pid, p2)
	}
	pid = sim.VMPID()
	if err := m.PowerOff(ctx, ep); err != nil {
		t.Fatalf("PowerOff: %v", err)
	}
	if sim.VMPID() != 0 || syscall.Kill(pid, 0) == nil {
		t.Fatalf("VM %d still runs after PowerOff", pid)
	}
	st, err = m.PowerStatus(ctx, ep)
	if err != nil || st != bmc.PowerOff {
		t.Fatalf("PowerStatus = %v, %v; want off", st, err)
	}
	if got := ipmitoolPower(t, sim); got != st {
		t.Fatalf("ipmitool says %v, pkg/bmc says %v", got, st)
	}
	// Boot from disk next: the VM starts with -boot c.
	if err := m.SetBootDevice(ctx, ep, bmc.BootDisk, false, true); err != nil {
		t.Fatal(err)
	}
	if err := m.PowerOn(ctx, ep); err != nil {
		t.Fatal(err)
	}
	if sim.VMPID() == 0 || sim.VMBootArg() != "c" {
		t.Fatalf("after disk boot: pid %d boot %q", sim.VMPID(), sim.VMBootArg())
	}
	if err := m.PowerSoft(ctx, ep); err != nil {
		t.Fatalf("PowerSoft: %v", err)
	}
	if sim.VMPID() != 0 {
		t.Fatal("VM runs after soft off")
	}
	// Cycling a machine that is off powers it on; cycling it when on
	// leaves it on.
	if err := m.PowerCycle(ctx, ep); err != nil || sim.VMPID() == 0 {
		t.Fatalf("cycle when off: %v, vm pid %d", err, sim.VMPID())
	}
	if err := m.PowerCycle(ctx, ep); err != nil {
		t.Fatalf("cycle when on: %v", err)
	}
	if err := m.PowerOff(ctx, ep); err != nil || sim.VMPID() != 0 {
		t.Fatalf("off: %v, vm pid %d", err, sim.VMPID())
	}
	if err := m.VirtualMediaInsert(ctx, ep, "http://127.0.0.1/x.iso"); !errors.Is(err, bmc.ErrUnsupported) {
		t.Fatalf("virtual media over IPMI: %v, want ErrUnsupported", err)
	}
	log := sim.ChassisLog()
	for _, want := range []string{"set boot pxe", "set power 1", "set reset 1", "set power 0", "set shutdown 1"} {
		if !slices.Contains(log, want) {
			t.Errorf("chassis control never got %q: %v", want, log)
		}
	}
}
