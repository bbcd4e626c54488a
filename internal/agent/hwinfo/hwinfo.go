// Package hwinfo collects the machine's hardware inventory from /proc and
// /sys only (no external programs), under a root directory so that tests
// can point it at a fake tree.
package hwinfo

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

// Collect reads the inventory below root ("/" on a real machine). Missing
// files leave fields empty; only an unreadable /proc/cpuinfo and
// /proc/meminfo are reported, in errs, without stopping the collection.
func Collect(root string) (agentapi.Inventory, []error) {
	var inv agentapi.Inventory
	var errs []error
	inv.Kernel = readTrim(filepath.Join(root, "proc/sys/kernel/osrelease"))
	cpu, err := CPU(root)
	if err != nil {
		errs = append(errs, err)
	}
	inv.CPU = cpu
	if inv.MemoryBytes, err = Memory(root); err != nil {
		errs = append(errs, err)
	}
	inv.DMI = DMI(root)
	inv.Disks = Disks(root)
	inv.NICs = NICs(root)
	inv.PCI = PCI(root)
	inv.Firmware, inv.SecureBoot = SecureBoot(root)
	return inv, errs
}

// readTrim returns the file's content without surrounding white space, or
// "" when it cannot be read.
func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// linkBase is the base name of the symlink target of p, or "".
func linkBase(p string) string {
	t, err := os.Readlink(p)
	if err != nil {
		return ""
	}
	return filepath.Base(t)
}

// Arch is the machine name as uname -m prints it.
func Arch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "i686"
	}
	return runtime.GOARCH
}
