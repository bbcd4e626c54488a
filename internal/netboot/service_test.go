package netboot

import (
	"context"
	"net"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/golden"

	"github.com/gin-gonic/gin"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metal-iaas/metal/ipxe"
	"github.com/metal-iaas/metal/pkg/dhcp"
	"github.com/metal-iaas/metal/pkg/pxe"
)

func unitService(t testing.TB, mode Mode, unknown Unknown) (*Service, *MemoryInventory) {
	t.Helper()
	inv := NewMemoryInventory()
	inv.Add(Machine{MAC: net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}, Name: "node-1", State: "provisioning", IP: netip.MustParseAddr("10.0.0.11"), Hostname: "node-1"}, "0a0b0c0d-0000-0000-0000-000000000001")
	inv.Add(Machine{MAC: net.HardwareAddr{0x52, 0x54, 0, 0, 0, 2}, Name: "node-2", State: "ready"}, "")
	inv.Add(Machine{MAC: net.HardwareAddr{0x52, 0x54, 0, 0, 0, 3}, Name: "node-3", State: "maintenance"}, "")
	cfg := Config{Mode: mode, Interface: "lo", AdvertiseURL: "http://10.0.0.1:8080/", TFTPAddr: "off", Unknown: unknown,
		Subnet: netip.MustParsePrefix("10.0.0.0/24"), RangeStart: netip.MustParseAddr("10.0.0.100"), RangeEnd: netip.MustParseAddr("10.0.0.110"),
		LeaseTime: time.Hour, Router: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}
	s, err := New(cfg, inv, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, inv
}

func TestBootScriptHTTP(t *testing.T) {
	s, inv := unitService(t, ModeOff, UnknownIgnore)
	gin.SetMode(gin.TestMode)
	r := gin.New()
	s.Routes(r)
	get := func(q string) (int, string) {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest("GET", q, nil))
		return w.Code, w.Body.String()
	}
	var all strings.Builder
	for _, q := range []string{
		"/boot.ipxe?mac=52:54:00:00:00:01",
		"/boot.ipxe?mac=52-54-00-00-00-02",
		"/boot.ipxe?mac=525400000003",
		"/boot.ipxe?mac=%2052-54-00-00-00-01",
		"/boot.ipxe?mac=5254.0000.0001",
		"/boot.ipxe?uuid=0A0B0C0D-0000-0000-0000-000000000001",
	} {
		code, body := get(q)
		if code != 200 {
			t.Fatalf("%s: %d %s", q, code, body)
		}
		all.WriteString("### " + q + "\n" + body)
	}
	golden.Check(t, "boot_scripts", all.String())
	for q, want := range map[string]int{
		"/boot.ipxe?mac=52:54:00:00:00:99": 404, "/boot.ipxe?mac=zz": 400, "/boot.ipxe": 400,
		"/boot.ipxe?uuid=ffff": 404, "/ipxe/undionly.kpxe": 200, "/ipxe/nope": 404,
	} {
		if code, _ := get(q); code != want {
			t.Errorf("%s: %d, want %d", q, code, want)
		}
	}
	if code, body := get("/ipxe/" + ipxe.BIOS); code != 200 || len(body) != 74213 {
		t.Errorf("undionly.kpxe over HTTP: %d, %d bytes", code, len(body))
	}
	if n := len(inv.Events()); n != 6 {
		t.Errorf("%d boot.script events, want 6", n)
	}

	// discover: unknown MACs are created and get the agent.
	s2, inv2 := unitService(t, ModeOff, UnknownDiscover)
	w := httptest.NewRecorder()
	s2.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/boot.ipxe?mac=02:AA:BB:CC:DD:EE", nil))
	if w.Code != 200 || !strings.Contains(w.Body.String(), "agent boot for 02:aa:bb:cc:dd:ee") {
		t.Fatalf("discover: %d %s", w.Code, w.Body.String())
	}
	if m, err := inv2.MachineByMAC(context.Background(), net.HardwareAddr{2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}); err != nil || m.State != "discovered" {
		t.Errorf("discovered machine: %+v %v", m, err)
	}
}

func TestEmbeddedNamesMatchPolicy(t *testing.T) {
	if ipxe.BIOS != pxe.FileBIOS || ipxe.UEFI != pxe.FileUEFI || ipxe.UEFISNP != pxe.FileUEFISNP {
		t.Fatal("ipxe and pxe disagree on file names")
	}
	for _, n := range ipxe.Names() {
		if _, err := ipxe.FS().Open(n); err != nil {
			t.Errorf("%s not embedded: %v", n, err)
		}
	}
}

