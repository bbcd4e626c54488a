package itest

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/bmcsim"
)

// TestRedfishtoolDrivesMetald: Debian's redfishtool, unchanged, lists
// metald's machines and power-cycles one through metald's northbound
// Redfish service; the actions reach the machine's real BMC (ipmi_sim).
func TestRedfishtoolDrivesMetald(t *testing.T) {
	for _, tool := range []string{"redfishtool", "ipmi_sim", "ipmitool"} {
		_, err := exec.LookPath(tool)
		Require(t, err == nil, tool+" not found (Debian packages redfishtool, openipmi, ipmitool)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sim, err := bmcsim.StartIPMISim(ctx, bmcsim.IPMIConfig{Dir: t.TempDir(), User: "admin", Password: "ipmiPass2"})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	m := StartMetald(t, "", "--bmc-timeout", "20s")
	wantOK(t, m.Ctl("machine", "add", "rack1-07", "--mac", "52:54:00:ab:00:07", "--bmc", sim.URL(), "--no-verify"), "add")
	wantOK(t, m.Ctl("machine", "add", "rack1-08", "--mac", "52:54:00:ab:00:08"), "add without BMC")

	rf := func(args ...string) (string, error) {
		t.Helper()
		base := []string{"-r", m.Addr, "-u", "admin", "-p", m.Token, "-S", "Never", "-T", "30"}
		cctx, ccancel := context.WithTimeout(ctx, 45*time.Second)
		defer ccancel()
		out, err := exec.CommandContext(cctx, "redfishtool", append(base, args...)...).CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := rf(args...)
		if err != nil {
			t.Fatalf("redfishtool %v: %v\n%s", args, err, out)
		}
		return out
	}
	ipmi := func() string {
		out, err := sim.Ipmitool(ctx, "chassis", "power", "status")
		if err != nil {
			t.Fatalf("ipmitool: %v", err)
		}
		return out
	}
	out := must("Systems", "list")
	for _, n := range []string{"rack1-07", "rack1-08"} {
		if !strings.Contains(out, n) {
			t.Fatalf("Systems list lacks %s:\n%s", n, out)
		}
	}
	must("Systems", "-I", "rack1-07", "reset", "On")
	if got := ipmi(); !strings.Contains(got, "is on") {
		t.Fatalf("after reset On ipmitool says %q", got)
	}
	must("Systems", "-I", "rack1-07", "setBootOverride", "Once", "Pxe")
	if got := sim.BootDevice(); got != "pxe" {
		t.Fatalf("ipmi_sim boot device %q after setBootOverride Once Pxe", got)
	}
	must("Systems", "-I", "rack1-07", "reset", "PowerCycle")
	// A BMC carries a cycle out over a moment: off, then on again.
	deadline := time.Now().Add(20 * time.Second)
	for got := ipmi(); !strings.Contains(got, "is on"); got = ipmi() {
		if time.Now().After(deadline) {
			t.Fatalf("20 s after PowerCycle ipmitool says %q", got)
		}
		time.Sleep(500 * time.Millisecond)
	}
	must("-A", "Session", "Systems", "-I", "rack1-07", "reset", "ForceOff")
	if got := ipmi(); !strings.Contains(got, "is off") {
		t.Fatalf("after ForceOff ipmitool says %q", got)
	}
	// Bad credentials and an unsupported reset type are refused.
	if out, err := rf("-p", "metal_wrong_token", "Systems", "list"); err == nil {
		t.Fatalf("a wrong token was accepted:\n%s", out)
	}
	if out, err := rf("Systems", "-I", "rack1-07", "reset", "Nmi"); err == nil {
		t.Fatalf("reset Nmi accepted:\n%s", out)
	}
	r := m.Ctl("events", "--machine", "rack1-07", "--type", "power", "-o", "json")
	if !strings.Contains(r.Stdout, "redfish PowerCycle: ok") {
		t.Fatalf("no event for the Redfish power cycle:\n%s", r.Stdout)
	}
}
