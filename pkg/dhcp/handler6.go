package dhcp

import (
	"context"
	"net"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// DHCPv6 ports (RFC 8415 §7.2).
const (
	ClientPort6 = dhcpv6.DefaultClientPort // 546
	ServerPort6 = dhcpv6.DefaultServerPort // 547
)

// Request6 is one parsed DHCPv6 client message and where it came from.
type Request6 struct {
	// Message is the client's message (inside any relay encapsulation).
	Message *dhcpv6.Message
	// Relay is the outermost Relay-forward the message came in, nil when
	// the client sent it directly.
	Relay *dhcpv6.RelayMessage
	// Peer is the UDP source address of the datagram.
	Peer *net.UDPAddr
	// Interface is the interface the listener is bound to ("" = any).
	Interface string
	// MAC is the client's hardware address when the message tells it
	// (ClientMAC6); nil otherwise.
	MAC net.HardwareAddr
	// MACSource says where MAC came from: duid, relay or link-local.
	MACSource string
}

// Handler6 decides the answer to every DHCPv6 request. A nil reply with a
// nil error means "stay silent". The server adds its Server Identifier and
// wraps the reply for a relay; the handler builds the rest (NewReply6).
type Handler6 interface {
	ServeDHCPv6(ctx context.Context, req *Request6) (*dhcpv6.Message, error)
}

// Handler6Func adapts a function to Handler6.
type Handler6Func func(ctx context.Context, req *Request6) (*dhcpv6.Message, error)

// ServeDHCPv6 calls f.
func (f Handler6Func) ServeDHCPv6(ctx context.Context, req *Request6) (*dhcpv6.Message, error) {
	return f(ctx, req)
}

// NewReply6 starts the answer to req: an Advertise to a Solicit (rapid
// commit is not offered: RFC 8415 §18.3.1 lets a server ignore it), a
// Reply to anything else, with the transaction ID and the Client
// Identifier echoed.
func NewReply6(req *dhcpv6.Message, mods ...dhcpv6.Modifier) *dhcpv6.Message {
	t := dhcpv6.MessageTypeReply
	if req.MessageType == dhcpv6.MessageTypeSolicit {
		t = dhcpv6.MessageTypeAdvertise
	}
	m := &dhcpv6.Message{MessageType: t, TransactionID: req.TransactionID}
	if cid := req.GetOneOption(dhcpv6.OptionClientID); cid != nil {
		m.AddOption(cid)
	}
	for _, mod := range mods {
		mod(m)
	}
	return m
}
