package dhcp

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/golden"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

type staticRes map[string]Reservation

func (s staticRes) Reservation(_ context.Context, mac net.HardwareAddr) (Reservation, bool, error) {
	r, ok := s[mac.String()]
	return r, ok, nil
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newTestAllocator(t *testing.T, store LeaseStore, now *time.Time) *Allocator {
	t.Helper()
	a, err := NewAllocator(context.Background(), AllocatorConfig{
		ServerIP: netip.MustParseAddr("10.0.0.1"), Subnet: netip.MustParsePrefix("10.0.0.0/24"),
		RangeStart: netip.MustParseAddr("10.0.0.100"), RangeEnd: netip.MustParseAddr("10.0.0.102"),
		LeaseTime: time.Hour, Routers: []netip.Addr{netip.MustParseAddr("10.0.0.1")},
		DNS: []netip.Addr{netip.MustParseAddr("10.0.0.53")}, Domain: "example.test", Store: store,
		Reservations: staticRes{"02:00:00:00:00:aa": {IP: netip.MustParseAddr("10.0.0.10"), Hostname: "alpha"}},
		Now:          func() time.Time { return *now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mac(last byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0, last} }

func pkt(t *testing.T, typ dhcpv4.MessageType, hw net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	p, err := dhcpv4.New(append([]dhcpv4.Modifier{
		dhcpv4.WithTransactionID(dhcpv4.TransactionID{1, 2, 3, 4}), dhcpv4.WithHwAddr(hw),
		dhcpv4.WithMessageType(typ), dhcpv4.WithBroadcast(true)}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func summary(p *dhcpv4.DHCPv4) string {
	if p == nil {
		return "(no reply)\n"
	}
	return p.Summary() + "\n"
}

// TestAllocatorExchanges walks RFC 2131 conversations and compares every
// reply with a golden summary.
func TestAllocatorExchanges(t *testing.T) {
	server := dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 0, 0, 1)))
	req := func(ip string) dhcpv4.Modifier {
		return dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(ip)))
	}
	ci := func(ip string) dhcpv4.Modifier { return dhcpv4.WithClientIP(net.ParseIP(ip)) }
	type step struct {
		name string
		typ  dhcpv4.MessageType
		mac  byte
		mods []dhcpv4.Modifier
		want string // expected "TYPE yiaddr" or "none"
	}
	steps := []step{
		{"reserved discover", dhcpv4.MessageTypeDiscover, 0xaa, nil, "OFFER 10.0.0.10"},
		{"reserved select", dhcpv4.MessageTypeRequest, 0xaa, []dhcpv4.Modifier{server, req("10.0.0.10")}, "ACK 10.0.0.10"},
		{"reserved wrong ip naks", dhcpv4.MessageTypeRequest, 0xaa, []dhcpv4.Modifier{req("10.0.0.101")}, "NAK 0.0.0.0"},
		{"pool discover", dhcpv4.MessageTypeDiscover, 0x01, nil, "OFFER 10.0.0.100"},
		{"other server selected", dhcpv4.MessageTypeRequest, 0x01, []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 0, 0, 9))), req("10.0.0.100")}, "none"},
		{"pool discover again", dhcpv4.MessageTypeDiscover, 0x01, nil, "OFFER 10.0.0.101"},
		{"pool select", dhcpv4.MessageTypeRequest, 0x01, []dhcpv4.Modifier{server, req("10.0.0.101")}, "ACK 10.0.0.101"},
		{"renew", dhcpv4.MessageTypeRequest, 0x01, []dhcpv4.Modifier{ci("10.0.0.101"), dhcpv4.WithBroadcast(false)}, "ACK 10.0.0.101"},
		{"second client", dhcpv4.MessageTypeDiscover, 0x02, []dhcpv4.Modifier{req("10.0.0.101")}, "OFFER 10.0.0.102"},
		{"init-reboot someone else's ip", dhcpv4.MessageTypeRequest, 0x02, []dhcpv4.Modifier{req("10.0.0.101")}, "NAK 0.0.0.0"},
		{"init-reboot other network", dhcpv4.MessageTypeRequest, 0x02, []dhcpv4.Modifier{req("192.168.1.5")}, "NAK 0.0.0.0"},
		{"init-reboot unknown client outside pool", dhcpv4.MessageTypeRequest, 0x07, []dhcpv4.Modifier{req("10.0.0.20")}, "none"},
		{"third client exhausts pool", dhcpv4.MessageTypeDiscover, 0x03, nil, "OFFER 10.0.0.100"},
		{"decline", dhcpv4.MessageTypeDecline, 0x03, []dhcpv4.Modifier{req("10.0.0.100")}, "none"},
		{"declined ip avoided, pool full", dhcpv4.MessageTypeDiscover, 0x03, nil, "none"},
		{"release", dhcpv4.MessageTypeRelease, 0x01, []dhcpv4.Modifier{ci("10.0.0.101")}, "none"},
		{"released ip reused", dhcpv4.MessageTypeDiscover, 0x03, nil, "OFFER 10.0.0.101"},
		{"inform", dhcpv4.MessageTypeInform, 0x05, []dhcpv4.Modifier{ci("10.0.0.77")}, "ACK 0.0.0.0"},
		{"relay from foreign subnet ignored", dhcpv4.MessageTypeDiscover, 0x06, []dhcpv4.Modifier{dhcpv4.WithGatewayIP(net.IPv4(192, 168, 7, 1))}, "none"},
	}
	now := t0
	store := NewMemoryStore()
	a := newTestAllocator(t, store, &now)
	var all strings.Builder
	for _, s := range steps {
		resp, err := a.Handle(context.Background(), pkt(t, s.typ, mac(s.mac), s.mods...))
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got := "none"
		if resp != nil {
			got = resp.MessageType().String() + " " + resp.YourIPAddr.String()
		}
		if got != s.want {
			t.Errorf("%s: got %s, want %s", s.name, got, s.want)
		}
		all.WriteString("### " + s.name + "\n" + summary(resp))
		now = now.Add(time.Second)
	}
	golden.Check(t, "allocator_exchanges", all.String())

	// Bound leases were written through; a new allocator loads them.
	l, err := store.Get(context.Background(), mac(0xaa))
	if err != nil || l.State != LeaseBound || l.IP != netip.MustParseAddr("10.0.0.10") || l.Hostname != "alpha" {
		t.Fatalf("stored lease = %+v, %v", l, err)
	}
	b := newTestAllocator(t, store, &now)
	resp, _ := b.Handle(context.Background(), pkt(t, dhcpv4.MessageTypeDiscover, mac(0x09)))
	if resp == nil || resp.YourIPAddr.String() != "10.0.0.100" {
		t.Fatalf("restarted allocator: want 10.0.0.100 (101 is released but 100 free), got %v", summary(resp))
	}
}

