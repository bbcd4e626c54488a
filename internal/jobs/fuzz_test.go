package jobs

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/internal/swarm"
	"github.com/metal-iaas/metal/pkg/agentapi"
)

// FuzzAgentAPI throws arbitrary bodies, queries, tokens and source
// addresses at every /agent/v1 route of a service with a running job:
// nothing panics, nothing answers 5xx, and the job stays running (no
// input a stranger can make ends it).
func FuzzAgentAPI(f *testing.F) {
	for _, seed := range []struct {
		route       uint8
		body, query string
		token, from string
	}{
		{0, `{"version":1,"mac":"52:54:00:aa:00:01","agent_version":"x","inventory":{}}`, "", "", "10.9.0.11"},
		{1, "", "mac=52:54:00:aa:00:01", "", "10.9.0.66"},
		{2, `{"version":1,"task_id":"1","inventory":{"memory_bytes":1}}`, "", "mt_00", "10.9.0.11"},
		{3, `{"version":1,"task_id":"1","bytes_written":-1}`, "", "mt_00", "10.9.0.11"},
		{4, `{"version":1,"task_id":"1","success":true,"sha256":"ab"}`, "", "", "::1"},
		{0, `{"version":1,"mac":"zz"}`, "", "", "garbage"},
		{4, `{"version":1,"task_id":"1","success":false}`, "", "Bearer", "10.9.0.11"},
		{0, "\x00\xff{", "", "", ""},
		{5, `{"version":1,"task_id":"1","port":7000,"token":"0123456789abcdef","want":4,"need":["zz"]}`, "", "mt_00", "10.9.0.11"},
		{5, `{"version":1,"task_id":"1","failed":[{"digest":"x","peer":"[::1]:1","corrupt":true}]}`, "", "", "10.9.0.11"},
	} {
		f.Add(seed.route, seed.body, seed.query, seed.token, seed.from)
	}
	g := newGuarded(f, AgentGuard{LeaseBound: true, PerAddress: -1, PerMAC: -1, PerDiscovery: -1})
	g.svc.cfg.Swarm = &SwarmConfig{Tracker: swarm.New(swarm.Config{}, nil)}
	ctx := context.Background()
	j, err := g.svc.Provision(ctx, "m1", ProvisionRequest{Image: "img"})
	if err != nil {
		f.Fatal(err)
	}
	routes := []struct{ method, path string }{
		{http.MethodPost, agentapi.PathRegister}, {http.MethodGet, agentapi.PathTask}, {http.MethodPost, agentapi.PathInventory},
		{http.MethodPost, agentapi.PathProgress}, {http.MethodPost, agentapi.PathResult}, {http.MethodPost, agentapi.PathSwarm},
	}
	f.Fuzz(func(t *testing.T, route uint8, body, query, token, from string) {
		rt := routes[int(route)%len(routes)]
		req := httptest.NewRequest(rt.method, "/", strings.NewReader(body))
		req.URL.Path, req.URL.RawQuery = rt.path, query
		req.RemoteAddr = from + ":4000"
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		g.eng.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s?%s from %q: %d %s", rt.method, rt.path, query, from, w.Code, w.Body.String())
		}
		if got, _ := g.store.GetJob(ctx, j.ID); got.State != "running" {
			t.Fatalf("job ended by %s %s %q from %q: %+v", rt.method, rt.path, body, from, got)
		}
	})
}
