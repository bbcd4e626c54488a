package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/metal-iaas/metal/test/bmcsim"
)

// VMConfig describes a QEMU machine behind an ipmi_sim BMC.
type VMConfig struct {
	// Name labels the files (Dir/<Name>/...); required.
	Name string
	// MAC of the virtio NIC; required.
	MAC string
	// DiskBytes is the size of the blank virtio disk (default 1 GiB,
	// sparse).
	DiskBytes int64
	// MemMiB is the VM's memory (default 384).
	MemMiB int
	// BMCPort is ipmi_sim's UDP port on the namespace's loopback (default
	// 6230 + the VM's index).
	BMCPort int
	// UEFI boots the VM with OVMF on q35 instead of SeaBIOS; the BMC's
	// boot device then picks bootindex order (see efi.go). Default BIOS.
	UEFI bool
	// SecureBoot (with UEFI) runs OVMF's Secure Boot build with
	// Microsoft's keys enrolled and Secure Boot enforced (secureboot.go).
	SecureBoot bool
	// CPU is QEMU's -cpu model (default "max"). "qemu64" has no RDRAND:
	// under TCG the guest kernel's CRNG then initialises late, which is
	// what the agent must live with.
	CPU string
}

// VM is a QEMU machine powered by an ipmi_sim BMC in the namespace. The
// BMC's boot device picks QEMU's -boot (pxe → network, else disk).
type VM struct {
	Cfg    VMConfig
	Dir    string
	Disk   string // raw disk file
	Serial string // serial console log (appended across power cycles)
	Tap    string
	BMC    *bmcsim.IPMISim
}

// AddVM creates the tap, the blank disk and the BMC; the VM stays off
// until the BMC powers it on.
func (l *Lab) AddVM(ctx context.Context, cfg VMConfig) (*VM, error) {
	if cfg.Name == "" || cfg.MAC == "" {
		return nil, fmt.Errorf("lab: VM Name and MAC are required")
	}
	if cfg.DiskBytes == 0 {
		cfg.DiskBytes = 1 << 30
	}
	if cfg.MemMiB == 0 {
		cfg.MemMiB = 384
	}
	tap, err := l.AddTap(ctx)
	if err != nil {
		return nil, err
	}
	if cfg.BMCPort == 0 {
		n, _ := strconv.Atoi(strings.TrimPrefix(tap, "tap"))
		cfg.BMCPort = 6230 + n
	}
	v := &VM{Cfg: cfg, Dir: filepath.Join(l.Dir, cfg.Name), Tap: tap}
	if err := os.MkdirAll(filepath.Join(v.Dir, "bmc"), 0o755); err != nil {
		return nil, err
	}
	v.Disk = filepath.Join(v.Dir, "disk.raw")
	v.Serial = filepath.Join(v.Dir, "serial.log")
	if err := os.WriteFile(v.Disk, nil, 0o644); err != nil {
		return nil, err
	}
	if err := os.Truncate(v.Disk, cfg.DiskBytes); err != nil {
		return nil, err
	}
	if cfg.CPU == "" {
		cfg.CPU = "max"
	}
	qemu := []string{"qemu-system-x86_64", "-name", cfg.Name, "-accel", "tcg", "-cpu", cfg.CPU,
		"-m", strconv.Itoa(cfg.MemMiB), "-smp", "1", "-display", "none", "-monitor", "none", "-parallel", "none",
		"-chardev", "file,id=ser0,path=" + v.Serial + ",append=on", "-serial", "chardev:ser0",
		"-netdev", "tap,id=n0,ifname=" + tap + ",script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,mac=" + cfg.MAC,
		"-drive", "file=" + v.Disk + ",if=virtio,format=raw,cache=unsafe"}
	if cfg.UEFI && l.cfg.IPv6Only {
		// OVMF's IPv4 PXE and HTTP boot options would each time out
		// first (~60 s); PXEv6 is then the first network boot option.
		qemu = append(qemu, "-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=n")
	}
	if cfg.UEFI {
		if qemu, err = uefiVM(v, qemu); err != nil {
			return nil, err
		}
	}
	bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sim, err := bmcsim.StartIPMISim(bctx, bmcsim.IPMIConfig{
		Dir: filepath.Join(v.Dir, "bmc"), Port: cfg.BMCPort, User: "admin", Password: "metal-lab",
		VM: qemu, Prefix: []string{"ip", "netns", "exec", l.NS},
	})
	if err != nil {
		return nil, err
	}
	v.BMC = sim
	l.mu.Lock()
	l.closers = append(l.closers, sim.Close)
	l.mu.Unlock()
	return v, nil
}

// BMCURL is the machine's BMC address for metalctl machine add --bmc.
func (v *VM) BMCURL() string { return v.BMC.URL() }

// SerialText is the serial console so far.
func (v *VM) SerialText() string {
	b, _ := os.ReadFile(v.Serial)
	return string(b)
}

// WaitSerial waits until the serial console shows s after offset bytes;
// it returns the console's length at the match.
func (v *VM) WaitSerial(ctx context.Context, s string, offset int, d time.Duration) (int, error) {
	deadline := time.Now().Add(d)
	for {
		text := v.SerialText()
		if offset < len(text) {
			if i := strings.Index(text[offset:], s); i >= 0 {
				return offset + i + len(s), nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, fmt.Errorf("%s: %q not on the serial console within %v", v.Cfg.Name, s, d)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
