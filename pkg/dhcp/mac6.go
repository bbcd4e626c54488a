package dhcp

import (
	"net"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// Where ClientMAC6 found a client's hardware address.
const (
	MACFromDUID      = "duid"       // DUID-LL or DUID-LLT (RFC 8415 §11.2, §11.4)
	MACFromRelay     = "relay"      // Client Link-Layer Address option of a relay (RFC 6939)
	MACFromLinkLocal = "link-local" // modified EUI-64 interface ID of the source address (RFC 4291 App. A)
)

// ClientMAC6 finds the Ethernet address of the client that sent msg, which
// DHCPv6 does not carry as such (a client is its DUID): from a DUID-LL or
// DUID-LLT of hardware type Ethernet, else from the Client Link-Layer
// Address option of the relay closest to the client, else from the
// EUI-64 interface identifier of a link-local source address (firmware
// and iPXE, whose DUID is a DUID-UUID, form their link-local address so).
// It returns nil when none of them tells.
func ClientMAC6(msg *dhcpv6.Message, relay *dhcpv6.RelayMessage, peer net.IP) (net.HardwareAddr, string) {
	switch d := msg.Options.ClientID().(type) {
	case *dhcpv6.DUIDLL:
		if d.HWType == iana.HWTypeEthernet && len(d.LinkLayerAddr) == 6 {
			return d.LinkLayerAddr, MACFromDUID
		}
	case *dhcpv6.DUIDLLT:
		if d.HWType == iana.HWTypeEthernet && len(d.LinkLayerAddr) == 6 {
			return d.LinkLayerAddr, MACFromDUID
		}
	}
	if relay != nil {
		if mac := innermostRelayMAC(relay); mac != nil {
			return mac, MACFromRelay
		}
		if r := innermostRelay(relay); r != nil {
			peer = r.PeerAddr
		}
	}
	if mac := EUI64MAC(peer); mac != nil {
		return mac, MACFromLinkLocal
	}
	return nil, ""
}

// EUI64MAC returns the MAC address embedded in a link-local address whose
// interface ID is a modified EUI-64 (ff:fe in its middle), else nil.
func EUI64MAC(ip net.IP) net.HardwareAddr {
	ip = ip.To16()
	if ip == nil || ip.To4() != nil || !ip.IsLinkLocalUnicast() || ip[11] != 0xff || ip[12] != 0xfe {
		return nil
	}
	return net.HardwareAddr{ip[8] ^ 0x02, ip[9], ip[10], ip[13], ip[14], ip[15]}
}

// innermostRelay is the relay agent closest to the client.
func innermostRelay(r *dhcpv6.RelayMessage) *dhcpv6.RelayMessage {
	for range maxHops6 {
		inner, ok := r.Options.RelayMessage().(*dhcpv6.RelayMessage)
		if !ok {
			return r
		}
		r = inner
	}
	return nil
}

func innermostRelayMAC(r *dhcpv6.RelayMessage) net.HardwareAddr {
	in := innermostRelay(r)
	if in == nil {
		return nil
	}
	ht, mac := in.Options.ClientLinkLayerAddress()
	if ht == iana.HWTypeEthernet && len(mac) == 6 {
		return mac
	}
	return nil
}
