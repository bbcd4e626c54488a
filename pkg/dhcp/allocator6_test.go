package dhcp

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// fixedRes6 reserves addresses by MAC.
type fixedRes6 map[string]Reservation

func (f fixedRes6) Reservation(_ context.Context, mac net.HardwareAddr) (Reservation, bool, error) {
	r, ok := f[mac.String()]
	return r, ok, nil
}

// msg6 builds a client message of type t from hw carrying an IA_NA (with
// addr when valid) and, for types that need one, the server ID.
func msg6(t *testing.T, typ dhcpv6.MessageType, hw net.HardwareAddr, addr netip.Addr) *Request6 {
	t.Helper()
	m, err := dhcpv6.NewSolicit(hw, dhcpv6.WithClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: hw}))
	if err != nil {
		t.Fatal(err)
	}
	m.MessageType = typ
	if addr.IsValid() {
		ia := m.Options.OneIANA()
		ia.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: addr.AsSlice()})
		m.UpdateOption(ia)
	}
	return &Request6{Message: m, MAC: hw}
}

func status6Of(m *dhcpv6.Message) iana.StatusCode {
	if ia := m.Options.OneIANA(); ia != nil {
		if st := ia.Options.Status(); st != nil {
			return st.StatusCode
		}
	}
	if st := m.Options.Status(); st != nil {
		return st.StatusCode
	}
	return iana.StatusSuccess
}

// TestAllocator6Lifecycle walks one client through Solicit, Request,
// Renew, Release and another through Decline, Confirm and a restart that
// reloads the leases from the store.
func TestAllocator6Lifecycle(t *testing.T) {
	ctx := context.Background()
	now := t0
	store := NewMemoryStore()
	a := newTestAllocator6(t, store, &now)
	hwA, hwB := net.HardwareAddr{2, 0, 0, 0, 6, 0xa}, net.HardwareAddr{2, 0, 0, 0, 6, 0xb}
	first := netip.MustParseAddr("fd00:6::100")

	adv, err := a.Handle(ctx, msg6(t, dhcpv6.MessageTypeSolicit, hwA, netip.Addr{}))
	if err != nil || adv.MessageType != dhcpv6.MessageTypeAdvertise || iaAddr(t, adv) != first {
		t.Fatalf("solicit: %v %v", err, adv)
	}
	if _, err := store.Get(ctx, hwA); err != ErrNotFound {
		t.Fatalf("an advertised address was persisted: %v", err)
	}
	// B's Solicit while A's offer is held gets the next address.
	if adv, _ := a.Handle(ctx, msg6(t, dhcpv6.MessageTypeSolicit, hwB, netip.Addr{})); iaAddr(t, adv) == first {
		t.Fatalf("A's held address advertised to B")
	}
	rep, err := a.Handle(ctx, msg6(t, dhcpv6.MessageTypeRequest, hwA, first))
	if err != nil || rep.MessageType != dhcpv6.MessageTypeReply || iaAddr(t, rep) != first {
		t.Fatalf("request: %v %v", err, rep)
	}
	ia := rep.Options.OneIANA()
	if ia.T1 != 30*time.Minute || ia.T2 != 48*time.Minute || ia.Options.OneAddress().ValidLifetime != time.Hour {
		t.Errorf("lifetimes T1 %v T2 %v valid %v", ia.T1, ia.T2, ia.Options.OneAddress().ValidLifetime)
	}
	if l, err := store.Get(ctx, hwA); err != nil || l.IP != first || l.State != LeaseBound {
		t.Fatalf("stored lease %+v %v", l, err)
	}
	now = now.Add(20 * time.Minute)
	if rep, _ := a.Handle(ctx, msg6(t, dhcpv6.MessageTypeRenew, hwA, first)); iaAddr(t, rep) != first {
		t.Fatalf("renew: %v", rep)
	}
	if l, _ := store.Get(ctx, hwA); !l.Expires.Equal(now.Add(time.Hour)) {
		t.Errorf("renew did not extend the stored lease: %v", l.Expires)
	}
	// B renewing A's address: no binding. Rebinding an off-link one:
	// lifetime 0.
	if rep, _ := a.Handle(ctx, msg6(t, dhcpv6.MessageTypeRenew, hwB, first)); status6Of(rep) != iana.StatusNoBinding {
		t.Errorf("renew of another's address: %v", rep)
	}
	rep, _ = a.Handle(ctx, msg6(t, dhcpv6.MessageTypeRebind, hwB, netip.MustParseAddr("2001:db8::5")))
	if ad := rep.Options.OneIANA().Options.OneAddress(); ad == nil || ad.ValidLifetime != 0 {
		t.Errorf("rebind off-link: %v", rep)
	}
	// Confirm.
	if rep, _ := a.Handle(ctx, msg6(t, dhcpv6.MessageTypeConfirm, hwA, first)); status6Of(rep) != iana.StatusSuccess {
		t.Errorf("confirm on-link: %v", rep)
	}
	if rep, _ := a.Handle(ctx, msg6(t, dhcpv6.MessageTypeConfirm, hwA, netip.MustParseAddr("2001:db8::5"))); status6Of(rep) != iana.StatusNotOnLink {
		t.Errorf("confirm off-link: %v", rep)
	}
	// Restart: the lease is loaded and A keeps its address.
	b := newTestAllocator6(t, store, &now)
	if adv, _ := b.Handle(ctx, msg6(t, dhcpv6.MessageTypeSolicit, hwA, netip.Addr{})); iaAddr(t, adv) != first {
		t.Fatalf("after restart: %v", adv)
	}
	if l, ok := b.Leased(hwA); !ok || l.IP != first {
		t.Errorf("Leased after restart: %+v %v", l, ok)
	}
	// Release: kept as released; B may then take the address.
	if rep, _ := b.Handle(ctx, msg6(t, dhcpv6.MessageTypeRelease, hwA, first)); status6Of(rep) != iana.StatusSuccess {
		t.Fatalf("release: %v", rep)
	}
	if l, _ := store.Get(ctx, hwA); l.State != LeaseReleased {
		t.Errorf("released lease stored as %q", l.State)
	}
	if rep, _ := b.Handle(ctx, msg6(t, dhcpv6.MessageTypeRequest, hwB, first)); iaAddr(t, rep) != first {
		t.Errorf("released address not reusable: %v", rep)
	}
	// Decline: B's address is avoided and B's lease deleted.
	if rep, _ := b.Handle(ctx, msg6(t, dhcpv6.MessageTypeDecline, hwB, first)); status6Of(rep) != iana.StatusSuccess {
		t.Fatalf("decline: %v", rep)
	}
	if _, err := store.Get(ctx, hwB); err != ErrNotFound {
		t.Errorf("declined lease kept: %v", err)
	}
	if adv, _ := b.Handle(ctx, msg6(t, dhcpv6.MessageTypeSolicit, hwA, first)); iaAddr(t, adv) == first {
		t.Errorf("declined address advertised again")
	}
	// Information-request: options only.
	ir := msg6(t, dhcpv6.MessageTypeInformationRequest, hwA, netip.Addr{})
	ir.Message.Options.Del(dhcpv6.OptionIANA)
	if rep, _ := b.Handle(ctx, ir); rep.MessageType != dhcpv6.MessageTypeReply || rep.Options.OneIANA() != nil {
		t.Errorf("information-request: %v", rep)
	}
}

