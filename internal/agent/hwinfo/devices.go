package hwinfo

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

var pciAddr = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)

// skipDisk names block devices that are not disks.
func skipDisk(name string) bool {
	for _, p := range []string{"loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Disks lists whole disks from /sys/block: those with a device link (real
// hardware), not loop/ram/dm/md/optical.
func Disks(root string) []agentapi.Disk {
	base := filepath.Join(root, "sys/block")
	ents, _ := os.ReadDir(base)
	var out []agentapi.Disk
	for _, e := range ents {
		n := e.Name()
		dir := filepath.Join(base, n)
		if skipDisk(n) {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "device")); err != nil {
			continue
		}
		r := func(p string) string { return readTrim(filepath.Join(dir, p)) }
		sectors, _ := strconv.ParseInt(r("size"), 10, 64)
		d := agentapi.Disk{
			Name:       n,
			SizeBytes:  sectors * 512,
			Model:      first(r("device/model"), r("device/name")),
			Serial:     first(r("serial"), r("device/serial"), vpdSerial(filepath.Join(dir, "device/vpd_pg80"))),
			WWN:        strings.Join(strings.Fields(first(r("wwid"), r("device/wwid"), r("device/wwn"))), " "),
			Rotational: r("queue/rotational") == "1",
			Removable:  r("removable") == "1",
			ByPath:     byPath(dir),
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// vpdSerial reads the unit serial number from a SCSI VPD page 0x80 as
// sysfs exposes it: a 4-byte header (qualifier, page code 0x80, 16-bit
// length) then the serial, space padded.
func vpdSerial(p string) string {
	b, err := os.ReadFile(p)
	if err != nil || len(b) < 4 || b[1] != 0x80 {
		return ""
	}
	n := int(b[2])<<8 | int(b[3])
	if n > len(b)-4 {
		n = len(b) - 4
	}
	return strings.TrimSpace(string(b[4 : 4+n]))
}

func first(vals ...string) string {
	for _, v := range vals {
		if v = strings.Map(printable, v); strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func printable(r rune) rune {
	if r < 0x20 || r == 0x7f {
		return -1
	}
	return r
}

// byPath derives udev's by-path name from the resolved device path:
// "pci-<addr>" of the nearest PCI ancestor, with "-nvme-<nsid>" for NVMe
// namespaces and "-scsi-<h:c:t:l>" for SCSI/ATA disks.
func byPath(blockDir string) string {
	real, err := filepath.EvalSymlinks(filepath.Join(blockDir, "device"))
	if err != nil {
		return ""
	}
	parts := strings.Split(filepath.ToSlash(real), "/")
	pci := ""
	scsi := ""
	for _, p := range parts {
		if pciAddr.MatchString(p) {
			pci = p
		}
		if strings.Count(p, ":") == 3 && !strings.Contains(p, ".") {
			scsi = p
		}
	}
	if pci == "" {
		return ""
	}
	name := filepath.Base(blockDir)
	switch {
	case strings.HasPrefix(name, "nvme"):
		if i := strings.LastIndex(name, "n"); i > 0 {
			return "pci-" + pci + "-nvme-" + name[i+1:]
		}
	case scsi != "":
		return "pci-" + pci + "-scsi-" + scsi
	}
	return "pci-" + pci
}

// NICs lists physical network interfaces from /sys/class/net (those with
// a device link), sorted by name.
func NICs(root string) []agentapi.NIC {
	base := filepath.Join(root, "sys/class/net")
	ents, _ := os.ReadDir(base)
	var out []agentapi.NIC
	for _, e := range ents {
		dir := filepath.Join(base, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "device")); err != nil {
			continue
		}
		r := func(p string) string { return readTrim(filepath.Join(dir, p)) }
		speed, err := strconv.Atoi(r("speed"))
		if err != nil {
			speed = -1
		}
		n := agentapi.NIC{
			Name:      e.Name(),
			MAC:       strings.ToLower(r("address")),
			Driver:    linkBase(filepath.Join(dir, "device/driver")),
			Link:      r("carrier") == "1",
			SpeedMbps: speed,
		}
		// virtio NICs hang below a virtioN device below the PCI function.
		if real, err := filepath.EvalSymlinks(filepath.Join(dir, "device")); err == nil {
			for _, p := range strings.Split(filepath.ToSlash(real), "/") {
				if pciAddr.MatchString(p) {
					n.PCI = p
				}
			}
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// PCI lists the functions under /sys/bus/pci/devices.
func PCI(root string) []agentapi.PCIDevice {
	base := filepath.Join(root, "sys/bus/pci/devices")
	ents, _ := os.ReadDir(base)
	var out []agentapi.PCIDevice
	for _, e := range ents {
		dir := filepath.Join(base, e.Name())
		r := func(p string) string {
			return strings.TrimPrefix(readTrim(filepath.Join(dir, p)), "0x")
		}
		out = append(out, agentapi.PCIDevice{
			Address:  e.Name(),
			VendorID: r("vendor"),
			DeviceID: r("device"),
			Class:    r("class"),
			Driver:   linkBase(filepath.Join(dir, "driver")),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}
