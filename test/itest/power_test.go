package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/pkg/metalapi"
	"github.com/metal-iaas/metal/test/bmcsim"
)

func powerResults(t *testing.T, r Result) []metalapi.PowerResult {
	t.Helper()
	var res []metalapi.PowerResult
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
		t.Fatalf("power -o json: %v\n%s\n%s", err, r.Stdout, r.Stderr)
	}
	return res
}

// TestPowerThroughIPMISim drives a QEMU VM through OpenIPMI's ipmi_sim
// with metalctl → metald → bmclib → ipmitool, and checks ipmitool agrees.
func TestPowerThroughIPMISim(t *testing.T) {
	for _, tool := range []string{"ipmi_sim", "ipmitool", "qemu-system-x86_64"} {
		_, err := exec.LookPath(tool)
		Require(t, err == nil, tool+" not found (Debian packages openipmi, ipmitool, qemu-system-x86)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sim, err := bmcsim.StartIPMISim(ctx, bmcsim.IPMIConfig{Dir: t.TempDir(), User: "admin", Password: "ipmiPass1", VM: bmcsim.DefaultVM()})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()

	m := StartMetald(t, "", "--bmc-timeout", "20s")
	r := m.Ctl("machine", "add", "vm1", "--mac", "52:54:00:cc:00:01", "--bmc", sim.URL())
	wantOK(t, r, "add with BMC")
	if strings.Contains(r.Stderr, "warning") {
		t.Fatalf("verification of a live BMC warned: %s", r.Stderr)
	}

	wantOK(t, m.Ctl("bootdev", "vm1", "pxe"), "bootdev pxe")
	if got := sim.BootDevice(); got != "pxe" {
		t.Fatalf("ipmi_sim boot device %q after bootdev pxe", got)
	}
	wantOK(t, m.Ctl("power", "on", "vm1"), "power on")
	deadline := time.Now().Add(20 * time.Second)
	for !sim.PoweredOn() || sim.VMPID() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("VM not running after power on; chassis log: %v", sim.ChassisLog())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(sim.VMBootArg(), "n") {
		t.Fatalf("VM started with boot arg %q, want network boot after bootdev pxe", sim.VMBootArg())
	}
	res := powerResults(t, m.Ctl("power", "status", "vm1", "-o", "json"))
	if len(res) != 1 || !res[0].OK || res[0].PowerState != "on" {
		t.Fatalf("status after on: %+v", res)
	}
	out, err := sim.Ipmitool(ctx, "chassis", "power", "status")
	if err != nil || !strings.Contains(out, "is on") {
		t.Fatalf("ipmitool disagrees: %q %v", out, err)
	}

	wantOK(t, m.Ctl("power", "off", "vm1"), "power off")
	res = powerResults(t, m.Ctl("power", "status", "vm1", "-o", "json"))
	if len(res) != 1 || res[0].PowerState != "off" {
		t.Fatalf("status after off: %+v", res)
	}
	if out, _ := sim.Ipmitool(ctx, "chassis", "power", "status"); !strings.Contains(out, "is off") {
		t.Fatalf("ipmitool says %q after off", out)
	}
	r = m.Ctl("machine", "show", "vm1", "-o", "json")
	if !strings.Contains(r.Stdout, `"power_state": "off"`) || strings.Contains(r.Stdout, "ipmiPass1") {
		t.Fatalf("machine show after power off:\n%s", r.Stdout)
	}
	r = m.Ctl("events", "--machine", "vm1", "--type", "power", "-o", "json")
	for _, want := range []string{"power on: ok", "power off: ok"} {
		if !strings.Contains(r.Stdout, want) && !strings.Contains(r.Stdout, strings.Replace(want, "power ", "", 1)) {
			t.Errorf("events lack %q:\n%s", want, r.Stdout)
		}
	}
	if strings.Contains(m.Log(), "ipmiPass1") {
		t.Fatal("BMC password in metald's log")
	}
}

// TestPowerFleetWithADeadBMC powers a tagged group of emulated Redfish
// BMCs in parallel while one machine's BMC port has nothing listening: the
// dead one fails alone, clearly, within the timeout.
func TestPowerFleetWithADeadBMC(t *testing.T) {
	fleet, err := bmcsim.NewFleet(12, bmcsim.Config{User: "root", Password: "fleetPw"}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	m := StartMetald(t, "", "--bmc-timeout", "5s")
	for i, u := range fleet.URLs() {
		wantOK(t, m.Ctl("machine", "add", fmt.Sprintf("node-%02d", i), "--mac", fmt.Sprintf("52:54:00:dd:00:%02x", i),
			"--bmc", u, "--tag", "rack=a"), "add")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	r := m.Ctl("machine", "add", "dead-01", "--mac", "52:54:00:dd:01:01", "--bmc", "redfish+http://root:x@"+dead, "--tag", "rack=a")
	wantOK(t, r, "add with a dead BMC still stores the machine")
	if !strings.Contains(r.Stderr, "warning") {
		t.Fatalf("no warning for a dead BMC: %q", r.Stderr)
	}

	start := time.Now()
	r = m.Ctl("power", "on", "--tag", "rack=a", "-o", "json")
	if r.Code == 0 {
		t.Fatal("power on with a dead BMC must exit non-zero")
	}
	res := powerResults(t, r)
	if len(res) != 13 {
		t.Fatalf("%d results", len(res))
	}
	for _, x := range res {
		if x.Machine == "dead-01" {
			if x.OK || x.Error == "" {
				t.Fatalf("dead BMC reported %+v", x)
			}
			continue
		}
		if !x.OK || x.PowerState != "on" {
			t.Errorf("%s: %+v", x.Machine, x)
		}
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("fan-out took %v with a 5s BMC timeout", took)
	}
	if on := fleet.PoweredOn(); on != 12 {
		t.Fatalf("%d of 12 emulated BMCs powered on", on)
	}
	wantFail(t, m.Ctl("power", "status"), "no selection", "exactly one")
	wantFail(t, m.Ctl("power", "jump", "--all"), "bad action", "unknown power action")
}

// BenchmarkPowerStatusAll200 is issue 5's fleet benchmark: 200 emulated
// Redfish BMCs, `metalctl power status --all` and `power on --all` through
// the real binaries.
func BenchmarkPowerStatusAll200(b *testing.B) {
	fleet, err := bmcsim.NewFleet(200, bmcsim.Config{User: "root", Password: "fleetPw"}, false)
	if err != nil {
		b.Fatal(err)
	}
	defer fleet.Close()
	m := StartMetald(b, "")
	for i, u := range fleet.URLs() {
		if r := m.Ctl("machine", "add", fmt.Sprintf("n%03d", i), "--mac", fmt.Sprintf("02:00:00:ee:%02x:%02x", i>>8, i&0xff),
			"--bmc", u, "--no-verify"); r.Code != 0 {
			b.Fatal(r.Stderr)
		}
	}
	for _, action := range []string{"status", "on"} {
		b.Run(action, func(b *testing.B) {
			for b.Loop() {
				if r := m.Ctl("power", action, "--all", "-o", "json"); r.Code != 0 {
					b.Fatal(r.Stderr)
				}
			}
		})
	}
}
