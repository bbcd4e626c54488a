package dhcp

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// FuzzParse6 feeds raw bytes through Parse6, ClientMAC6 and the full-mode
// v6 allocator; every reply must encode and parse back.
func FuzzParse6(f *testing.F) {
	hw := net.HardwareAddr{2, 0, 0, 0, 6, 1}
	sol := solicit6(f, hw)
	f.Add(sol.ToBytes())
	sid := &dhcpv6.DUIDLL{HWType: 1, LinkLayerAddr: net.HardwareAddr{2, 0, 0, 0, 0, 1}}
	adv := NewReply6(sol, dhcpv6.WithServerID(sid))
	if req, err := dhcpv6.NewRequestFromAdvertise(adv); err == nil {
		f.Add(req.ToBytes())
	}
	if fw, err := dhcpv6.EncapsulateRelay(sol, dhcpv6.MessageTypeRelayForward, net.ParseIP("fd00::2"), net.ParseIP("fe80::1")); err == nil {
		f.Add(fw.ToBytes())
	}
	f.Add([]byte{1, 0, 0, 0})
	f.Add([]byte{12, 0})
	now := t0
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, relay, err := Parse6(b)
		if err != nil {
			return
		}
		a := newTestAllocator6(t, NewMemoryStore(), &now)
		req := &Request6{Message: msg, Relay: relay}
		req.MAC, req.MACSource = ClientMAC6(msg, relay, net.ParseIP("fe80::ff:fe00:1"))
		resp, err := a.Handle(context.Background(), req)
		if err != nil || resp == nil {
			return
		}
		if _, err := dhcpv6.FromBytes(resp.ToBytes()); err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
		now = now.Add(time.Second)
	})
}
