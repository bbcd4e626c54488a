package netboot

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/metal-iaas/metal/pkg/dhcp"
)

// unitService6 is a Service with DHCPv6 in mode on the loopback
// interface (nothing listens), known MACs discovered.
func unitService6(t testing.TB, mode Mode) *Service {
	t.Helper()
	cfg := Config{Mode: ModeOff, Interface: "lo", AdvertiseURL: "http://[::1]:8080", TFTPAddr: "off", Unknown: UnknownDiscover,
		DHCP6: Config6{Mode: mode, Prefix: netip.MustParsePrefix("fd00:9::/64"),
			RangeStart: netip.MustParseAddr("fd00:9::100"), RangeEnd: netip.MustParseAddr("fd00:9::1ff")}}
	if mode == ModeProxy {
		cfg.DHCP6.RangeStart, cfg.DHCP6.RangeEnd = netip.Addr{}, netip.Addr{}
	}
	s, err := New(cfg, NewMemoryInventory(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// FuzzServeDHCPv6 feeds raw datagrams through dhcp.Parse6, ClientMAC6 and
// the whole DHCPv6 policy (classification, discovery, boot decision,
// allocator) in full and proxy mode; replies must serialise and parse
// again, and proxy replies never carry an address.
func FuzzServeDHCPv6(f *testing.F) {
	hw := net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}
	vc := func(s string) dhcpv6.Modifier {
		return dhcpv6.WithOption(&dhcpv6.OptVendorClass{EnterpriseNumber: 343, Data: [][]byte{[]byte(s)}})
	}
	for _, mods := range [][]dhcpv6.Modifier{
		{dhcpv6.WithArchType(iana.EFI_X86_64), vc("PXEClient:Arch:00007:UNDI:003016")},
		{dhcpv6.WithArchType(iana.EFI_X86_64_HTTP), vc("HTTPClient:Arch:00016:UNDI:003016")},
		{dhcpv6.WithClientID(&dhcpv6.DUIDUUID{}), dhcpv6.WithUserClass([]byte("iPXE"))},
		{dhcpv6.WithArchType(iana.EFI_ARM64)},
	} {
		m, _ := dhcpv6.NewSolicit(hw, mods...)
		f.Add(m.ToBytes())
	}
	full, proxy := unitService6(f, ModeFull), unitService6(f, ModeProxy)
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, relay, err := dhcp.Parse6(b)
		if err != nil {
			return
		}
		req := &dhcp.Request6{Message: msg, Relay: relay}
		req.MAC, req.MACSource = dhcp.ClientMAC6(msg, relay, net.ParseIP("fe80::5054:ff:fe00:1"))
		for _, s := range []*Service{full, proxy} {
			resp, err := s.v6.ServeDHCPv6(context.Background(), req)
			if err != nil || resp == nil {
				continue
			}
			if _, err := dhcpv6.FromBytes(resp.ToBytes()); err != nil {
				t.Fatalf("reply does not parse: %v", err)
			}
			if s == proxy && resp.Options.OneIANA() != nil {
				t.Fatalf("proxy reply carries an IA_NA: %v", resp)
			}
		}
	})
}
