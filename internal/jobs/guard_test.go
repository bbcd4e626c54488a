package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/inventory"
)

// guarded is a job service whose agent API is reached from chosen source
// addresses.
type guarded struct {
	store *inventory.SQLite
	svc   *Service
	eng   *gin.Engine
	reg   *prometheus.Registry
}

const victimMAC = "52:54:00:aa:00:01"

func newGuarded(t testing.TB, g AgentGuard) *guarded {
	t.Helper()
	ctx := context.Background()
	store, err := inventory.OpenSQLite(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.CreateMachine(ctx, inventory.Machine{Name: "m1", MACs: []string{victimMAC}}); err != nil {
		t.Fatal(err)
	}
	for _, st := range []inventory.State{inventory.StateInspecting, inventory.StateReady} {
		if _, err := store.Transition(ctx, "m1", st, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.PutLease(ctx, inventory.Lease{MAC: victimMAC, IP: "10.9.0.11", State: "bound", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	store.PutImage(ctx, inventory.Image{Name: "img", File: "img.qcow2", Format: "qcow2", RawSHA256: strings.Repeat("ab", 32), VirtualSize: 1 << 20})
	reg := prometheus.NewRegistry()
	g.Metrics = reg
	svc := New(Config{AdvertiseURL: "http://10.9.0.1:8080", Guard: g, DiscoverUnknown: true}, store, &fakePower{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	svc.async = func(f func()) { f() }
	gin.SetMode(gin.ReleaseMode)
	eng := gin.New()
	svc.AgentRoutes(eng)
	return &guarded{store: store, svc: svc, eng: eng, reg: reg}
}

func (g *guarded) do(method, path, from, token string, body any) (int, []byte) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, r)
	req.RemoteAddr = from + ":51000"
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	g.eng.ServeHTTP(w, req)
	return w.Code, w.Body.Bytes()
}

func (g *guarded) register(t *testing.T, from, mac string) (int, agentapi.Assignment) {
	t.Helper()
	code, b := g.do(http.MethodPost, agentapi.PathRegister, from, "", agentapi.RegisterRequest{Version: 1, MAC: mac, AgentVersion: "test"})
	var a agentapi.Assignment
	_ = json.Unmarshal(b, &a)
	return code, a
}

func (g *guarded) refused(reason string) float64 {
	mfs, _ := g.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "metald_agent_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func (g *guarded) securityEvents(t *testing.T) []inventory.Event {
	evs, err := g.store.ListEvents(context.Background(), inventory.EventFilter{Type: "security.agent_refused"})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestLeaseBoundAgent: with metald's DHCP, only the machine's leased
// address speaks for it. A stranger who knows the MAC gets 403 on
// register and poll, and neither the token nor the job moves; the
// refusal is counted and evented with both addresses.
func TestLeaseBoundAgent(t *testing.T) {
	g := newGuarded(t, AgentGuard{LeaseBound: true})
	ctx := context.Background()
	j, err := g.svc.Provision(ctx, "m1", ProvisionRequest{Image: "img"})
	if err != nil {
		t.Fatal(err)
	}
	if code, a := g.register(t, "10.9.0.66", victimMAC); code != 403 || a.Task != nil {
		t.Fatalf("stranger's register: %d %+v", code, a.Task)
	}
	if code, _ := g.do(http.MethodGet, agentapi.PathTask+"?mac="+victimMAC, "10.9.0.66", "", nil); code != 403 {
		t.Fatalf("stranger's poll: %d", code)
	}
	if got, _ := g.store.GetJob(ctx, j.ID); got.Phase != PhaseBooting || got.AgentAddr != "" {
		t.Fatalf("job moved by a stranger: %+v", got)
	}
	evs := g.securityEvents(t)
	if len(evs) == 0 || !strings.Contains(evs[0].Message, "10.9.0.66") || !strings.Contains(evs[0].Message, "10.9.0.11") {
		t.Fatalf("security events %+v", evs)
	}
	code, a := g.register(t, "10.9.0.11", victimMAC)
	if code != 200 || a.Task == nil {
		t.Fatalf("machine's own register: %d %+v", code, a)
	}
	// A stranger holding the token (sniffed) is still refused.
	prog := agentapi.Progress{Version: 1, TaskID: a.Task.ID, BytesWritten: 1}
	if code, _ := g.do(http.MethodPost, agentapi.PathProgress, "10.9.0.66", a.Task.Token, prog); code != 403 {
		t.Fatalf("stolen token from another address: %d", code)
	}
	res := agentapi.Result{Version: 1, TaskID: a.Task.ID, Success: true, SHA256: strings.Repeat("ab", 32)}
	if code, _ := g.do(http.MethodPost, agentapi.PathResult, "10.9.0.66", a.Task.Token, res); code != 403 {
		t.Fatalf("forged result from another address: %d", code)
	}
	if got, _ := g.store.GetJob(ctx, j.ID); got.State != inventory.JobRunning {
		t.Fatalf("job ended by a forged result: %+v", got)
	}
	if code, _ := g.do(http.MethodPost, agentapi.PathProgress, "10.9.0.11", a.Task.Token, prog); code != 204 {
		t.Fatalf("owner's progress: %d", code)
	}
	if g.refused("foreign") != 4 {
		t.Errorf("foreign refusals counted %v, want 4", g.refused("foreign"))
	}
	// Discovery of an unknown MAC needs metald's lease for it.
	if code, _ := g.register(t, "10.9.0.66", "52:54:00:bb:00:09"); code != 403 {
		t.Fatalf("discovery from an address without the MAC's lease: %d", code)
	}
	if _, err := g.store.MachineByMAC(ctx, "52:54:00:bb:00:09"); err == nil {
		t.Fatal("a stranger enrolled a machine")
	}
}

// TestFirstClaimOwnsTheJob: without metald's DHCP, the first address to
// claim a job's task owns it; another address is refused; the owner
// asking again gets a fresh token and the previous one stops working.
func TestFirstClaimOwnsTheJob(t *testing.T) {
	g := newGuarded(t, AgentGuard{})
	ctx := context.Background()
	j, err := g.svc.Provision(ctx, "m1", ProvisionRequest{Image: "img"})
	if err != nil {
		t.Fatal(err)
	}
	code, a := g.register(t, "10.9.0.20", victimMAC)
	if code != 200 || a.Task == nil {
		t.Fatalf("first register: %d %+v", code, a)
	}
	if code, b := g.do(http.MethodGet, agentapi.PathTask+"?mac="+victimMAC, "10.9.0.66", "", nil); code != 403 || bytes.Contains(b, []byte(a.Task.Token)) {
		t.Fatalf("another address's poll: %d %s", code, b)
	}
	if got, _ := g.store.GetJob(ctx, j.ID); got.AgentAddr != "10.9.0.20" {
		t.Fatalf("owner %q", got.AgentAddr)
	}
	code, again := g.register(t, "10.9.0.20", victimMAC)
	if code != 200 || again.Task == nil || again.Task.Token == a.Task.Token {
		t.Fatalf("owner's second register: %d %+v", code, again.Task)
	}
	prog := agentapi.Progress{Version: 1, TaskID: a.Task.ID}
	if code, _ := g.do(http.MethodPost, agentapi.PathProgress, "10.9.0.20", a.Task.Token, prog); code != 401 {
		t.Fatalf("revoked token: %d", code)
	}
	if code, _ := g.do(http.MethodPost, agentapi.PathProgress, "10.9.0.20", again.Task.Token, prog); code != 204 {
		t.Fatalf("fresh token: %d", code)
	}
	if g.refused("token") != 1 || g.refused("foreign") != 1 {
		t.Errorf("refusals token=%v foreign=%v", g.refused("token"), g.refused("foreign"))
	}
}

// TestInventoryNeedsAnInspectOrProvision: hardware comes only with a
// task token, and not from a wipe.
func TestInventoryNeedsAnInspectOrProvision(t *testing.T) {
	g := newGuarded(t, AgentGuard{})
	ctx := context.Background()
	for _, st := range []inventory.State{inventory.StateProvisioning, inventory.StateProvisioned} {
		if _, err := g.store.Transition(ctx, "m1", st, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.svc.Deprovision(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	_, a := g.register(t, "10.9.0.20", victimMAC)
	if a.Task == nil || a.Task.Kind != agentapi.TaskWipe {
		t.Fatalf("task %+v", a.Task)
	}
	rep := agentapi.InventoryReport{Version: 1, TaskID: a.Task.ID, Inventory: agentapi.Inventory{MemoryBytes: 1 << 40}}
	if code, _ := g.do(http.MethodPost, agentapi.PathInventory, "10.9.0.20", a.Task.Token, rep); code != 409 {
		t.Fatalf("inventory during a wipe: %d", code)
	}
	if m, _ := g.store.GetMachine(ctx, "m1"); len(m.Hardware) != 0 {
		t.Fatalf("hardware stored: %s", m.Hardware)
	}
}

// TestAgentRateLimits: one address (or one MAC) flooding register is
// cut off with 429 and counted, bounded in count; another address is not
// affected.
func TestAgentRateLimits(t *testing.T) {
	g := newGuarded(t, AgentGuard{PerAddress: 1, PerMAC: 100, PerDiscovery: 1})
	var ok, limited int
	for i := 0; i < 50; i++ {
		code, _ := g.do(http.MethodGet, agentapi.PathTask+"?mac="+victimMAC, "10.9.0.20", "", nil)
		switch code {
		case 200:
			ok++
		case 429:
			limited++
		default:
			t.Fatalf("poll %d: %d", i, code)
		}
	}
	if ok < 10 || ok > 12 || limited != 50-ok {
		t.Fatalf("50 polls in a burst: %d answered, %d limited (burst 10 at 1/s)", ok, limited)
	}
	if code, _ := g.do(http.MethodGet, agentapi.PathTask+"?mac="+victimMAC, "10.9.0.21", "", nil); code != 200 {
		t.Fatalf("another address: %d", code)
	}
	if g.refused("rate") != float64(limited) {
		t.Fatalf("rate refusals %v, want %d", g.refused("rate"), limited)
	}
	// Discovery is limited over all sources: forged MACs from many
	// addresses enrol at most the burst.
	for i := 0; i < 30; i++ {
		mac := net6(i)
		g.register(t, "10.9.1."+itoa(i+1), mac)
	}
	ms, _ := g.store.ListMachines(context.Background(), inventory.MachineFilter{})
	if len(ms) > 1+10+1 {
		t.Fatalf("%d machines after a discovery flood", len(ms))
	}
}

func net6(i int) string { return "52:54:00:cc:00:" + hex2(i) }

func hex2(i int) string {
	const d = "0123456789abcdef"
	return string([]byte{d[(i>>4)&15], d[i&15]})
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
