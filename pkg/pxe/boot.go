package pxe

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/metal-iaas/metal/pkg/dhcp"
)

// ErrUnsupportedArch means no boot file exists for the client's
// architecture (arm64: Debian ships no arm64 iPXE). Such clients are not
// sent a boot file.
var ErrUnsupportedArch = errors.New("pxe: unsupported client architecture")

// Boot file names, as embedded by the ipxe package.
const (
	FileBIOS    = "undionly.kpxe" // BIOS PXE ROMs (uses the ROM's UNDI driver)
	FileUEFISNP = "snponly.efi"   // UEFI PXE over TFTP (uses the firmware's SNP driver; 174 KB)
	FileUEFI    = "ipxe.efi"      // UEFI HTTP Boot (own drivers; 850 KB, size matters less over HTTP)
)

// Kind is how a client boots.
type Kind string

// Boot kinds.
const (
	KindScript Kind = "script" // iPXE: fetch the per-machine script over HTTP
	KindTFTP   Kind = "tftp"   // PXE ROM: fetch an iPXE binary over TFTP
	KindHTTP   Kind = "http"   // UEFI HTTP Boot: fetch an iPXE binary by URL
)

// Boot is the decision for one client.
type Boot struct {
	Kind Kind
	File string // TFTP file name or absolute URL
}

// Policy maps clients to boot files. AdvertiseURL is the base URL machines
// reach metald's HTTP server at (no trailing slash needed).
type Policy struct {
	AdvertiseURL string
	// UEFIBoot is what UEFI x86-64 PXE firmware gets: iPXE (the default)
	// or Debian's signed shim (Secure Boot, shim.go).
	UEFIBoot UEFIBoot
}

// ScriptURL is the iPXE script URL for a MAC. The MAC is taken from the DHCP
// packet rather than iPXE's ${net0/mac}, so a machine booting from its
// second NIC still names the NIC it booted from.
func (p Policy) ScriptURL(mac net.HardwareAddr) string {
	return strings.TrimRight(p.AdvertiseURL, "/") + "/boot.ipxe?mac=" + mac.String()
}

// Decide chooses the boot file:
//
//	iPXE (opt 77 "iPXE" or opt 175)        → script URL (no chainload loop)
//	HTTP Boot, arch 15/16 or "HTTPClient"  → URL of ipxe.efi
//	arch 0 (BIOS) or no option 93          → undionly.kpxe over TFTP
//	arch 6, 7, 9 (UEFI x86)                → snponly.efi over TFTP
//	arch 7, 9 with UEFIBoot shim           → shim/shimx64.efi over TFTP (shim.go)
//	anything else (arm32/arm64 10/11/18/19, …) → ErrUnsupportedArch
func (p Policy) Decide(c Client) (Boot, error) {
	if c.IPXE {
		return Boot{Kind: KindScript, File: p.ScriptURL(c.MAC)}, nil
	}
	if c.HTTP {
		if c.HasArch && c.Arch != iana.EFI_X86_64_HTTP && c.Arch != iana.EFI_X86_HTTP {
			return Boot{}, fmt.Errorf("%w: HTTP arch %d", ErrUnsupportedArch, c.Arch)
		}
		return Boot{Kind: KindHTTP, File: strings.TrimRight(p.AdvertiseURL, "/") + "/ipxe/" + FileUEFI}, nil
	}
	if !c.HasArch {
		return Boot{Kind: KindTFTP, File: FileBIOS}, nil
	}
	switch c.Arch {
	case iana.INTEL_X86PC:
		return Boot{Kind: KindTFTP, File: FileBIOS}, nil
	case iana.EFI_X86_64, iana.EFI_BC:
		if p.UEFIBoot == UEFIBootShim {
			return Boot{Kind: KindTFTP, File: FileShim}, nil
		}
		return Boot{Kind: KindTFTP, File: FileUEFISNP}, nil
	case iana.EFI_IA32:
		return Boot{Kind: KindTFTP, File: FileUEFISNP}, nil
	}
	return Boot{}, fmt.Errorf("%w: arch %d", ErrUnsupportedArch, c.Arch)
}

// Apply adds the boot answer to a full-mode OFFER/ACK: siaddr and options
// 66/67 (and the BOOTP file field); HTTP Boot also gets option 60
// "HTTPClient" as the UEFI specification requires.
func Apply(resp *dhcpv4.DHCPv4, b Boot, tftpServer net.IP) {
	resp.BootFileName = b.File
	resp.UpdateOption(dhcpv4.OptBootFileName(b.File))
	switch b.Kind {
	case KindTFTP:
		resp.ServerIPAddr = tftpServer
		resp.UpdateOption(dhcpv4.OptTFTPServerName(tftpServer.String()))
	case KindHTTP:
		resp.UpdateOption(dhcpv4.OptClassIdentifier("HTTPClient"))
	}
}

// pxeVendorOptions is option 43 for PXE clients: sub-option 6 (discovery
// control) = 8, "boot the file in this offer, skip boot server discovery".
var pxeVendorOptions = []byte{6, 1, 8, 255}

// ProxyReply builds a ProxyDHCP answer (PXE spec §2.2.5): no address
// (yiaddr 0), option 54, option 60 PXEClient or HTTPClient, option 43 for
// PXE clients, option 97 echoed, and the boot file. On port 67 it answers
// DISCOVER with an OFFER; on port 4011 REQUEST (or DISCOVER) with an ACK.
// Other messages get nil.
func ProxyReply(req *dhcpv4.DHCPv4, port int, serverIP net.IP, c Client, b Boot) (*dhcpv4.DHCPv4, error) {
	var t dhcpv4.MessageType
	switch {
	case port == 4011 && (req.MessageType() == dhcpv4.MessageTypeRequest || req.MessageType() == dhcpv4.MessageTypeDiscover):
		t = dhcpv4.MessageTypeAck
	case port != 4011 && req.MessageType() == dhcpv4.MessageTypeDiscover:
		t = dhcpv4.MessageTypeOffer
	default:
		return nil, nil
	}
	class := "PXEClient"
	if b.Kind == KindHTTP {
		class = "HTTPClient"
	}
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(t),
		dhcpv4.WithYourIP(net.IPv4zero),
		dhcpv4.WithServerIP(serverIP),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(serverIP)),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(class)),
	}
	if b.Kind != KindHTTP {
		mods = append(mods, dhcpv4.WithGeneric(dhcpv4.OptionVendorSpecificInformation, pxeVendorOptions))
	}
	if len(c.UUID) > 0 {
		mods = append(mods, dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, c.UUID))
	}
	resp := dhcp.NewReply(req, mods...)
	Apply(resp, b, serverIP)
	return resp, nil
}
