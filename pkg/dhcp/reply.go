package dhcp

import (
	"net"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// NewReply builds a reply to req as dhcpv4.NewReplyFromRequest does (op,
// htype, xid, flags, chaddr and giaddr from the request; options 82 and 61
// echoed) but without first drawing a random transaction ID, which costs a
// getrandom(2) call and a timer per packet.
func NewReply(req *dhcpv4.DHCPv4, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	d := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootReply,
		HWType:        req.HWType,
		TransactionID: req.TransactionID,
		Flags:         req.Flags,
		ClientHWAddr:  req.ClientHWAddr,
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: net.IPv4zero,
		Options:       make(dhcpv4.Options),
	}
	if req.GatewayIPAddr != nil {
		d.GatewayIPAddr = req.GatewayIPAddr
	}
	for _, code := range []dhcpv4.OptionCode{dhcpv4.OptionRelayAgentInformation, dhcpv4.OptionClientIdentifier} {
		if v := req.Options.Get(code); v != nil {
			d.Options.Update(dhcpv4.OptGeneric(code, v))
		}
	}
	for _, m := range mods {
		m(d)
	}
	return d
}
