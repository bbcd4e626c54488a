package dhcp

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzHandle feeds raw bytes through Parse and the full-mode allocator.
func FuzzHandle(f *testing.F) {
	hw := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	d, _ := dhcpv4.NewDiscovery(hw)
	f.Add(d.ToBytes())
	r, _ := dhcpv4.NewDiscovery(hw, dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 0, 0, 100))), dhcpv4.WithClientIP(net.IPv4(10, 0, 0, 100)))
	f.Add(r.ToBytes())
	i, _ := dhcpv4.NewInform(hw, net.IPv4(10, 0, 0, 5))
	f.Add(i.ToBytes())
	f.Add([]byte{1, 1, 6, 0})
	now := t0
	f.Fuzz(func(t *testing.T, b []byte) {
		a := newTestAllocator(t, NewMemoryStore(), &now)
		p, err := Parse(b)
		if err != nil {
			return
		}
		resp, err := a.Handle(context.Background(), p)
		if err != nil || resp == nil {
			return
		}
		if _, err := dhcpv4.FromBytes(resp.ToBytes()); err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
		now = now.Add(time.Second)
	})
}
