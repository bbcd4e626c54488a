package netboot

import (
	"context"
	"net"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/metal-iaas/metal/pkg/dhcp"
)

// FuzzServeDHCP feeds raw datagrams through dhcp.Parse and the full netboot
// policy (client classification, boot decision, allocator, proxy replies)
// in full and proxy mode with unknown=discover; replies must serialise and
// parse again, and proxy replies must never carry an address.
func FuzzServeDHCP(f *testing.F) {
	hw := net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}
	for _, mods := range [][]dhcpv4.Modifier{
		{dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)), dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000"))},
		{dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64_HTTP)), dhcpv4.WithOption(dhcpv4.OptClassIdentifier("HTTPClient"))},
		{dhcpv4.WithUserClass("iPXE", false), dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, make([]byte, 17))},
		{dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 0, 0, 100)))},
	} {
		p, _ := dhcpv4.NewDiscovery(hw, mods...)
		f.Add(p.ToBytes(), uint16(67))
		f.Add(p.ToBytes(), uint16(4011))
	}
	full, _ := unitService(f, ModeFull, UnknownDiscover)
	proxy, _ := unitService(f, ModeProxy, UnknownDiscover)
	f.Fuzz(func(t *testing.T, b []byte, port uint16) {
		p, err := dhcp.Parse(b)
		if err != nil {
			return
		}
		lp := 67
		if port%2 == 1 {
			lp = 4011
		}
		for _, s := range []*Service{full, proxy} {
			resp, err := s.ServeDHCP(context.Background(), &dhcp.Request{Packet: p, LocalPort: lp})
			if err != nil || resp == nil {
				continue
			}
			if _, err := dhcpv4.FromBytes(resp.ToBytes()); err != nil {
				t.Fatalf("reply does not parse: %v", err)
			}
			if s == proxy && !resp.YourIPAddr.IsUnspecified() {
				t.Fatalf("proxy reply offers %v", resp.YourIPAddr)
			}
		}
	})
}
