package pxe

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/test/golden"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

var hw = net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}

func discover(t *testing.T, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	p, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithTransactionID(dhcpv4.TransactionID{9, 9, 9, 9}),
		dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover), dhcpv4.WithBroadcast(true)}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func arch(a iana.Arch) dhcpv4.Modifier { return dhcpv4.WithOption(dhcpv4.OptClientArch(a)) }
func vendor(v string) dhcpv4.Modifier  { return dhcpv4.WithOption(dhcpv4.OptClassIdentifier(v)) }

var uuidOpt = dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, append([]byte{0}, []byte("0123456789abcdef")...))

var clients = []struct {
	name string
	mods []dhcpv4.Modifier
	kind Kind
	file string
	err  error
}{
	{"bios pxe rom", []dhcpv4.Modifier{arch(iana.INTEL_X86PC), vendor("PXEClient:Arch:00000:UNDI:002001"), uuidOpt}, KindTFTP, "undionly.kpxe", nil},
	{"pxe without option 93", []dhcpv4.Modifier{vendor("PXEClient")}, KindTFTP, "undionly.kpxe", nil},
	{"uefi x64 pxe", []dhcpv4.Modifier{arch(iana.EFI_X86_64), vendor("PXEClient:Arch:00007:UNDI:003000")}, KindTFTP, "snponly.efi", nil},
	{"uefi bc pxe", []dhcpv4.Modifier{arch(iana.EFI_BC), vendor("PXEClient:Arch:00009:UNDI:003000")}, KindTFTP, "snponly.efi", nil},
	{"uefi ia32 pxe", []dhcpv4.Modifier{arch(iana.EFI_IA32), vendor("PXEClient:Arch:00006:UNDI:003000")}, KindTFTP, "snponly.efi", nil},
	{"uefi http boot", []dhcpv4.Modifier{arch(iana.EFI_X86_64_HTTP), vendor("HTTPClient:Arch:00016:UNDI:003001")}, KindHTTP, "http://10.0.0.1:8080/ipxe/ipxe.efi", nil},
	{"http vendor class only", []dhcpv4.Modifier{vendor("HTTPClient")}, KindHTTP, "http://10.0.0.1:8080/ipxe/ipxe.efi", nil},
	{"ipxe user class", []dhcpv4.Modifier{arch(iana.INTEL_X86PC), vendor("PXEClient:Arch:00000:UNDI:002001"), dhcpv4.WithUserClass("iPXE", false)}, KindScript, "http://10.0.0.1:8080/boot.ipxe?mac=52:54:00:12:34:56", nil},
	{"ipxe option 175", []dhcpv4.Modifier{arch(iana.EFI_X86_64), dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(175), []byte{1, 1, 1})}, KindScript, "http://10.0.0.1:8080/boot.ipxe?mac=52:54:00:12:34:56", nil},
	{"arm64 pxe", []dhcpv4.Modifier{arch(iana.EFI_ARM64), vendor("PXEClient:Arch:00011:UNDI:003000")}, "", "", ErrUnsupportedArch},
	{"arm64 http", []dhcpv4.Modifier{arch(iana.EFI_ARM64_HTTP), vendor("HTTPClient:Arch:00019:UNDI:003000")}, "", "", ErrUnsupportedArch},
}

func TestDecide(t *testing.T) {
	pol := Policy{AdvertiseURL: "http://10.0.0.1:8080/"}
	for _, tc := range clients {
		c := ParseClient(discover(t, tc.mods...))
		if !c.Netboot() {
			t.Errorf("%s: not a netboot client", tc.name)
		}
		b, err := pol.Decide(c)
		if !errors.Is(err, tc.err) || b.Kind != tc.kind || b.File != tc.file {
			t.Errorf("%s: got %+v, %v; want %s %s %v", tc.name, b, err, tc.kind, tc.file, tc.err)
		}
	}
	if ParseClient(discover(t, vendor("MSFT 5.0"))).Netboot() {
		t.Error("windows DHCP client taken for a netboot client")
	}
}

// TestDecideUEFIBoot: with UEFIBoot shim, UEFI x86-64 PXE firmware gets
// Debian's signed shim over TFTP; everything else boots as with iPXE
// (IA32 and HTTP Boot have no shim chain; iPXE itself still gets its
// script).
func TestDecideUEFIBoot(t *testing.T) {
	want := map[string]map[UEFIBoot]string{
		"uefi x64 pxe":    {UEFIBootIPXE: FileUEFISNP, UEFIBootShim: FileShim, "": FileUEFISNP},
		"uefi bc pxe":     {UEFIBootIPXE: FileUEFISNP, UEFIBootShim: FileShim, "": FileUEFISNP},
		"uefi ia32 pxe":   {UEFIBootShim: FileUEFISNP},
		"bios pxe rom":    {UEFIBootShim: FileBIOS},
		"uefi http boot":  {UEFIBootShim: "http://10.0.0.1:8080/ipxe/ipxe.efi"},
		"ipxe option 175": {UEFIBootShim: "http://10.0.0.1:8080/boot.ipxe?mac=52:54:00:12:34:56"},
		"arm64 pxe":       {UEFIBootShim: ""},
	}
	for _, tc := range clients {
		for chain, file := range want[tc.name] {
			b, err := Policy{AdvertiseURL: "http://10.0.0.1:8080", UEFIBoot: chain}.Decide(ParseClient(discover(t, tc.mods...)))
			if b.File != file || (file == "" && !errors.Is(err, ErrUnsupportedArch)) {
				t.Errorf("%s with %q: got %+v, %v; want %q", tc.name, chain, b, err, file)
			}
			if file == FileShim && b.Kind != KindTFTP {
				t.Errorf("%s with %q: shim kind %s, want tftp", tc.name, chain, b.Kind)
			}
		}
	}
	if len(want) != 7 {
		t.Fatal("table edited without its cases")
	}
}

// TestProxyReplies renders the ProxyDHCP answers (port 67 and 4011) for
// every supported client into a golden file.
func TestProxyReplies(t *testing.T) {
	pol := Policy{AdvertiseURL: "http://10.0.0.1:8080"}
	var all strings.Builder
	for _, tc := range clients {
		if tc.err != nil {
			continue
		}
		req := discover(t, tc.mods...)
		c := ParseClient(req)
		b, _ := pol.Decide(c)
		for _, port := range []int{67, 4011} {
			if port == 4011 {
				req.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeRequest))
				req.ClientIPAddr = net.IPv4(10, 0, 0, 50)
			}
			resp, err := ProxyReply(req, port, net.IPv4(10, 0, 0, 1), c, b)
			if err != nil || resp == nil {
				t.Fatalf("%s port %d: %v %v", tc.name, port, resp, err)
			}
			if !resp.YourIPAddr.IsUnspecified() {
				t.Errorf("%s: proxy reply offers an address %v", tc.name, resp.YourIPAddr)
			}
			all.WriteString("### " + tc.name + " port " + map[int]string{67: "67", 4011: "4011"}[port] + "\n" + resp.Summary() + "\n")
		}
	}
	// Port 67 REQUESTs belong to the site's DHCP server.
	req := discover(t, clients[0].mods...)
	req.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeRequest))
	if resp, _ := ProxyReply(req, 67, net.IPv4(10, 0, 0, 1), ParseClient(req), Boot{Kind: KindTFTP, File: FileBIOS}); resp != nil {
		t.Error("proxy answered a REQUEST on port 67")
	}
	golden.Check(t, "proxy_replies", all.String())
}
