package pxe

import (
	"net"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// Client is what a DHCP request tells about the firmware that sent it.
type Client struct {
	MAC         net.HardwareAddr
	Arch        iana.Arch // option 93, first entry
	HasArch     bool
	VendorClass string // option 60
	PXE         bool   // vendor class starts with "PXEClient"
	HTTP        bool   // vendor class "HTTPClient…" or an HTTP arch (15–20)
	IPXE        bool   // option 77 user class "iPXE" or option 175 present
	UUID        []byte // option 97, copied into PXE answers
}

// optionIPXEEncap is iPXE's encapsulated option space (175).
const optionIPXEEncap = 175

// ParseClient classifies a request.
func ParseClient(p *dhcpv4.DHCPv4) Client {
	c := Client{MAC: p.ClientHWAddr, VendorClass: p.ClassIdentifier()}
	if archs := p.ClientArch(); len(archs) > 0 {
		c.Arch, c.HasArch = archs[0], true
	}
	c.PXE = strings.HasPrefix(c.VendorClass, "PXEClient")
	c.HTTP = strings.HasPrefix(c.VendorClass, "HTTPClient")
	if c.HasArch && c.Arch >= iana.EFI_X86_HTTP && c.Arch <= iana.INTEL_X86PC_HTTP {
		c.HTTP = true
	}
	for _, uc := range p.UserClass() {
		if uc == "iPXE" {
			c.IPXE = true
		}
	}
	if p.Options.Has(dhcpv4.GenericOptionCode(optionIPXEEncap)) {
		c.IPXE = true
	}
	c.UUID = p.Options.Get(dhcpv4.OptionClientMachineIdentifier)
	return c
}

// Netboot reports whether the client asks to boot from the network.
func (c Client) Netboot() bool { return c.PXE || c.HTTP || c.IPXE }
