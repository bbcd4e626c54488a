package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/metal-iaas/metal/test/testenv"

	"github.com/metal-iaas/metal/test/lab"
)

const (
	macUEFI = "52:54:00:e2:e0:e1"
	ipUEFI  = "10.66.0.21"
)

// TestProvisionUEFI is TestProvisionOVA on UEFI firmware: the VM is q35
// with OVMF and its NIC has no iPXE ROM, so OVMF's own PXE must get
// snponly.efi from metald's TFTP, which chainloads the agent. metald runs
// with --boot-efi (its IPMI boot-device requests carry the UEFI flag) and
// --tftp on the bridge.
// The OVA's disk is GPT with an EFI System Partition holding a Unified
// Kernel Image at EFI/BOOT/BOOTX64.EFI; after the agent wrote it, metald
// sets disk boot and power-cycles through ipmi_sim, the lab turns the BMC's
// boot device into OVMF's boot order (disk first), and the installed OS
// must come up from the disk under UEFI.
func TestProvisionUEFI(t *testing.T) {
	t.Parallel() // one VM: two such tests share the 2 cores
	// TFTP is off unless asked for; without it OVMF gets the snponly.efi
	// offer, times out, and only its HTTP Boot fallback (~70 s later)
	// reaches iPXE.
	r := newRig(t, "--boot-efi", "--tftp", lab.BridgeIP+":69")
	if err := lab.CheckEFI(); err != nil {
		testenv.Require(t, false, err.Error())
	}
	img := efiImage(t, r)
	v, err := r.lab.AddVM(context.Background(), lab.VMConfig{Name: "uefi1", MAC: macUEFI, DiskBytes: 1 << 30, UEFI: true})
	if err != nil {
		t.Fatal(err)
	}
	r.mustCtl("machine", "add", "uefi1", "--mac", macUEFI, "--bmc", v.BMCURL(), "--ip", ipUEFI)
	r.mustCtl("machine", "edit", "uefi1", "--state", "ready")
	r.mustCtl("image", "upload", img.OVA, "--name", "os-efi")
	var im image
	r.ctlJSON(&im, "image", "show", "os-efi")
	if im.RawSHA256 != img.RawSHA256 || im.VirtualSize != img.SizeBytes {
		t.Fatalf("image show: raw_sha256 %s virtual_size %d, want %s %d", im.RawSHA256, im.VirtualSize, img.RawSHA256, img.SizeBytes)
	}
	provisionAndBoot(t, r, v, "os-efi", im, img.Raw)

	// The firmware really was UEFI all the way: OVMF's own PXE fetched
	// snponly.efi (no ROM was there to do it) and iPXE asked for the
	// agent's script; once metald asked the BMC for disk boot, the next
	// start put the disk first and no firmware netboot happened (the only
	// DHCP after it is the installed OS's, with no PXE architecture).
	events := r.mustCtl("events", "--machine", "uefi1")
	t.Logf("uefi1's events:\n%s", tail(events, 4000))
	var evs []uefiEvent
	r.ctlJSON(&evs, "events", "--machine", "uefi1")
	var snp, script bool
	diskAt := -1
	for i, e := range evs {
		snp = snp || (e.Type == "tftp.sent" && e.Data["file"] == "snponly.efi")
		script = script || (e.Type == "boot.script" && e.Data["script"] == "agent.ipxe")
		if e.Type == "power.action" && strings.HasPrefix(e.Message, "bootdev disk") {
			diskAt = i
		}
	}
	if !snp || !script {
		t.Errorf("events: snponly.efi over TFTP %v, agent.ipxe script %v; want both (OVMF PXE → snponly.efi → agent)", snp, script)
	}
	if diskAt < 0 {
		t.Fatalf("no bootdev disk power action in uefi1's events")
	}
	for _, e := range evs[diskAt:] {
		if _, arch := e.Data["arch"]; arch && strings.HasPrefix(e.Type, "dhcp.") {
			t.Errorf("event %d %s %v: the firmware netbooted after disk boot was set", e.ID, e.Type, e.Data)
		}
	}
	// ipmi_sim keeps only the boot device of the boot flags (it answers
	// bootparam 5 with byte 0 = 0 whatever was set), so the UEFI bit that
	// --boot-efi adds cannot be read back here; the device can.
	if got := v.BMC.BootDevice(); got == "pxe" {
		t.Errorf("BMC boot device %q after provisioning, want disk", got)
	}
	vmlog, _ := os.ReadFile(filepath.Join(v.Dir, "bmc", "vm.log"))
	starts := strings.Split(strings.TrimSpace(string(vmlog)), "\n")
	if last := starts[len(starts)-1]; !strings.Contains(last, "disk bootindex=1") || !strings.Contains(string(vmlog), "nic bootindex=1") {
		t.Errorf("VM starts %q: want a NIC-first start (agent) and the disk first last", starts)
	}
}

// uefiEvent is the part of metalctl events -o json the test reads.
type uefiEvent struct {
	ID      int64          `json:"id"`
	Type    string         `json:"type"`
	Message string         `json:"message"`
	Data    map[string]any `json:"data"`
}

var (
	efiOnce sync.Once
	efiImg  *lab.Image
	efiErr  error
)

// efiImage builds (once) the UEFI installed-OS disk.
func efiImage(t *testing.T, r *rig) *lab.Image {
	t.Helper()
	efiOnce.Do(func() {
		efiImg, efiErr = lab.BuildEFIImage(context.Background(), lab.ImageConfig{Dir: filepath.Join(r.sh.dir, "efi"),
			KernelDir: r.sh.kernel, Init: r.sh.bins.InstalledInit, MetadataURL: r.md.URL})
	})
	if efiErr != nil {
		t.Fatal(efiErr)
	}
	return efiImg
}