// TestDHCPDecisions runs DHCP requests from different firmware through the
// service's policy in full and proxy mode and keeps the replies as golden
// packet summaries.
func TestDHCPDecisions(t *testing.T) {
	mk := func(last byte, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
		p, _ := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithTransactionID(dhcpv4.TransactionID{0, 0, 0, last}),
			dhcpv4.WithHwAddr(net.HardwareAddr{0x52, 0x54, 0, 0, 0, last}), dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover),
			dhcpv4.WithBroadcast(true)}, mods...)...)
		return p
	}
	bios := []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)), dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001"))}
	efi := []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)), dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003000"))}
	http := []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64_HTTP)), dhcpv4.WithOption(dhcpv4.OptClassIdentifier("HTTPClient:Arch:00016:UNDI:003001"))}
	arm := []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_ARM64)), dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00011:UNDI:003000"))}
	ipxeUC := append(append([]dhcpv4.Modifier{}, bios...), dhcpv4.WithUserClass("iPXE", false))
	cases := []struct {
		name string
		p    *dhcpv4.DHCPv4
	}{
		{"known bios pxe", mk(1, bios...)},
		{"known uefi pxe", mk(2, efi...)},
		{"known uefi http", mk(3, http...)},
		{"known ipxe", mk(1, ipxeUC...)},
		{"known arm64", mk(2, arm...)},
		{"known plain dhcp client", mk(3)},
		{"unknown bios pxe", mk(9, bios...)},
	}
	var all strings.Builder
	for _, mode := range []Mode{ModeFull, ModeProxy} {
		for _, unknown := range []Unknown{UnknownIgnore, UnknownDiscover} {
			s, _ := unitService(t, mode, unknown)
			for _, tc := range cases {
				resp, err := s.ServeDHCP(context.Background(), &dhcp.Request{Packet: tc.p, LocalPort: 67})
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				all.WriteString("### mode=" + string(mode) + " unknown=" + string(unknown) + ": " + tc.name + "\n")
				if resp == nil {
					all.WriteString("(no reply)\n\n")
					continue
				}
				if mode == ModeProxy && !resp.YourIPAddr.IsUnspecified() {
					t.Errorf("proxy mode offered %v", resp.YourIPAddr)
				}
				all.WriteString(resp.Summary() + "\n")
			}
		}
	}
	golden.Check(t, "dhcp_decisions", all.String())
}

func TestConfigValidate(t *testing.T) {
	good := func() Config {
		return Config{Mode: ModeFull, Interface: "br0", AdvertiseURL: "http://10.0.0.1:8080",
			RangeStart: netip.MustParseAddr("10.0.0.100"), RangeEnd: netip.MustParseAddr("10.0.0.200")}
	}
	c := good().WithDefaults()
	if err := c.Validate(); err != nil || c.ServerIP != netip.MustParseAddr("10.0.0.1") || c.TFTPAddr != ":69" || c.Unknown != UnknownIgnore {
		t.Fatalf("good config: %v %+v", err, c)
	}
	for name, mut := range map[string]func(*Config){
		"bad mode":        func(c *Config) { c.Mode = "sometimes" },
		"bad unknown":     func(c *Config) { c.Unknown = "maybe" },
		"no interface":    func(c *Config) { c.Interface = "" },
		"bad url":         func(c *Config) { c.AdvertiseURL = "ftp://x" },
		"hostname url":    func(c *Config) { c.AdvertiseURL = "http://metal.example:8080" },
		"no range":        func(c *Config) { c.RangeStart = netip.Addr{} },
		"reversed range":  func(c *Config) { c.RangeStart, c.RangeEnd = c.RangeEnd, c.RangeStart },
		"subnet mismatch": func(c *Config) { c.Subnet = netip.MustParsePrefix("192.168.0.0/24") },
		"short lease":     func(c *Config) { c.LeaseTime = time.Second },
	} {
		c := good()
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, _, err := ParseRange("10.0.0.5-10.0.0.1"); err == nil {
		t.Error("reversed range parsed")
	}
	if a, b, err := ParseRange("10.0.0.1-10.0.0.5"); err != nil || a.String() != "10.0.0.1" || b.String() != "10.0.0.5" {
		t.Errorf("ParseRange: %v %v %v", a, b, err)
	}
}
