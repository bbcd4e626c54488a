package netboot

import (
	"net"
	"net/http/httptest"
	"strings"
	"testing"
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
