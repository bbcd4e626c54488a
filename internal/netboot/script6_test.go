package netboot

import (
	"context"
	"net"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/pkg/dhcp"
)

// TestScriptOverIPv6: in a dual-stack metald, a boot script asked over
// IPv6 has iPXE fetch the agent from the IPv6 advertise URL, while the
// agent keeps metald's (IPv4) agent URL; asked over IPv4, nothing
// changes. An IPv6-only metald (IPv6 advertise URL) puts the literal in
// both, brackets and all.
func TestScriptOverIPv6(t *testing.T) {
	mac, _ := net.ParseMAC("02:00:00:00:06:01")
	for _, tc := range []struct {
		name, advertise, from, base, agent string
	}{
		{"dual stack over IPv6", "http://10.0.0.1:8080", "[fd00::5]:4000", "http://[fd00::1]:8080", "http://10.0.0.1:8080"},
		{"dual stack over IPv4", "http://10.0.0.1:8080", "10.0.0.5:4000", "http://10.0.0.1:8080", "http://10.0.0.1:8080"},
		{"IPv6 only", "http://[::1]:8080", "[::1]:4000", "http://[::1]:8080", "http://[::1]:8080"},
	} {
		inv := NewMemoryInventory()
		inv.Add(Machine{MAC: mac, Name: "n6", State: "new"}, "")
		cfg := Config{Mode: ModeOff, Interface: "lo", AdvertiseURL: tc.advertise, TFTPAddr: "off", DHCP6: Config6{Mode: ModeProxy}}
		if !strings.Contains(tc.advertise, "[") {
			cfg.DHCP6.AdvertiseURL = "http://[fd00::1]:8080"
		}
		s, err := New(cfg, inv, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		req := httptest.NewRequest("GET", "/boot.ipxe?mac="+mac.String(), nil)
		req.RemoteAddr = tc.from
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		body := w.Body.String()
		if w.Code != 200 || !strings.Contains(body, "kernel "+tc.base+"/agent/vmlinuz ") || !strings.Contains(body, "metal.url="+tc.agent+" ") {
			t.Errorf("%s: %d, want kernel from %s and metal.url=%s:\n%s", tc.name, w.Code, tc.base, tc.agent, body)
		}
	}
}

// TestFromMachine6Reservation: in DHCPv6 full mode, a machine's reserved
// IPv6 address is its own before it holds any lease (a boot script goes
// to it), another address of the prefix is refused naming the
// reservation, and without a reservation the live lease decides.
func TestFromMachine6Reservation(t *testing.T) {
	ctx := context.Background()
	mac, _ := net.ParseMAC("02:00:00:00:06:02")
	leases := dhcp.NewMemoryStore()
	v := &service6{cfg: Config6{Mode: ModeFull}, leases: leases}
	reserved := netip.MustParseAddr("fd99::42")
	for _, tc := range []struct {
		reserved, src netip.Addr
		want          string // "" accepted
	}{
		{reserved, reserved, ""},
		{reserved, netip.MustParseAddr("fd99::100"), "not its address (reserved address fd99::42)"},
		{netip.Addr{}, netip.MustParseAddr("fd99::100"), "not its address (no DHCPv6 lease)"},
	} {
		checked, err := v.fromMachine6(ctx, mac, tc.reserved, tc.src)
		if !checked || (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("reserved %v, from %v: checked %v, %v; want %q", tc.reserved, tc.src, checked, err, tc.want)
		}
	}
	if err := leases.Put(ctx, dhcp.Lease{MAC: mac, IP: netip.MustParseAddr("fd99::100"), State: dhcp.LeaseBound, Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.fromMachine6(ctx, mac, netip.Addr{}, netip.MustParseAddr("fd99::100")); err != nil {
		t.Errorf("from its lease: %v", err)
	}
}
