package dhcp

import (
	"net"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Ports used by DHCPv4 and PXE.
const (
	ServerPort = 67
	ClientPort = 68
	ProxyPort  = 4011
)

// ReplyAddr chooses where a reply goes, following RFC 2131 §4.1:
//
//  1. giaddr set (relayed): unicast to the relay agent on port 67.
//  2. a DHCPNAK that was not relayed: broadcast to 255.255.255.255:68.
//  3. ciaddr set (RENEWING, REBINDING, INFORM): unicast to ciaddr:68.
//  4. broadcast bit set: broadcast to 255.255.255.255:68.
//  5. otherwise RFC 2131 asks for a unicast to yiaddr at chaddr. That needs
//     the kernel to send to an address the client does not answer ARP for
//     yet (an ARP entry planted per reply, or a raw socket). This server
//     broadcasts instead — every client accepts a broadcast reply addressed
//     to its chaddr/xid, and it is what dnsmasq and pixiecore do too.
//
// Requests that arrived on the ProxyDHCP port 4011 come from a configured
// client (PXE spec §2.2.5): the reply goes back to the datagram's source
// address and port, or is broadcast to that port if the source is 0.0.0.0.
func ReplyAddr(req, resp *dhcpv4.DHCPv4, peer *net.UDPAddr, localPort int) *net.UDPAddr {
	if localPort == ProxyPort && peer != nil {
		if ip := peer.IP.To4(); ip != nil && !ip.IsUnspecified() {
			return &net.UDPAddr{IP: ip, Port: peer.Port}
		}
		return &net.UDPAddr{IP: net.IPv4bcast, Port: peer.Port}
	}
	if gi := req.GatewayIPAddr.To4(); gi != nil && !gi.IsUnspecified() {
		return &net.UDPAddr{IP: gi, Port: ServerPort}
	}
	if resp != nil && resp.MessageType() == dhcpv4.MessageTypeNak {
		return &net.UDPAddr{IP: net.IPv4bcast, Port: ClientPort}
	}
	if ci := req.ClientIPAddr.To4(); ci != nil && !ci.IsUnspecified() {
		return &net.UDPAddr{IP: ci, Port: ClientPort}
	}
	return &net.UDPAddr{IP: net.IPv4bcast, Port: ClientPort}
}
