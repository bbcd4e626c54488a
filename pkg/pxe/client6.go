package pxe

import (
	"net"
	"net/netip"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// ParseClient6 classifies a DHCPv6 request as ParseClient does a DHCPv4
// one, so that Policy.Decide maps both alike: option 61 (client
// architecture, RFC 5970) stands for option 93, option 16 (vendor class:
// "PXEClient:Arch:…" or "HTTPClient:Arch:…") for option 60, option 15
// (user class "iPXE") for option 77. mac is the client's hardware
// address as the server found it (dhcp.ClientMAC6); a DUID-UUID goes to
// UUID as option 97 would (type 0 + 16 bytes).
func ParseClient6(m *dhcpv6.Message, mac net.HardwareAddr) Client {
	c := Client{MAC: mac}
	if archs := m.Options.ArchTypes(); len(archs) > 0 {
		c.Arch, c.HasArch = archs[0], true
	}
	for _, vc := range m.Options.VendorClasses() {
		for _, d := range vc.Data {
			if s := string(d); c.VendorClass == "" || strings.HasPrefix(s, "PXEClient") || strings.HasPrefix(s, "HTTPClient") {
				c.VendorClass = s
			}
		}
	}
	c.PXE = strings.HasPrefix(c.VendorClass, "PXEClient")
	c.HTTP = strings.HasPrefix(c.VendorClass, "HTTPClient")
	if c.HasArch && c.Arch >= iana.EFI_X86_HTTP && c.Arch <= iana.INTEL_X86PC_HTTP {
		c.HTTP = true
	}
	for _, uc := range m.Options.UserClasses() {
		if string(uc) == "iPXE" {
			c.IPXE = true
		}
	}
	if u, ok := m.Options.ClientID().(*dhcpv6.DUIDUUID); ok {
		c.UUID = append([]byte{0}, u.UUID[:]...)
	}
	// A PXE client that sends no vendor class but asks for a boot file
	// URL with an architecture is netbooting too (EDK2 sends both).
	if !c.Netboot() && c.HasArch && m.IsOptionRequested(dhcpv6.OptionBootfileURL) {
		c.PXE = true
	}
	return c
}

// BootURL6 is the Boot File URL (DHCPv6 option 59, RFC 5970) of boot b:
// a TFTP file becomes tftp://[server]/file, a URL (HTTP Boot, iPXE
// script) stays as it is.
func BootURL6(b Boot, tftpServer netip.Addr) string {
	if b.Kind != KindTFTP {
		return b.File
	}
	return "tftp://[" + tftpServer.String() + "]/" + strings.TrimLeft(b.File, "/")
}

// Apply6 adds boot b to a DHCPv6 Advertise or Reply: option 59, and for
// HTTP Boot option 16 "HTTPClient" as the UEFI specification requires.
func Apply6(resp *dhcpv6.Message, b Boot, tftpServer netip.Addr) {
	resp.UpdateOption(dhcpv6.OptBootFileURL(BootURL6(b, tftpServer)))
	if b.Kind == KindHTTP {
		resp.UpdateOption(&dhcpv6.OptVendorClass{EnterpriseNumber: enterprisePXE, Data: [][]byte{[]byte("HTTPClient")}})
	}
}

// enterprisePXE is the enterprise number UEFI firmware puts in its
// DHCPv6 vendor class (343, Intel).
const enterprisePXE = 343
