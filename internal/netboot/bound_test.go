package netboot

import (
	"context"
	"net"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/metal-iaas/metal/pkg/dhcp"
)

// TestBootScriptBoundInFullMode: with metald's DHCP, a machine's boot
// script goes only to its reserved or leased address; a stranger who
// names the MAC gets 403, counted and evented, and cannot enrol unknown
// MACs it holds no lease for. A flood from one address is cut off.
func TestBootScriptBoundInFullMode(t *testing.T) {
	s, inv := unitService(t, ModeFull, UnknownDiscover)
	ctx := context.Background()
	mac2 := net.HardwareAddr{0x52, 0x54, 0, 0, 0, 2}
	if err := inv.Put(ctx, dhcp.Lease{MAC: mac2, IP: netip.MustParseAddr("10.0.0.102"), Expires: time.Now().Add(time.Hour), State: dhcp.LeaseBound}); err != nil {
		t.Fatal(err)
	}
	get := func(q, from string) int {
		w := httptest.NewRecorder()
		req := httptest.NewRequest("GET", q, nil)
		req.RemoteAddr = from + ":4000"
		s.Handler().ServeHTTP(w, req)
		return w.Code
	}
	for _, c := range []struct {
		q, from string
		want    int
	}{
		{"/boot.ipxe?mac=52:54:00:00:00:01", "10.0.0.11", 200},  // reserved
		{"/boot.ipxe?mac=52:54:00:00:00:01", "10.0.0.66", 403},  // stranger
		{"/boot.ipxe?mac=52:54:00:00:00:02", "10.0.0.102", 200}, // leased
		{"/boot.ipxe?mac=52:54:00:00:00:02", "10.0.0.66", 403},
		{"/boot.ipxe?uuid=0a0b0c0d-0000-0000-0000-000000000001", "10.0.0.66", 403},
		{"/boot.ipxe?mac=52:54:00:00:00:03", "10.0.0.11", 403}, // no address at all
		{"/boot.ipxe?mac=02:aa:bb:cc:dd:ee", "10.0.0.66", 403}, // discovery without a lease
	} {
		if got := get(c.q, c.from); got != c.want {
			t.Errorf("%s from %s: %d, want %d", c.q, c.from, got, c.want)
		}
	}
	if _, err := inv.MachineByMAC(ctx, net.HardwareAddr{2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}); err == nil {
		t.Error("a stranger enrolled a MAC it holds no lease for")
	}
	refused := 0
	for _, e := range inv.Events() {
		if e.Kind == EventScriptRefused {
			refused++
		}
	}
	if refused == 0 {
		t.Error("no security event for the refused requests")
	}
	limited := 0
	for i := 0; i < 80; i++ {
		if get("/boot.ipxe?mac=52:54:00:00:00:02", "10.0.0.102") == 429 {
			limited++
		}
	}
	if limited == 0 || limited > 80-40 {
		t.Errorf("80 requests from one address: %d limited", limited)
	}

	// Without metald's DHCP there is no address to check.
	off, _ := unitService(t, ModeProxy, UnknownIgnore)
	w := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/boot.ipxe?mac=52:54:00:00:00:01", nil)
	req.RemoteAddr = "192.0.2.9:4000"
	off.Handler().ServeHTTP(w, req)
	if w.Code != 200 {
		t.Errorf("proxy mode: %d", w.Code)
	}
}
