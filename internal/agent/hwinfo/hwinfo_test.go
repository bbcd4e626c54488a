package hwinfo

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

// fakeRoot builds a /proc + /sys tree shaped like a QEMU q35 machine with
// a virtio disk and NIC, an NVMe disk, a SATA disk, a loop device and a
// bridge (which must be left out).
func fakeRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	w := func(p, s string) {
		t.Helper()
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ln := func(target, p string) {
		t.Helper()
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	w("proc/sys/kernel/osrelease", "6.1.0-56-amd64\n")
	cpu := ""
	for i, ids := range [][2]string{{"0", "0"}, {"0", "0"}, {"0", "1"}, {"0", "1"}, {"1", "0"}, {"1", "0"}, {"1", "1"}, {"1", "1"}} {
		cpu += "processor\t: " + string(rune('0'+i)) + "\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6230\nphysical id\t: " + ids[0] + "\ncore id\t\t: " + ids[1] + "\nflags\t\t: fpu vme sse2 avx2\n\n"
	}
	w("proc/cpuinfo", cpu)
	w("proc/meminfo", "MemTotal:         393216 kB\nMemFree:          300000 kB\n")
	for k, v := range map[string]string{"sys_vendor": "QEMU", "product_name": "Standard PC (Q35 + ICH9, 2009)", "product_serial": "SN-123",
		"product_uuid": "8a0d6b2e-0000-4000-8000-000000000001", "board_vendor": "QEMU", "board_name": "Q35", "board_serial": ""} {
		w("sys/devices/virtual/dmi/id/"+k, v+"\n")
	}
	ln("../../devices/virtual/dmi/id", "sys/class/dmi/id")

	// PCI functions.
	for addr, d := range map[string][4]string{
		"0000:00:03.0": {"0x1af4", "0x1000", "0x020000", "virtio-pci"},
		"0000:00:04.0": {"0x1af4", "0x1001", "0x010000", "virtio-pci"},
		"0000:00:05.0": {"0x1b36", "0x0010", "0x010802", "nvme"},
		"0000:00:1f.2": {"0x8086", "0x2922", "0x010601", "ahci"},
	} {
		dev := "sys/devices/pci0000:00/" + addr
		w(dev+"/vendor", d[0]+"\n")
		w(dev+"/device", d[1]+"\n")
		w(dev+"/class", d[2]+"\n")
		ln("../../../bus/pci/drivers/"+d[3], dev+"/driver")
		ln("../../../devices/pci0000:00/"+addr, "sys/bus/pci/devices/"+addr)
	}
	// virtio NIC and disk below virtio devices.
	nic := "sys/devices/pci0000:00/0000:00:03.0/virtio0"
	ln("../../../../bus/virtio/drivers/virtio_net", nic+"/driver")
	w(nic+"/net/eth0/address", "52:54:00:AB:CD:01\n")
	w(nic+"/net/eth0/carrier", "1\n")
	w(nic+"/net/eth0/speed", "-1\n")
	ln("../../devices/pci0000:00/0000:00:03.0/virtio0/net/eth0", "sys/class/net/eth0")
	ln("../../../virtio0", nic+"/net/eth0/device")
	w("sys/devices/virtual/net/br0/address", "aa:bb:cc:dd:ee:ff\n")
	ln("../../devices/virtual/net/br0", "sys/class/net/br0")
	w("sys/devices/virtual/net/lo/address", "00:00:00:00:00:00\n")
	ln("../../devices/virtual/net/lo", "sys/class/net/lo")

	vda := "sys/devices/pci0000:00/0000:00:04.0/virtio1/block/vda"
	w(vda+"/size", "131072\n")
	w(vda+"/serial", "disk-serial-1\n")
	w(vda+"/queue/rotational", "1\n")
	w(vda+"/removable", "0\n")
	ln("../../../virtio1", vda+"/device")
	ln("../devices/pci0000:00/0000:00:04.0/virtio1/block/vda", "sys/block/vda")

	nvme := "sys/devices/pci0000:00/0000:00:05.0/nvme/nvme0/nvme0n1"
	w(nvme+"/size", "2097152\n")
	w(nvme+"/wwid", "eui.0123456789abcdef\n")
	w(nvme+"/queue/rotational", "0\n")
	w("sys/devices/pci0000:00/0000:00:05.0/nvme/nvme0/model", "QEMU NVMe Ctrl                          \n")
	w("sys/devices/pci0000:00/0000:00:05.0/nvme/nvme0/serial", "deadbeef            \n")
	ln("../../nvme0", nvme+"/device")
	ln("../devices/pci0000:00/0000:00:05.0/nvme/nvme0/nvme0n1", "sys/block/nvme0n1")

	sda := "sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0"
	w(sda+"/block/sda/size", "4194304\n")
	w(sda+"/block/sda/queue/rotational", "1\n")
	w(sda+"/model", "QEMU HARDDISK   \n")
	w(sda+"/wwid", "t10.ATA     QEMU HARDDISK    \n")
	w(sda+"/vpd_pg80", "\x00\x80\x00\x14SATA-SERIAL-02      ")
	ln("../../../0:0:0:0", sda+"/block/sda/device")
	ln("../devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda", "sys/block/sda")

	w("sys/devices/virtual/block/loop0/size", "100\n")
	ln("../devices/virtual/block/loop0", "sys/block/loop0")
	return root
}

func TestCollect(t *testing.T) {
	inv, errs := Collect(fakeRoot(t))
	if len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	if inv.Kernel != "6.1.0-56-amd64" || inv.MemoryBytes != 393216*1024 {
		t.Errorf("kernel %q memory %d", inv.Kernel, inv.MemoryBytes)
	}
	wantCPU := agentapi.CPU{Model: "Intel(R) Xeon(R) Gold 6230", Arch: Arch(), Sockets: 2, Cores: 4, Threads: 8, Flags: []string{"fpu", "vme", "sse2", "avx2"}}
	if !reflect.DeepEqual(inv.CPU, wantCPU) {
		t.Errorf("cpu %+v, want %+v", inv.CPU, wantCPU)
	}
	wantDMI := agentapi.DMI{SystemVendor: "QEMU", SystemProduct: "Standard PC (Q35 + ICH9, 2009)", SystemSerial: "SN-123",
		SystemUUID: "8a0d6b2e-0000-4000-8000-000000000001", BoardVendor: "QEMU", BoardProduct: "Q35"}
	if inv.DMI != wantDMI {
		t.Errorf("dmi %+v", inv.DMI)
	}
	wantDisks := []agentapi.Disk{
		{Name: "nvme0n1", SizeBytes: 1 << 30, Model: "QEMU NVMe Ctrl", Serial: "deadbeef", WWN: "eui.0123456789abcdef", ByPath: "pci-0000:00:05.0-nvme-1"},
		{Name: "sda", SizeBytes: 2 << 30, Model: "QEMU HARDDISK", Serial: "SATA-SERIAL-02", WWN: "t10.ATA QEMU HARDDISK", Rotational: true, ByPath: "pci-0000:00:1f.2-scsi-0:0:0:0"},
		{Name: "vda", SizeBytes: 64 << 20, Serial: "disk-serial-1", Rotational: true, ByPath: "pci-0000:00:04.0"},
	}
	if !reflect.DeepEqual(inv.Disks, wantDisks) {
		t.Errorf("disks\n got %+v\nwant %+v", inv.Disks, wantDisks)
	}
	wantNICs := []agentapi.NIC{{Name: "eth0", MAC: "52:54:00:ab:cd:01", Driver: "virtio_net", Link: true, SpeedMbps: -1, PCI: "0000:00:03.0"}}
	if !reflect.DeepEqual(inv.NICs, wantNICs) {
		t.Errorf("nics\n got %+v\nwant %+v", inv.NICs, wantNICs)
	}
	if len(inv.PCI) != 4 || inv.PCI[0] != (agentapi.PCIDevice{Address: "0000:00:03.0", VendorID: "1af4", DeviceID: "1000", Class: "020000", Driver: "virtio-pci"}) {
		t.Errorf("pci %+v", inv.PCI)
	}
}

func TestCollectEmptyRoot(t *testing.T) {
	inv, errs := Collect(t.TempDir())
	if len(errs) != 2 {
		t.Errorf("want errors for cpuinfo and meminfo, got %v", errs)
	}
	if len(inv.Disks)+len(inv.NICs)+len(inv.PCI) != 0 {
		t.Errorf("devices from nowhere: %+v", inv)
	}
}

// On the real machine the collector must find at least one CPU and the
// memory; it runs no programs.
func TestCollectHost(t *testing.T) {
	inv, errs := Collect("/")
	if len(errs) != 0 || inv.CPU.Threads == 0 || inv.MemoryBytes == 0 {
		t.Fatalf("host inventory %+v, errors %v", inv, errs)
	}
}
