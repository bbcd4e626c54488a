package metadata

import (
	"context"
	"encoding/json"
	"github.com/metal-iaas/metal/internal/server"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metal-iaas/metal/pkg/inventory"
)

type fixture struct {
	t     *testing.T
	store *inventory.SQLite
	svc   *Service
	reg   *prometheus.Registry
	r     *gin.Engine
	jobID int64
}

// newFixture: m1 reserved at 10.66.0.11 and provisioning with user-data
// and a key; m2 without a reservation but leased 10.66.0.50; m3 ready.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	store, err := inventory.OpenSQLite(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for _, m := range []inventory.Machine{
		{Name: "m1", MACs: []string{"52:54:00:00:00:01"}, IP: "10.66.0.11"},
		{Name: "m2", MACs: []string{"52:54:00:00:00:02"}},
		{Name: "m3", MACs: []string{"52:54:00:00:00:03"}, IP: "10.66.0.13"},
	} {
		if _, err := store.CreateMachine(ctx, m); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Transition(ctx, m.Name, inventory.StateReady, "test"); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{t: t, store: store}
	params, _ := json.Marshal(CloudInit{UserData: "#cloud-config\nfinal_message: hi\n", SSHKeys: []string{key1}})
	for _, name := range []string{"m1", "m2"} {
		j, _, err := store.StartJob(ctx, inventory.Job{Machine: name, Kind: inventory.JobProvision, Phase: "writing", Params: params,
			Deadline: time.Now().Add(time.Hour)}, inventory.StateProvisioning, "test")
		if err != nil {
			t.Fatal(err)
		}
		if name == "m1" {
			f.jobID = j.ID
		}
	}
	if err := store.PutLease(ctx, inventory.Lease{MAC: "52:54:00:00:00:02", IP: "10.66.0.50", State: "bound", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.TestMode)
	f.r = gin.New()
	f.reg = prometheus.NewRegistry()
	f.svc = New(Config{Network: lan}, store, f.reg, nil)
	f.svc.Routes(f.r)
	return f
}

func (f *fixture) do(method, path, from string, hdr map[string]string) (int, string) {
	req := httptest.NewRequest(method, path, nil)
	req.RemoteAddr = from + ":40000"
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.r.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

func (f *fixture) refused(reason string) float64 {
	mfs, err := f.reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "metald_metadata_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestNoCloudOnlyForItsMachine: a machine reads its own NoCloud data from
// its reserved or leased address; any other address is refused, counted
// and evented with both addresses; user-data only while provisioning.
func TestNoCloudOnlyForItsMachine(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		path, from string
		status     int
		body       string
	}{
		{"/nocloud/m1/user-data", "10.66.0.11", 200, "final_message: hi"},
		{"/nocloud/m1/meta-data", "10.66.0.11", 200, "instance-id: m1-"},
		{"/nocloud/m1/network-config", "10.66.0.11", 200, "10.66.0.11/24"},
		{"/nocloud/m2/user-data", "10.66.0.50", 200, "final_message: hi"},
		{"/nocloud/m1/user-data", "10.66.0.99", 403, "10.66.0.99 asked for machine m1, which is at 10.66.0.11"},
		{"/nocloud/m1/meta-data", "10.66.0.50", 403, "which is at 10.66.0.11"},
		{"/nocloud/m2/user-data", "10.66.0.11", 403, "which is at 10.66.0.50"},
		{"/nocloud/m3/user-data", "10.66.0.13", 403, "is ready: user-data is served only while provisioning or provisioned"},
		{"/nocloud/nosuch/user-data", "10.66.0.11", 403, "no metadata"},
	} {
		code, body := f.do("GET", c.path, c.from, nil)
		if code != c.status || !strings.Contains(body, c.body) {
			t.Errorf("GET %s from %s: %d %q, want %d containing %q", c.path, c.from, code, body, c.status, c.body)
		}
	}
	if f.refused("foreign") != 3 || f.refused("state") != 1 || f.refused("unknown") != 1 {
		t.Errorf("refused counters foreign=%v state=%v unknown=%v", f.refused("foreign"), f.refused("state"), f.refused("unknown"))
	}
	evs, err := f.store.ListEvents(context.Background(), inventory.EventFilter{Machine: "m1", Type: "security.metadata_refused"})
	if err != nil || len(evs) != 2 || !strings.Contains(evs[0].Message, "10.66.0.99") || evs[0].Data["source"] != "10.66.0.99" {
		t.Fatalf("events %+v %v", evs, err)
	}
	// A flood from the same stranger is counted, not evented each time.
	for range 50 {
		f.do("GET", "/nocloud/m1/user-data", "10.66.0.99", nil)
	}
	evs, _ = f.store.ListEvents(context.Background(), inventory.EventFilter{Machine: "m1", Type: "security.metadata_refused"})
	if len(evs) != 2 || f.refused("foreign") != 53 {
		t.Errorf("after a flood: %d events, %v refused", len(evs), f.refused("foreign"))
	}
}

// TestEC2 answers what cloud-init's Ec2 datasource asks: an IMDSv2
// token, the versioned paths it probes, directory listings, keys.
func TestEC2(t *testing.T) {
	f := newFixture(t)
	code, tok := f.do("PUT", "/latest/api/token", "10.66.0.11", map[string]string{headerTokenTTL: "21600"})
	if code != 200 || len(tok) < 32 {
		t.Fatalf("token: %d %q", code, tok)
	}
	auth := map[string]string{headerToken: tok}
	id := "m1-" + strings.TrimSpace(jsonNum(f.jobID))
	for _, c := range []struct {
		method, path, from string
		hdr                map[string]string
		status             int
		body               string
	}{
		{"GET", "/2009-04-04/meta-data/instance-id", "10.66.0.11", auth, 200, id},
		{"GET", "/2021-03-23/meta-data/local-hostname", "10.66.0.11", auth, 200, "m1"},
		{"GET", "/latest/meta-data/", "10.66.0.11", auth, 200, "instance-id\ninstance-type\nlocal-hostname\nlocal-ipv4\nmac\nnetwork/\nplacement/\npublic-keys/\nservices/"},
		{"GET", "/latest/meta-data/public-keys/", "10.66.0.11", auth, 200, "0=key0"},
		{"GET", "/latest/meta-data/public-keys/0/openssh-key", "10.66.0.11", auth, 200, key1},
		{"GET", "/latest/meta-data/network/interfaces/macs/", "10.66.0.11", nil, 200, "52:54:00:00:00:01/"},
		{"GET", "/latest/user-data", "10.66.0.11", auth, 200, "final_message: hi"},
		{"GET", "/latest/meta-data/nosuch", "10.66.0.11", auth, 404, "no such key"},
		{"GET", "/latest/meta-data/instance-id", "10.66.0.50", auth, 401, "not issued to 10.66.0.50"},
		{"GET", "/latest/user-data", "10.66.0.99", nil, 404, "no machine is known at 10.66.0.99"},
		{"PUT", "/latest/api/token", "10.66.0.99", map[string]string{headerTokenTTL: "60"}, 404, "no machine"},
		{"PUT", "/latest/api/token", "10.66.0.11", map[string]string{headerTokenTTL: "0"}, 400, "1–21600"},
		{"GET", "/latest/user-data", "10.66.0.13", nil, 403, "is ready"},
	} {
		code, body := f.do(c.method, c.path, c.from, c.hdr)
		if code != c.status || !strings.Contains(body, c.body) {
			t.Errorf("%s %s from %s: %d %q, want %d containing %q", c.method, c.path, c.from, code, body, c.status, c.body)
		}
	}
}

func jsonNum(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestRoutesStayOnThePlainListener: with TLS on, the installed OS reads
// metadata over plain HTTP (it does not know metald's CA), so every
// metadata route must be one the boot listener serves.
func TestRoutesStayOnThePlainListener(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	New(Config{}, nil, nil, nil).Routes(r)
	for _, rt := range r.Routes() {
		if !server.RoleBoot.Serves(strings.ReplaceAll(rt.Path, "*key", "x")) {
			t.Errorf("%s %s is not served on the plain (boot) listener", rt.Method, rt.Path)
		}
	}
}
