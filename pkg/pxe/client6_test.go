package pxe

import (
	"net"
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// TestDecide6 runs DHCPv6 requests as OVMF (PXEv6, HTTPv6) and iPXE send
// them through ParseClient6 and the one Decide, and checks option 59.
func TestDecide6(t *testing.T) {
	hw := net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}
	srv := netip.MustParseAddr("fd00::1")
	p := Policy{AdvertiseURL: "http://[fd00::1]:8080"}
	vc := func(s string) dhcpv6.Modifier {
		return dhcpv6.WithOption(&dhcpv6.OptVendorClass{EnterpriseNumber: 343, Data: [][]byte{[]byte(s)}})
	}
	for _, tc := range []struct {
		name string
		mods []dhcpv6.Modifier
		want string
		kind Kind
	}{
		{"ovmf pxe", []dhcpv6.Modifier{dhcpv6.WithArchType(iana.EFI_X86_64), vc("PXEClient:Arch:00007:UNDI:003016")},
			"tftp://[fd00::1]/" + FileUEFISNP, KindTFTP},
		{"ovmf http", []dhcpv6.Modifier{dhcpv6.WithArchType(iana.EFI_X86_64_HTTP), vc("HTTPClient:Arch:00016:UNDI:003016")},
			"http://[fd00::1]:8080/ipxe/" + FileUEFI, KindHTTP},
		{"ipxe", []dhcpv6.Modifier{dhcpv6.WithArchType(iana.EFI_X86_64), dhcpv6.WithUserClass([]byte("iPXE"))},
			"http://[fd00::1]:8080/boot.ipxe?mac=" + hw.String(), KindScript},
		{"arch only, asks for a boot file", []dhcpv6.Modifier{dhcpv6.WithArchType(iana.EFI_BC), dhcpv6.WithRequestedOptions(dhcpv6.OptionBootfileURL)},
			"tftp://[fd00::1]/" + FileUEFISNP, KindTFTP},
	} {
		m, err := dhcpv6.NewSolicit(hw, tc.mods...)
		if err != nil {
			t.Fatal(err)
		}
		c := ParseClient6(m, hw)
		if !c.Netboot() {
			t.Errorf("%s: not a netboot client: %+v", tc.name, c)
			continue
		}
		b, err := p.Decide(c)
		if err != nil || b.Kind != tc.kind {
			t.Errorf("%s: %v %+v", tc.name, err, b)
			continue
		}
		resp := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeAdvertise}
		Apply6(resp, b, srv)
		if got := resp.Options.BootFileURL(); got != tc.want {
			t.Errorf("%s: option 59 %q, want %q", tc.name, got, tc.want)
		}
		if http := len(resp.Options.VendorClass(343)) > 0; http != (tc.kind == KindHTTP) {
			t.Errorf("%s: HTTPClient vendor class present = %v", tc.name, http)
		}
	}
	plain, _ := dhcpv6.NewSolicit(hw)
	if c := ParseClient6(plain, hw); c.Netboot() {
		t.Errorf("a plain client (dhclient) is taken for a netboot one: %+v", c)
	}
}
