package redfish

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stmcginnis/gofish"
	gfredfish "github.com/stmcginnis/gofish/redfish"

	"github.com/metal-iaas/metal/internal/bmcsim"
	"github.com/metal-iaas/metal/internal/testenv"
	"github.com/metal-iaas/metal/pkg/bmc"
)

func need(t *testing.T, tool, debPkg string) {
	t.Helper()
	testenv.Tool(t, tool, debPkg)
}

// ipmiBacked is the service in front of one machine whose BMC is an
// ipmi_sim, wired through BMCController and a pkg/bmc Manager.
type ipmiBacked struct {
	sim *bmcsim.IPMISim
	url string
	ctl *BMCController
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
	ctl := &BMCController{Manager: mgr, Resolve: func(ctx context.Context, name string) (bmc.Endpoint, error) {
		if name != "rack1-07" {
			return bmc.Endpoint{}, ErrNotFound
		}
		return ep, nil
	}}
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
	return ipmiBacked{sim: sim, url: srv.URL, ctl: ctl}
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
