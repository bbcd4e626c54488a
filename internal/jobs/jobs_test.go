package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/metal-iaas/metal/internal/metadata"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/inventory"
)

// fakePower records BMC calls.
type fakePower struct {
	mu    sync.Mutex
	calls []string
	fail  string // action that fails
}

func (f *fakePower) Machine(_ context.Context, name, action string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name+" "+action)
	if action == f.fail {
		return errors.New("bmc said no")
	}
	return nil
}

func (f *fakePower) MachineBoot(_ context.Context, name, dev string, persistent, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := ""
	if persistent {
		p = " persistent"
	}
	f.calls = append(f.calls, name+" bootdev "+dev+p)
	return nil
}

func (f *fakePower) Calls() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.calls, "; ")
}

type fixture struct {
	store *inventory.SQLite
	svc   *Service
	power *fakePower
	srv   *httptest.Server
}

func newFixture(t *testing.T, bmc bool) *fixture {
	t.Helper()
	store, err := inventory.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	m := inventory.Machine{Name: "m1", MACs: []string{"52:54:00:aa:00:01"}}
	if bmc {
		m.BMC = "ipmi://u:p@127.0.0.1:1"
	}
	ctx := context.Background()
	if _, err := store.CreateMachine(ctx, m); err != nil {
		t.Fatal(err)
	}
	store.PutImage(ctx, inventory.Image{Name: "img", File: "img.qcow2", Format: "qcow2", RawSHA256: strings.Repeat("ab", 32), VirtualSize: 1 << 20})
	p := &fakePower{}
	svc := New(Config{AdvertiseURL: "http://10.0.0.1:8080"}, store, p, slog.New(slog.NewTextHandler(io.Discard, nil)))
	svc.async = func(f func()) { f() }
	gin.SetMode(gin.ReleaseMode)
	eng := gin.New()
	svc.AgentRoutes(eng)
	srv := httptest.NewServer(eng)
	t.Cleanup(srv.Close)
	return &fixture{store: store, svc: svc, power: p, srv: srv}
}

func (f *fixture) post(t *testing.T, path, token string, body any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, bytes.NewReader(b))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (f *fixture) register(t *testing.T) agentapi.Assignment {
	t.Helper()
	code, b := f.post(t, agentapi.PathRegister, "", agentapi.RegisterRequest{Version: agentapi.Version, MAC: "52:54:00:AA:00:01",
		Inventory: agentapi.Inventory{DMI: agentapi.DMI{SystemUUID: "ABC-123", SystemSerial: "SN1"},
			Disks: []agentapi.Disk{{Name: "vda", SizeBytes: 8 << 30}}}})
	if code != 200 {
		t.Fatalf("register: %d %s", code, b)
	}
	var a agentapi.Assignment
	json.Unmarshal(b, &a)
	return a
}

