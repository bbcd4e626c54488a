package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/pkg/imaging"
	"github.com/metal-iaas/metal/test/lab"
)

const (
	mac1 = "52:54:00:e2:e0:01"
	ip1  = "10.66.0.11"
)

// TestProvisionOVA is the demo path: a VM with a blank disk behind an
// ipmi_sim BMC, registered ready; the OVA uploaded; metalctl provision
// --wait. metald sets PXE and power-cycles through the BMC, the VM
// netboots the agent from metald's DHCP/iPXE, the agent streams the image
// onto vda, metald sets disk boot and power-cycles, and the VM boots the
// installed OS from its disk.
func TestProvisionOVA(t *testing.T) {
	t.Parallel() // one VM: two such tests share the 2 cores
	r := newRig(t)
	img := testImage(t, r)
	v := r.addVM("vm1", mac1, ip1, 1<<30)
	r.mustCtl("image", "upload", img.OVA, "--name", "os-ova")
	var im image
	r.ctlJSON(&im, "image", "show", "os-ova")
	if im.RawSHA256 != img.RawSHA256 || im.VirtualSize != img.SizeBytes {
		t.Fatalf("image show: raw_sha256 %s virtual_size %d, want %s %d", im.RawSHA256, im.VirtualSize, img.RawSHA256, img.SizeBytes)
	}
	provisionAndBoot(t, r, v, "os-ova", im, img.Raw)

	// Re-image the same machine with the same image: the agent reads each
	// chunk's range of the disk first (delta, on by default for a machine
	// provisioned before) and fetches and writes only what differs — the
	// first chunk, whose partition table the config drive changed.
	r.mustCtl("machine", "edit", "vm1", "--state", "maintenance")
	r.mustCtl("machine", "edit", "vm1", "--state", "ready")
	provisionAndBoot(t, r, v, "os-ova", im, img.Raw)
	var evs []struct {
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	}
	r.ctlJSON(&evs, "events", "--machine", "vm1", "--type", "agent.succeeded", "--limit", "10")
	if len(evs) != 2 {
		t.Fatalf("%d agent.succeeded events, want 2", len(evs))
	}
	skipped, _ := evs[1].Data["bytes_skipped"].(float64)
	written := im.VirtualSize - int64(skipped)
	t.Logf("re-provision: %d of %d bytes already on the disk, %d written (%.1f %%)", int64(skipped), im.VirtualSize, written, 100*float64(written)/float64(im.VirtualSize))
	// 64 MiB image, 4 MiB chunks: at most the first chunk (6 %) differs.
	if evs[1].Data["manifest"] == nil || written > imaging.DefaultChunkSize {
		t.Errorf("re-provision by chunks wrote %d of %d bytes (want at most the first chunk): event %+v", written, im.VirtualSize, evs[1].Data)
	}
}

// provisionAndBoot runs metalctl provision --wait and checks the result:
// exit 0, machine provisioned, the disk holds the image (and, after it,
// the default NoCloud config drive, which rewrote the partition table), the VM boots the
// installed OS from disk, and the agent's inventory names vda and the NIC.
func provisionAndBoot(t *testing.T, r *rig, v *lab.VM, imageName string, im image, raw string) {
	t.Helper()
	name := v.Cfg.Name
	start := time.Now()
	serialStart := len(v.SerialText())
	out, err := r.ctl(6*time.Minute, "provision", name, "--image", imageName, "--wait", "--timeout", "5m")
	t.Logf("metalctl provision --wait (%.0f s):\n%s", time.Since(start).Seconds(), tail(out, 1500))
	if err != nil {
		t.Fatalf("metalctl provision --wait: %v", err)
	}
	var m machine
	r.ctlJSON(&m, "machine", "show", name)
	if m.State != "provisioned" {
		t.Fatalf("machine %s is %s (%s), want provisioned", name, m.State, m.StateReason)
	}
	ctx := context.Background()
	if _, err := v.WaitSerial(ctx, "METAL-INSTALLED-OS-OK hostname="+name, serialStart, 3*time.Minute); err != nil {
		t.Fatalf("installed OS did not boot from disk: %v\nserial tail:\n%s", err, tail(v.SerialText(), 3000))
	}
	t.Logf("%s: provision → installed OS up in %.0f s", name, time.Since(start).Seconds())
	if err := lab.DiskHoldsImage(v.Disk, raw, im.VirtualSize); err != nil {
		t.Error(err)
	}
	var vda bool
	for _, d := range m.Hardware.Disks {
		vda = vda || (d.Name == "vda" && d.SizeBytes == v.Cfg.DiskBytes)
	}
	if !vda {
		t.Errorf("hardware disks %+v: want vda of %d bytes", m.Hardware.Disks, v.Cfg.DiskBytes)
	}
	var nic bool
	for _, n := range m.Hardware.NICs {
		nic = nic || (strings.EqualFold(n.MAC, v.Cfg.MAC) && n.Driver == "virtio_net")
	}
	if !nic {
		t.Errorf("hardware nics %+v: want %s with driver virtio_net", m.Hardware.NICs, v.Cfg.MAC)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