func TestAllocatorLeaseExpiry(t *testing.T) {
	now := t0
	a := newTestAllocator(t, NewMemoryStore(), &now)
	server := dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 0, 0, 1)))
	for i, m := range []byte{1, 2, 3} {
		ip := netip.AddrFrom4([4]byte{10, 0, 0, byte(100 + i)})
		resp, _ := a.Handle(context.Background(), pkt(t, dhcpv4.MessageTypeRequest, mac(m), server, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip.AsSlice()))))
		if resp == nil || resp.MessageType() != dhcpv4.MessageTypeAck {
			t.Fatalf("bind %d: %v", m, summary(resp))
		}
	}
	if resp, _ := a.Handle(context.Background(), pkt(t, dhcpv4.MessageTypeDiscover, mac(4))); resp != nil {
		t.Fatalf("full pool answered: %v", summary(resp))
	}
	now = now.Add(2 * time.Hour)
	resp, _ := a.Handle(context.Background(), pkt(t, dhcpv4.MessageTypeDiscover, mac(4)))
	if resp == nil || resp.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatalf("expired leases not reused: %v", summary(resp))
	}
	if got := resp.IPAddressLeaseTime(0); got != time.Hour {
		t.Errorf("lease time %v", got)
	}
	if got := resp.IPAddressRenewalTime(0); got != 30*time.Minute {
		t.Errorf("T1 %v", got)
	}
	if got := resp.IPAddressRebindingTime(0); got != 52*time.Minute+30*time.Second {
		t.Errorf("T2 %v", got)
	}
}

