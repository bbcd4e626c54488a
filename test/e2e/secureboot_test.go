package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/lab"
	"github.com/metal-iaas/metal/test/testenv"
)

const (
	macSB = "52:54:00:e2:5b:01"
	ipSB  = "10.66.0.31"
)

// secureBootSetup checks that the machine can run Secure Boot VMs (or
// says why not, loudly) and returns the shared set-up and the directory
// of Debian's signed shim and GRUB.
func secureBootSetup(t *testing.T) (*shared, string) {
	t.Helper()
	need(t)
	if err := lab.CheckSecureBoot(); err != nil {
		testenv.Require(t, false, err.Error())
	}
	s := setup(t)
	shimDir, err := lab.Shim(context.Background(), s.root)
	if err != nil {
		t.Fatal(err)
	}
	return s, shimDir
}

// sbEvent is the part of metalctl events -o json the test reads.
type sbEvent struct {
	Time time.Time      `json:"time"`
	Type string         `json:"type"`
	Data map[string]any `json:"data"`
}

// TestSecureBootShim boots a VM whose firmware enforces Secure Boot (OVMF's
// Secure Boot build, Microsoft's keys enrolled, SMM; OVMF's own PXE, no
// iPXE ROM) twice with one metald running --uefi-boot shim:
//
//  1. the machine set to --uefi-boot ipxe gets snponly.efi, which the
//     firmware refuses ("Access Denied"): no iPXE script is ever asked
//     for, so the test can fail;
//  2. back on metald's default (shim), `inspect --wait` completes through
//     Debian's chain: shim (Microsoft-signed) → grubx64.efi (Debian-signed
//     grubnetx64) → grub/grub.cfg → grub.cfg-<MAC> rendered by metald →
//     Debian's signed kernel + the agent's initrd, all over TFTP; the
//     agent reports secure_boot true;
//  3. the machine, now ready, netboots once more: its GRUB configuration
//     exits to the firmware, which goes on to the next boot option (the
//     disk).
//
// The files' signatures are checked with sbverify first.
func TestSecureBootShim(t *testing.T) {
	t.Parallel() // one VM
	s, shimDir := secureBootSetup(t)
	for file, signer := range map[string]string{
		filepath.Join(shimDir, "shimx64.efi"): "Microsoft Corporation UEFI CA 2011",
		filepath.Join(shimDir, "grubx64.efi"): "Debian Secure Boot Signer",
		filepath.Join(s.agentDir, "vmlinuz"):  "Debian Secure Boot Signer",
	} {
		out, err := exec.Command("sbverify", "--list", file).CombinedOutput()
		if err != nil || !strings.Contains(string(out), signer) {
			t.Fatalf("sbverify --list %s: %v, want a signature by %q:\n%s", file, err, signer, out)
		}
	}

	r := newRig(t, "--boot-efi", "--tftp", lab.BridgeIP+":69", "--uefi-boot", "shim", "--shim-dir", shimDir)
	v, err := r.lab.AddVM(context.Background(), lab.VMConfig{Name: "sb1", MAC: macSB, DiskBytes: 256 << 20, UEFI: true, SecureBoot: true})
	if err != nil {
		t.Fatal(err)
	}
	r.mustCtl("machine", "add", "sb1", "--mac", macSB, "--bmc", v.BMCURL(), "--ip", ipSB)

	// 1. iPXE under enforced Secure Boot: refused by the firmware.
	r.mustCtl("machine", "edit", "sb1", "--uefi-boot", "ipxe")
	r.mustCtl("bootdev", "sb1", "pxe", "--efi")
	r.mustCtl("power", "on", "sb1")
	start := time.Now()
	if _, err := v.WaitSerial(context.Background(), "Access Denied", 0, 3*time.Minute); err != nil {
		t.Fatalf("the firmware did not refuse iPXE: %v", err)
	}
	t.Logf("iPXE refused by the firmware %v after power-on", time.Since(start).Round(time.Second))
	r.mustCtl("power", "off", "sb1")
	snp, ipxeRan := false, false
	for _, e := range sbEvents(r) {
		snp = snp || (e.Type == "tftp.sent" && e.Data["file"] == "snponly.efi")
		ipxeRan = ipxeRan || e.Type == "boot.script"
	}
	if !snp || ipxeRan {
		t.Fatalf("--uefi-boot ipxe: snponly.efi sent %v (want true), a boot script asked for %v (want false)", snp, ipxeRan)
	}

	// 2. The shim chain: inspect completes, Secure Boot on.
	r.mustCtl("machine", "edit", "sb1", "--uefi-boot", "default")
	mark := len(v.SerialText())
	start = time.Now()
	out, err := r.ctl(5*time.Minute, "inspect", "sb1", "--wait", "--timeout", "4m")
	t.Logf("metalctl inspect --wait (%v):\n%s", time.Since(start).Round(time.Second), tail(out, 1000))
	if err != nil {
		t.Fatalf("inspect through shim: %v\nserial:\n%s", err, tail(v.SerialText()[mark:], 3000))
	}
	var m struct {
		State    string `json:"state"`
		UEFIBoot string `json:"uefi_boot"`
		Hardware struct {
			Firmware   string `json:"firmware"`
			SecureBoot *bool  `json:"secure_boot"`
			Kernel     string `json:"kernel"`
		} `json:"hardware"`
	}
	r.ctlJSON(&m, "machine", "show", "sb1")
	if m.State != "ready" || m.UEFIBoot != "" || m.Hardware.Firmware != "uefi" || m.Hardware.SecureBoot == nil || !*m.Hardware.SecureBoot {
		t.Fatalf("after inspect: %+v, want ready, uefi_boot default, firmware uefi, secure_boot true", m)
	}
	if show := r.mustCtl("machine", "show", "sb1"); !strings.Contains(show, "Secure Boot:") || !strings.Contains(show, "yes (uefi)") {
		t.Errorf("machine show does not say Secure Boot yes:\n%s", tail(show, 600))
	}
	want := map[string]bool{"shim/shimx64.efi": false, "shim/grubx64.efi": false, "grub/grub.cfg": false,
		"grub/grub.cfg-" + macSB: false, "agent/vmlinuz": false, "agent/initrd": false}
	var cfgAt, initrdAt time.Time
	agentGrub := false
	for _, e := range sbEvents(r) {
		if e.Type == "tftp.sent" {
			f, _ := e.Data["file"].(string)
			f = strings.TrimPrefix(f, "/")
			if _, ok := want[f]; ok {
				want[f] = true
			}
			switch f {
			case "grub/grub.cfg-" + macSB:
				cfgAt = e.Time
			case "agent/initrd":
				initrdAt = e.Time
			}
		}
		agentGrub = agentGrub || (e.Type == "boot.script" && e.Data["script"] == "agent.grub")
	}
	for f, seen := range want {
		if !seen {
			t.Errorf("no tftp.sent event for %s", f)
		}
	}
	if !agentGrub {
		t.Error("no boot.script event for agent.grub")
	}
	if !cfgAt.IsZero() && !initrdAt.IsZero() {
		t.Logf("GRUB configuration to initrd sent (kernel and initrd over TFTP): %v", initrdAt.Sub(cfgAt).Round(100*time.Millisecond))
	}
	if b, err := os.ReadFile(r.md.LogPath()); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "tftp: sent") && strings.Contains(line, "agent/") {
				t.Logf("metald: %s", line) // the options GRUB asked for, and the time each file took
			}
		}
	}

	// 3. Ready: GRUB exits to the firmware, which tries the disk next.
	r.mustCtl("bootdev", "sb1", "pxe", "--efi")
	mark = len(v.SerialText())
	r.mustCtl("power", "on", "sb1")
	at, err := v.WaitSerial(context.Background(), "booting the local disk", mark, 3*time.Minute)
	if err != nil {
		t.Fatalf("local boot: %v\nserial:\n%s", err, tail(v.SerialText()[mark:], 3000))
	}
	if _, err := v.WaitSerial(context.Background(), "BdsDxe: loading", at, time.Minute); err != nil {
		t.Errorf("after GRUB's exit the firmware did not go on to the next boot option: %v\nserial:\n%s", err, tail(v.SerialText()[mark:], 3000))
	}
	r.mustCtl("power", "off", "sb1")
}

// sbEvents is sb1's events.
func sbEvents(r *rig) []sbEvent { return sbEventsOf(r, "sb1") }

func sbEventsOf(r *rig, machine string) []sbEvent {
	var evs []sbEvent
	r.ctlJSON(&evs, "events", "--machine", machine)
	return evs
}