func (f *fixture) ready(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, st := range []inventory.State{inventory.StateInspecting, inventory.StateReady} {
		if _, err := f.store.Transition(ctx, "m1", st, "test"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestProvisionWithBMC(t *testing.T) {
	f := newFixture(t, true)
	ctx := context.Background()
	if _, err := f.svc.Provision(ctx, "m1", ProvisionRequest{Image: "img"}); err == nil || !strings.Contains(err.Error(), "inspect it first") {
		t.Fatalf("provision from new: %v", err)
	}
	f.ready(t)
	j, err := f.svc.Provision(ctx, "m1", ProvisionRequest{Image: "img", CloudInit: metadata.CloudInit{UserData: "#cloud-config\n"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.power.Calls(); got != "m1 bootdev pxe; m1 cycle" {
		t.Fatalf("power calls %q", got)
	}
	a := f.register(t)
	if a.Task == nil || a.Task.Kind != agentapi.TaskProvision || a.Task.Image.URL != "http://10.0.0.1:8080/images/img" ||
		a.Task.Image.SHA256 != strings.Repeat("ab", 32) || a.Task.Validate() != nil {
		t.Fatalf("assignment %+v", a.Task)
	}
	m, _ := f.store.GetMachine(ctx, "m1")
	if m.UUID != "" || len(m.Hardware) != 0 {
		t.Fatalf("register without a token stored hardware: %+v %s", m, m.Hardware)
	}
	rep := agentapi.InventoryReport{Version: 1, TaskID: a.Task.ID, Inventory: agentapi.Inventory{DMI: agentapi.DMI{SystemUUID: "ABC-123", SystemSerial: "SN1"},
		Disks: []agentapi.Disk{{Name: "vda", SizeBytes: 8 << 30}}}}
	if code, b := f.post(t, agentapi.PathInventory, "", rep); code != 401 {
		t.Fatalf("inventory without a token: %d %s", code, b)
	}
	if code, b := f.post(t, agentapi.PathInventory, a.Task.Token, rep); code != 204 {
		t.Fatalf("inventory: %d %s", code, b)
	}
	m, _ = f.store.GetMachine(ctx, "m1")
	if m.UUID != "abc-123" || m.Serial != "SN1" || !strings.Contains(string(m.Hardware), `"vda"`) {
		t.Fatalf("inventory not stored: %+v %s", m, m.Hardware)
	}
	// The same task again on a second register (agent restarted), with a
	// fresh token: the first one is revoked.
	again := f.register(t)
	if again.Task == nil || again.Task.ID != a.Task.ID || again.Task.Token == a.Task.Token {
		t.Fatalf("second register: %+v", again.Task)
	}
	if code, _ := f.post(t, agentapi.PathProgress, a.Task.Token, agentapi.Progress{Version: 1, TaskID: a.Task.ID}); code != 401 {
		t.Fatalf("revoked token: %d", code)
	}
	a = again
	prog := agentapi.Progress{Version: 1, TaskID: a.Task.ID, Phase: agentapi.PhaseWriting, BytesWritten: 512, Total: 1 << 20, Log: []string{"writing vda"}}
	if code, b := f.post(t, agentapi.PathProgress, "mt_forged", prog); code != 401 {
		t.Fatalf("forged token: %d %s", code, b)
	}
	if code, b := f.post(t, agentapi.PathProgress, a.Task.Token, prog); code != 204 {
		t.Fatalf("progress: %d %s", code, b)
	}
	wrong := prog
	wrong.TaskID = "999"
	if code, _ := f.post(t, agentapi.PathProgress, a.Task.Token, wrong); code != 403 {
		t.Fatalf("token used for another task: %d", code)
	}
	code, b := f.post(t, agentapi.PathResult, a.Task.Token, agentapi.Result{Version: 1, TaskID: a.Task.ID, Success: true,
		SHA256: strings.Repeat("ab", 32), Disk: "/dev/vda"})
	if code != 200 {
		t.Fatalf("result: %d %s", code, b)
	}
	j, _ = f.store.GetJob(ctx, j.ID)
	if j.State != inventory.JobSucceeded {
		t.Fatalf("job %+v", j)
	}
	if got := f.power.Calls(); !strings.HasSuffix(got, "m1 bootdev disk persistent; m1 cycle") {
		t.Fatalf("power calls %q", got)
	}
	m, _ = f.store.GetMachine(ctx, "m1")
	if m.State != inventory.StateProvisioned {
		t.Fatalf("machine %s (%s)", m.State, m.StateReason)
	}
	if code, _ := f.post(t, agentapi.PathResult, a.Task.Token, agentapi.Result{Version: 1, TaskID: a.Task.ID, Success: true}); code != 401 {
		t.Fatalf("spent token accepted: %d", code)
	}
}

func TestProvisionWrongDigestFails(t *testing.T) {
	f := newFixture(t, false)
	f.ready(t)
	ctx := context.Background()
	j, err := f.svc.Provision(ctx, "m1", ProvisionRequest{Image: "img"})
	if err != nil {
		t.Fatal(err)
	}
	if j.Phase != PhaseBooting || f.power.Calls() != "" {
		t.Fatalf("no-BMC job phase %s, calls %q", j.Phase, f.power.Calls())
	}
	a := f.register(t)
	code, b := f.post(t, agentapi.PathResult, a.Task.Token, agentapi.Result{Version: 1, TaskID: a.Task.ID, Success: true,
		SHA256: strings.Repeat("cd", 32), Disk: "/dev/vda"})
	if code != 200 {
		t.Fatalf("result: %d %s", code, b)
	}
	m, _ := f.store.GetMachine(ctx, "m1")
	if m.State != inventory.StateFailed || !strings.Contains(m.StateReason, "does not match") {
		t.Fatalf("machine %s: %s", m.State, m.StateReason)
	}
}

func TestNoBMCSuccessRebootsThroughTheAgent(t *testing.T) {
	f := newFixture(t, false)
	f.ready(t)
	if _, err := f.svc.Provision(context.Background(), "m1", ProvisionRequest{Image: "img"}); err != nil {
		t.Fatal(err)
	}
	a := f.register(t)
	_, b := f.post(t, agentapi.PathResult, a.Task.Token, agentapi.Result{Version: 1, TaskID: a.Task.ID, Success: true, SHA256: strings.Repeat("ab", 32)})
	var rr agentapi.ResultResponse
	json.Unmarshal(b, &rr)
	if rr.After != agentapi.AfterReboot {
		t.Fatalf("after %q", rr.After)
	}
	m, _ := f.store.GetMachine(context.Background(), "m1")
	if m.State != inventory.StateProvisioned {
		t.Fatalf("machine %s", m.State)
	}
}

func TestDeadlineFailsTheJob(t *testing.T) {
	f := newFixture(t, false)
	f.ready(t)
	ctx := context.Background()
	j, err := f.svc.Provision(ctx, "m1", ProvisionRequest{Image: "img"})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.now = func() time.Time { return time.Now().Add(time.Hour) }
	f.svc.expire(ctx)
	j, _ = f.store.GetJob(ctx, j.ID)
	m, _ := f.store.GetMachine(ctx, "m1")
	if j.State != inventory.JobFailed || m.State != inventory.StateFailed || !strings.Contains(m.StateReason, "timed out in phase booting") {
		t.Fatalf("job %s machine %s: %s", j.State, m.State, m.StateReason)
	}
}

func TestPowerFailureAndResume(t *testing.T) {
	f := newFixture(t, true)
	f.ready(t)
	ctx := context.Background()
	f.svc.async = func(func()) {} // metald "crashes" before the power step runs
	j, err := f.svc.Provision(ctx, "m1", ProvisionRequest{Image: "img"})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.async = func(fn func()) { fn() }
	f.power.fail = "cycle"
	if err := f.svc.resume(ctx); err != nil {
		t.Fatal(err)
	}
	j, _ = f.store.GetJob(ctx, j.ID)
	if j.State != inventory.JobFailed || !strings.Contains(j.Error, "power cycle: bmc said no") {
		t.Fatalf("job %+v", j)
	}
}

func TestInspectAndUnknownMAC(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	if _, err := f.svc.Inspect(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	a := f.register(t)
	if a.Task == nil || a.Task.Kind != agentapi.TaskInspect {
		t.Fatalf("task %+v", a.Task)
	}
	f.post(t, agentapi.PathResult, a.Task.Token, agentapi.Result{Version: 1, TaskID: a.Task.ID, Success: true})
	m, _ := f.store.GetMachine(ctx, "m1")
	if m.State != inventory.StateReady {
		t.Fatalf("after inspect: %s", m.State)
	}
	code, _ := f.post(t, agentapi.PathRegister, "", agentapi.RegisterRequest{Version: 1, MAC: "52:54:00:ff:ff:ff"})
	if code != 404 {
		t.Fatalf("unknown MAC with discovery off: %d", code)
	}
	f.svc.cfg.DiscoverUnknown = true
	code, b := f.post(t, agentapi.PathRegister, "", agentapi.RegisterRequest{Version: 1, MAC: "52:54:00:ff:ff:ff"})
	if code != 200 || !strings.Contains(string(b), "discovered-525400ffffff") {
		t.Fatalf("discover: %d %s", code, b)
	}
	if code, _ := f.post(t, agentapi.PathRegister, "", agentapi.RegisterRequest{Version: 7, MAC: "52:54:00:aa:00:01"}); code != 400 {
		t.Fatalf("bad version: %d", code)
	}
}
