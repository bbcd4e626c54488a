package redfish

import (
	"context"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stmcginnis/gofish"
	gfredfish "github.com/stmcginnis/gofish/redfish"

	"github.com/metal-iaas/metal/internal/power"
	"github.com/metal-iaas/metal/pkg/bmc"
	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/test/bmcsim"
	"github.com/metal-iaas/metal/test/testenv"
)

func need(t *testing.T, tool, debPkg string) {
	t.Helper()
	testenv.Tool(t, tool, debPkg)
}

// ipmiBacked is the service in front of one machine whose BMC is an
// ipmi_sim, wired as metald wires it: PowerController over the power
// service (internal/power) over a pkg/bmc Manager.
type ipmiBacked struct {
	sim   *bmcsim.IPMISim
	url   string
	ctl   *PowerController
	store *inventory.SQLite
}

// servicePower adapts the power service like metald does.
type servicePower struct{ svc *power.Service }

func (p servicePower) Power(ctx context.Context, name, action, request string) error {
	return p.svc.MachineFrom(ctx, name, action, power.Origin{Via: "redfish", Request: request})
}

func (p servicePower) BootDevice(ctx context.Context, name, dev string, persistent, efi bool, request string) error {
	return p.svc.MachineBootFrom(ctx, name, dev, persistent, efi, power.Origin{Via: "redfish", Request: request})
}

