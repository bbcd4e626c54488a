package jobs

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/inventory"
)

// TestLeaseBoundAgentIPv6: in DHCPv6 full mode the machine's v6 lease is
// its address: its agent registers from it, a stranger on the same
// prefix is refused, and the refusal names both addresses.
func TestLeaseBoundAgentIPv6(t *testing.T) {
	g := newGuarded(t, AgentGuard{LeaseBound: true})
	ctx := context.Background()
	if err := g.store.PutLease6(ctx, inventory.Lease{MAC: victimMAC, IP: "fd66::111", State: "bound", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.svc.Provision(ctx, "m1", ProvisionRequest{Image: "img"}); err != nil {
		t.Fatal(err)
	}
	register := func(from string) (int, agentapi.Assignment) {
		b, _ := json.Marshal(agentapi.RegisterRequest{Version: 1, MAC: victimMAC, AgentVersion: "test"})
		req := httptest.NewRequest(http.MethodPost, agentapi.PathRegister, strings.NewReader(string(b)))
		req.RemoteAddr = "[" + from + "]:51000"
		w := httptest.NewRecorder()
		g.eng.ServeHTTP(w, req)
		var a agentapi.Assignment
		_ = json.Unmarshal(w.Body.Bytes(), &a)
		return w.Code, a
	}
	if code, a := register("fd66::166"); code != 403 || a.Task != nil {
		t.Fatalf("stranger's register over IPv6: %d %+v", code, a.Task)
	}
	evs := g.securityEvents(t)
	if len(evs) == 0 || !strings.Contains(evs[0].Message, "fd66::166") || !strings.Contains(evs[0].Message, "fd66::111") {
		t.Fatalf("security events %+v", evs)
	}
	if code, a := register("fd66::111"); code != 200 || a.Task == nil {
		t.Fatalf("the agent at its v6 lease: %d %+v", code, a)
	}
}
