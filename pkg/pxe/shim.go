package pxe

import (
	"fmt"
	"net"
	"strings"
)

// UEFIBoot is the network boot chain UEFI x86-64 PXE firmware gets.
type UEFIBoot string

// UEFI boot chains.
const (
	// UEFIBootIPXE hands out iPXE (snponly.efi), unsigned: firmware that
	// enforces Secure Boot refuses it ("Access Denied").
	UEFIBootIPXE UEFIBoot = "ipxe"
	// UEFIBootShim hands out Debian's shim, signed by Microsoft's UEFI
	// CA, which loads Debian's signed network GRUB from the same TFTP
	// directory; GRUB reads GrubConfig, which sources the machine's
	// GrubMachineConfig, which boots Debian's signed kernel (or exits to
	// the firmware for the local disk).
	UEFIBootShim UEFIBoot = "shim"
)

// ParseUEFIBoot parses --uefi-boot: "ipxe" or "shim" ("" is ipxe).
func ParseUEFIBoot(s string) (UEFIBoot, error) {
	switch v := UEFIBoot(strings.ToLower(strings.TrimSpace(s))); v {
	case "":
		return UEFIBootIPXE, nil
	case UEFIBootIPXE, UEFIBootShim:
		return v, nil
	}
	return "", fmt.Errorf("pxe: uefi boot %q: want ipxe or shim", s)
}

// The Secure Boot chain's TFTP names (slash-separated, relative to the
// TFTP root; GRUB asks for its files with a leading slash, which
// pkg/bootfs strips).
const (
	// FileShim is the BOOTP file of the chain: shimx64.efi.signed.
	FileShim = "shim/shimx64.efi"
	// FileGrub is what shim loads from FileShim's directory:
	// grubnetx64.efi.signed, under the name shim looks for.
	FileGrub = "shim/grubx64.efi"
	// GrubConfig is the configuration grubnetx64 reads first: its
	// prefix is (tftp,<next-server>)/grub.
	GrubConfig = "grub/grub.cfg"
	// GrubMachinePrefix + the MAC (lower case, colons: GRUB's
	// $net_default_mac) is a machine's own configuration.
	GrubMachinePrefix = "grub/grub.cfg-"
	// FileAgentKernel and FileAgentInitrd are the agent's boot files as
	// GRUB loads them over TFTP (it has no HTTP module).
	FileAgentKernel = "agent/vmlinuz"
	FileAgentInitrd = "agent/initrd"
)

// GrubConfigText is GrubConfig's content: `[ -e ]` is always false over
// TFTP, so the machine's file is sourced by name; when there is none
// (unknown machine), GRUB exits to the firmware.
const GrubConfigText = `# metal: GRUB network boot (Secure Boot chain). metald renders each
# machine's configuration as grub.cfg-<MAC>.
set timeout=0
echo "metal: loading $prefix/grub.cfg-$net_default_mac"
source "$prefix/grub.cfg-$net_default_mac"
echo "metal: no boot configuration for $net_default_mac: back to the firmware"
sleep 3
exit
`

// GrubMachineMAC returns the MAC of a GrubMachinePrefix name (cleaned,
// without a leading slash), and false for any other name.
func GrubMachineMAC(name string) (net.HardwareAddr, bool) {
	rest, ok := strings.CutPrefix(name, GrubMachinePrefix)
	if !ok {
		return nil, false
	}
	mac, err := net.ParseMAC(rest)
	if err != nil || len(mac) != 6 {
		return nil, false
	}
	return mac, true
}