func startIPMIBacked(t *testing.T) ipmiBacked {
	t.Helper()
	need(t, "ipmi_sim", "openipmi")
	need(t, "ipmitool", "ipmitool")
	sim, err := bmcsim.StartIPMISim(context.Background(), bmcsim.IPMIConfig{Dir: t.TempDir(), User: "admin", Password: "ipmi-pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	ep, err := bmc.ParseURL(sim.URL())
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := bmc.NewManager(bmc.Config{Timeout: 15 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	store, err := inventory.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.CreateMachine(context.Background(), inventory.Machine{Name: "rack1-07", MACs: []string{"52:54:00:12:34:07"}, BMC: sim.URL()}); err != nil {
		t.Fatal(err)
	}
	ctl := &PowerController{Power: servicePower{power.New(store, mgr, 0, slog.New(slog.DiscardHandler))}}
	sys := testSystems()
	delete(sys.m, "node 2")
	sys.powerOf = func(ctx context.Context, name string) string {
		st, err := mgr.PowerStatus(ctx, ep)
		if err != nil {
			return "unknown"
		}
		return string(st)
	}
	sys.bootOf = ctl.LastBoot
	srv := serve(t, sys, ctl, staticAuth{user: "operator", pass: "op-pw"})
	return ipmiBacked{sim: sim, url: srv.URL, ctl: ctl, store: store}
}

func ipmitoolSays(t *testing.T, sim *bmcsim.IPMISim) string {
	t.Helper()
	out, err := sim.Ipmitool(context.Background(), "chassis", "power", "status")
	if err != nil {
		t.Fatalf("ipmitool: %v %s", err, out)
	}
	return string(bmc.NormalizePowerState(out))
}

// TestGofishToIPMISim: gofish (session auth) lists systems, resets On and
// ForceOff and sets a one-time PXE override; each action reaches ipmi_sim.
func TestGofishToIPMISim(t *testing.T) {
	env := startIPMIBacked(t)
	c, err := gofish.Connect(gofish.ClientConfig{Endpoint: env.url, Username: "operator", Password: "op-pw"})
	if err != nil {
		t.Fatalf("gofish connect: %v", err)
	}
	defer c.Logout()
	systems, err := c.Service.Systems()
	if err != nil {
		t.Fatalf("systems: %v", err)
	}
	if len(systems) != 1 || systems[0].ID != "rack1-07" || systems[0].PowerState != gfredfish.OffPowerState {
		t.Fatalf("systems = %+v", systems)
	}
	sys := systems[0]
	if sys.ProcessorSummary.Count != 2 || sys.MemorySummary.TotalSystemMemoryGiB != 256 || sys.UUID == "" {
		t.Fatalf("system facts: %+v %+v", sys.ProcessorSummary, sys.MemorySummary)
	}
	nics, err := sys.EthernetInterfaces()
	var macs []string
	for _, n := range nics {
		macs = append(macs, n.MACAddress)
	}
	slices.Sort(macs)
	if err != nil || !slices.Equal(macs, []string{"52:54:00:12:34:07", "52:54:00:12:35:07"}) {
		t.Fatalf("nics: %v %v", err, macs)
	}
	if !slices.Contains(sys.SupportedResetTypes, gfredfish.ForceOffResetType) {
		t.Fatalf("reset types: %v", sys.SupportedResetTypes)
	}
	if err := sys.Reset(gfredfish.OnResetType); err != nil {
		t.Fatalf("reset On: %v", err)
	}
	if got := ipmitoolSays(t, env.sim); got != "on" {
		t.Fatalf("ipmitool after On: %s", got)
	}
	if err := sys.Reset(gfredfish.NmiResetType); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("Nmi accepted: %v", err)
	}
	if err := sys.SetBoot(gfredfish.Boot{BootSourceOverrideTarget: gfredfish.PxeBootSourceOverrideTarget, BootSourceOverrideEnabled: gfredfish.OnceBootSourceOverrideEnabled}); err != nil {
		t.Fatalf("set boot: %v", err)
	}
	if got := env.sim.BootDevice(); got != "pxe" {
		t.Fatalf("ipmi_sim boot device %q, want pxe", got)
	}
	if err := sys.Reset(gfredfish.ForceOffResetType); err != nil {
		t.Fatalf("reset ForceOff: %v", err)
	}
	if got := ipmitoolSays(t, env.sim); got != "off" {
		t.Fatalf("ipmitool after ForceOff: %s", got)
	}
	again, err := gfredfish.GetComputerSystem(c, sys.ODataID)
	if err != nil || again.PowerState != gfredfish.OffPowerState || again.Boot.BootSourceOverrideTarget != gfredfish.PxeBootSourceOverrideTarget ||
		again.Boot.BootSourceOverrideEnabled != gfredfish.OnceBootSourceOverrideEnabled {
		t.Fatalf("system after actions: %v %+v %+v", err, again.PowerState, again.Boot)
	}
	// The power service recorded each action, as coming from Redfish, and
	// the machine's power state.
	evs, err := env.store.ListEvents(context.Background(), inventory.EventFilter{Machine: "rack1-07"})
	var msgs []string
	for _, e := range evs {
		if strings.HasPrefix(e.Type, "power.") {
			msgs = append(msgs, e.Message)
		}
	}
	want := []string{"redfish On: ok", "redfish boot override Pxe Once UEFI: ok", "redfish ForceOff: ok"}
	if err != nil || !slices.Equal(msgs, want) {
		t.Fatalf("power events %q (%v), want %q", msgs, err, want)
	}
	if m, err := env.store.GetMachine(context.Background(), "rack1-07"); err != nil || m.PowerState != "off" {
		t.Fatalf("recorded power state %q (%v)", m.PowerState, err)
	}
}

// TestRedfishtool: Debian's redfishtool lists systems, resets and sets a
// boot override, unchanged.
func TestRedfishtool(t *testing.T) {
	need(t, "redfishtool", "redfishtool")
	env := startIPMIBacked(t)
	host := strings.TrimPrefix(env.url, "http://")
	run := func(args ...string) string {
		t.Helper()
		base := []string{"-r", host, "-u", "operator", "-p", "op-pw", "-S", "Never", "-T", "20"}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "redfishtool", append(base, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redfishtool %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run("Systems", "list"); !strings.Contains(out, "rack1-07") {
		t.Fatalf("Systems list: %s", out)
	}
	run("Systems", "-I", "rack1-07", "reset", "On")
	if got := ipmitoolSays(t, env.sim); got != "on" {
		t.Fatalf("ipmitool after redfishtool reset On: %s", got)
	}
	run("Systems", "-I", "rack1-07", "setBootOverride", "Once", "Pxe")
	if got := env.sim.BootDevice(); got != "pxe" {
		t.Fatalf("ipmi_sim boot device %q after setBootOverride", got)
	}
	if out := run("Systems", "-I", "rack1-07", "get"); !strings.Contains(out, `"PowerState": "On"`) {
		t.Fatalf("Systems get: %s", out)
	}
	run("-A", "Session", "Systems", "-I", "rack1-07", "reset", "ForceOff")
	if got := ipmitoolSays(t, env.sim); got != "off" {
		t.Fatalf("ipmitool after redfishtool reset ForceOff: %s", got)
	}
}
