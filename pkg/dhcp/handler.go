package dhcp

import (
	"context"
	"net"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Request is one parsed DHCPv4 packet and where it came from.
type Request struct {
	// Packet is the parsed client (or relay) message.
	Packet *dhcpv4.DHCPv4
	// Peer is the UDP source address of the datagram.
	Peer *net.UDPAddr
	// LocalPort is the port the datagram arrived on (67 or 4011).
	LocalPort int
	// Interface is the interface the listener is bound to ("" = any).
	Interface string
}

// Handler decides the answer to every request. A nil reply with a nil error
// means "stay silent". Errors are counted and logged; no reply is sent.
type Handler interface {
	ServeDHCP(ctx context.Context, req *Request) (*dhcpv4.DHCPv4, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request) (*dhcpv4.DHCPv4, error)

// ServeDHCP calls f.
func (f HandlerFunc) ServeDHCP(ctx context.Context, req *Request) (*dhcpv4.DHCPv4, error) {
	return f(ctx, req)
}