func TestAllocatorConfigErrors(t *testing.T) {
	good := func() AllocatorConfig {
		return AllocatorConfig{ServerIP: netip.MustParseAddr("10.0.0.1"), Subnet: netip.MustParsePrefix("10.0.0.0/24"),
			RangeStart: netip.MustParseAddr("10.0.0.100"), RangeEnd: netip.MustParseAddr("10.0.0.102"), LeaseTime: time.Hour, Store: NewMemoryStore()}
	}
	for name, mut := range map[string]func(*AllocatorConfig){
		"server outside subnet": func(c *AllocatorConfig) { c.ServerIP = netip.MustParseAddr("10.1.0.1") },
		"range reversed":        func(c *AllocatorConfig) { c.RangeStart, c.RangeEnd = c.RangeEnd, c.RangeStart },
		"range outside":         func(c *AllocatorConfig) { c.RangeEnd = netip.MustParseAddr("10.0.1.5") },
		"short lease":           func(c *AllocatorConfig) { c.LeaseTime = time.Second },
		"no store":              func(c *AllocatorConfig) { c.Store = nil },
	} {
		c := good()
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func mustAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }
func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// TestAllocatorIndexBounded: many MACs cycling through a 3-address pool
// leave at most one record per address, in memory and in the store.
func TestAllocatorIndexBounded(t *testing.T) {
	now := t0
	store := NewMemoryStore()
	a := newTestAllocator(t, store, &now)
	server := dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 0, 0, 1)))
	for i := 0; i < 300; i++ {
		hw := net.HardwareAddr{2, 1, 0, 0, byte(i >> 8), byte(i)}
		offer, err := a.Handle(context.Background(), pkt(t, dhcpv4.MessageTypeDiscover, hw))
		if err != nil || offer == nil {
			t.Fatalf("client %d: no offer (%v)", i, err)
		}
		if i%2 == 0 { // half of them bind
			ack, err := a.Handle(context.Background(), pkt(t, dhcpv4.MessageTypeRequest, hw, server, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr))))
			if err != nil || ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
				t.Fatalf("client %d: no ack (%v)", i, err)
			}
		}
		now = now.Add(2 * time.Hour) // every offer and lease runs out
	}
	if n := len(a.byMAC); n > 3 {
		t.Errorf("%d MACs indexed for a 3-address pool", n)
	}
	if ls, _ := store.List(context.Background()); len(ls) > 3 {
		t.Errorf("%d leases stored for a 3-address pool", len(ls))
	}
}

// TestReservationsOnly: full mode without a pool serves reserved machines
// and nobody else.
func TestReservationsOnly(t *testing.T) {
	a, err := NewAllocator(context.Background(), AllocatorConfig{
		ServerIP: netip.MustParseAddr("10.0.0.1"), Subnet: netip.MustParsePrefix("10.0.0.0/24"),
		LeaseTime: time.Hour, Store: NewMemoryStore(),
		Reservations: staticRes{"02:00:00:00:00:aa": {IP: netip.MustParseAddr("10.0.0.10")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Handle(context.Background(), pkt(t, dhcpv4.MessageTypeDiscover, mac(0xaa)))
	if err != nil || resp == nil || resp.YourIPAddr.String() != "10.0.0.10" {
		t.Fatalf("reserved machine: %v %v", err, summary(resp))
	}
	for _, typ := range []dhcpv4.MessageType{dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest} {
		resp, err := a.Handle(context.Background(), pkt(t, typ, mac(0x01),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("10.0.0.50")))))
		if err != nil {
			t.Fatal(err)
		}
		if resp != nil && resp.MessageType() != dhcpv4.MessageTypeNak {
			t.Fatalf("%s from an unreserved MAC without a pool got %s", typ, summary(resp))
		}
	}
}
