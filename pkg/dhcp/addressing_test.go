package dhcp

import (
	"net"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func TestReplyAddr(t *testing.T) {
	hw := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	mk := func(mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
		p, _ := dhcpv4.NewDiscovery(hw, mods...)
		return p
	}
	ack, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeAck))
	nak, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeNak))
	bcast := "255.255.255.255:68"
	for _, tc := range []struct {
		name string
		req  *dhcpv4.DHCPv4
		resp *dhcpv4.DHCPv4
		peer *net.UDPAddr
		port int
		want string
	}{
		{"relayed goes to giaddr:67", mk(dhcpv4.WithGatewayIP(net.IPv4(10, 1, 0, 1))), ack, nil, 67, "10.1.0.1:67"},
		{"relayed NAK still to relay", mk(dhcpv4.WithGatewayIP(net.IPv4(10, 1, 0, 1))), nak, nil, 67, "10.1.0.1:67"},
		{"NAK broadcast", mk(dhcpv4.WithClientIP(net.IPv4(10, 0, 0, 5))), nak, nil, 67, bcast},
		{"ciaddr unicast", mk(dhcpv4.WithClientIP(net.IPv4(10, 0, 0, 5)), dhcpv4.WithBroadcast(false)), ack, nil, 67, "10.0.0.5:68"},
		{"broadcast flag", mk(dhcpv4.WithBroadcast(true)), ack, nil, 67, bcast},
		{"no ciaddr, unicast flag: broadcast fallback", mk(dhcpv4.WithBroadcast(false)), ack, nil, 67, bcast},
		{"proxy port answers source", mk(), ack, &net.UDPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 68}, 4011, "10.0.0.7:68"},
		{"proxy port unspecified source", mk(), ack, &net.UDPAddr{IP: net.IPv4zero, Port: 68}, 4011, bcast},
	} {
		if got := ReplyAddr(tc.req, tc.resp, tc.peer, tc.port).String(); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	good, _ := dhcpv4.NewDiscovery(net.HardwareAddr{2, 0, 0, 0, 0, 1})
	if _, err := Parse(good.ToBytes()); err != nil {
		t.Fatalf("good discover: %v", err)
	}
	offer, _ := dhcpv4.NewReplyFromRequest(good, dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer))
	noType, _ := dhcpv4.NewDiscovery(net.HardwareAddr{2, 0, 0, 0, 0, 1}, dhcpv4.WithoutOption(dhcpv4.OptionDHCPMessageType))
	for name, b := range map[string][]byte{
		"empty":        nil,
		"short":        make([]byte, 100),
		"reply opcode": offer.ToBytes(),
		"no type":      noType.ToBytes(),
		"garbage":      []byte("this is not a dhcp packet at all, but it is long enough? no."),
	} {
		if _, err := Parse(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