// TestAllocator6ReservationsAndLimits: an IPv6 reservation in the prefix
// is the client's address whatever it asks; an IPv4 one is ignored; a
// client without a MAC and an exhausted pool get NoAddrsAvail.
func TestAllocator6ReservationsAndLimits(t *testing.T) {
	ctx := context.Background()
	now := t0
	res := fixedRes6{
		"02:00:00:00:06:01": {IP: netip.MustParseAddr("fd00:6::50")},
		"02:00:00:00:06:02": {IP: netip.MustParseAddr("10.0.0.5")},
	}
	a, err := NewAllocator6(ctx, Allocator6Config{Prefix: prefix6, RangeStart: netip.MustParseAddr("fd00:6::100"),
		RangeEnd: netip.MustParseAddr("fd00:6::101"), LeaseTime: time.Hour, Store: NewMemoryStore(),
		Reservations: res, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	hw1, hw2 := net.HardwareAddr{2, 0, 0, 0, 6, 1}, net.HardwareAddr{2, 0, 0, 0, 6, 2}
	rep, _ := a.Handle(ctx, msg6(t, dhcpv6.MessageTypeRequest, hw1, netip.MustParseAddr("fd00:6::100")))
	if iaAddr(t, rep).String() != "fd00:6::50" {
		t.Errorf("reserved client: %v", rep)
	}
	// The address it asked for comes back with lifetimes 0: "stop using it".
	if addrs := rep.Options.OneIANA().Options.Addresses(); len(addrs) != 2 ||
		addrs[1].IPv6Addr.String() != "fd00:6::100" || addrs[1].ValidLifetime != 0 || addrs[1].PreferredLifetime != 0 ||
		addrs[0].ValidLifetime != time.Hour {
		t.Errorf("reserved client asking for another address: %v", rep.Options.OneIANA())
	}
	if rep, _ := a.Handle(ctx, msg6(t, dhcpv6.MessageTypeRenew, hw1, netip.MustParseAddr("fd00:6::50"))); len(rep.Options.OneIANA().Options.Addresses()) != 1 ||
		iaAddr(t, rep).String() != "fd00:6::50" {
		t.Errorf("renewing the reserved address: %v", rep.Options.OneIANA())
	}
	if adv, _ := a.Handle(ctx, msg6(t, dhcpv6.MessageTypeSolicit, hw2, netip.Addr{})); iaAddr(t, adv).String() != "fd00:6::100" {
		t.Errorf("IPv4 reservation not ignored: %v", adv)
	}
	noMAC := msg6(t, dhcpv6.MessageTypeSolicit, hw2, netip.Addr{})
	noMAC.MAC = nil
	if adv, _ := a.Handle(ctx, noMAC); status6Of(adv) != iana.StatusNoAddrsAvail {
		t.Errorf("client without a MAC: %v", adv)
	}
	a.Handle(ctx, msg6(t, dhcpv6.MessageTypeSolicit, net.HardwareAddr{2, 0, 0, 0, 6, 3}, netip.Addr{}))
	if adv, _ := a.Handle(ctx, msg6(t, dhcpv6.MessageTypeSolicit, net.HardwareAddr{2, 0, 0, 0, 6, 4}, netip.Addr{})); status6Of(adv) != iana.StatusNoAddrsAvail {
		t.Errorf("exhausted pool: %v", adv)
	}
	for _, bad := range []Allocator6Config{
		{Prefix: netip.MustParsePrefix("10.0.0.0/24"), LeaseTime: time.Hour, Store: NewMemoryStore()},
		{Prefix: prefix6, RangeStart: netip.MustParseAddr("fd00:7::1"), RangeEnd: netip.MustParseAddr("fd00:7::9"), LeaseTime: time.Hour, Store: NewMemoryStore()},
		{Prefix: prefix6, LeaseTime: time.Second, Store: NewMemoryStore()},
		{Prefix: prefix6, LeaseTime: time.Hour},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("config %+v validated", bad)
		}
	}
}
