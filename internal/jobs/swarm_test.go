package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/internal/swarm"
	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/imaging"
	"github.com/metal-iaas/metal/pkg/inventory"
)

func digestOf(i int) string {
	s := sha256.Sum256([]byte{byte(i)})
	return hex.EncodeToString(s[:])
}

// TestSwarmRoute: a provision by chunks with the swarm on tells its
// agent so; the agent's swarm requests need its task token from its
// address and a job that is writing; the tracker sees the request's
// source address (not a claimed one); a peer reported corrupt is
// evented as security.peer_corrupt on the peer's machine; the result
// takes the agent out of the wave.
func TestSwarmRoute(t *testing.T) {
	g := newGuarded(t, AgentGuard{})
	ctx := context.Background()
	man := &imaging.Manifest{Version: 1, ChunkSize: 4096, Size: 3 * 4096, RawSHA256: strings.Repeat("ab", 32),
		Chunks: []string{digestOf(1), digestOf(2), digestOf(3)}}
	g.svc.cfg.Manifests = fakeManifests{"img": man}
	tr := swarm.New(swarm.Config{}, nil)
	g.svc.cfg.Swarm = &SwarmConfig{Tracker: tr, Agent: agentapi.Swarm{Port: 7070, MaxConns: 3}}
	if _, err := g.store.CreateMachine(ctx, inventory.Machine{Name: "m2", MACs: []string{"52:54:00:aa:00:02"}}); err != nil {
		t.Fatal(err)
	}
	for _, st := range []inventory.State{inventory.StateInspecting, inventory.StateReady} {
		if _, err := g.store.Transition(ctx, "m2", st, "test"); err != nil {
			t.Fatal(err)
		}
	}
	tasks := map[string]*agentapi.Task{}
	for _, m := range []struct{ name, mac, addr string }{{"m1", victimMAC, "10.9.0.20"}, {"m2", "52:54:00:aa:00:02", "10.9.0.21"}} {
		if _, err := g.svc.Provision(ctx, m.name, ProvisionRequest{Image: "img"}); err != nil {
			t.Fatal(err)
		}
		_, a := g.register(t, m.addr, m.mac)
		if a.Task == nil || a.Task.Image == nil || a.Task.Image.Swarm == nil || a.Task.Image.Swarm.Port != 7070 || a.Task.Image.Swarm.MaxConns != 3 {
			t.Fatalf("%s: task %+v, want the swarm settings", m.name, a.Task)
		}
		tasks[m.name] = a.Task
	}
	exchange := func(from string, task *agentapi.Task, req agentapi.SwarmRequest) (int, agentapi.SwarmResponse) {
		t.Helper()
		req.Version, req.TaskID = agentapi.Version, task.ID
		code, b := g.do(http.MethodPost, agentapi.PathSwarm, from, task.Token, req)
		var resp agentapi.SwarmResponse
		_ = json.Unmarshal(b, &resp)
		return code, resp
	}
	// m1 holds chunk 1 and serves on 7070 (it claims another address: ignored).
	code, _ := exchange("10.9.0.20", tasks["m1"], agentapi.SwarmRequest{Port: 7070, Token: strings.Repeat("a", 32),
		Need: man.Chunks[1:], Have: man.Chunks[:1]})
	if code != 200 {
		t.Fatalf("m1 swarm: %d", code)
	}
	code, resp := exchange("10.9.0.21", tasks["m2"], agentapi.SwarmRequest{Port: 7070, Token: strings.Repeat("b", 32), Need: man.Chunks, Want: 3})
	if code != 200 {
		t.Fatalf("m2 swarm: %d", code)
	}
	var fromPeer *agentapi.SwarmAssignment
	for i, a := range resp.Assign {
		if a.Digest == man.Chunks[0] {
			fromPeer = &resp.Assign[i]
		}
	}
	if fromPeer == nil || len(fromPeer.Peers) != 1 || fromPeer.Peers[0].Addr != "10.9.0.20:7070" || fromPeer.Peers[0].Token != strings.Repeat("a", 32) {
		t.Fatalf("m2's assignments %+v, want chunk 1 from m1 at 10.9.0.20:7070", resp.Assign)
	}
	// The token from another address, a token for another task, no token.
	if code, _ := exchange("10.9.0.66", tasks["m2"], agentapi.SwarmRequest{Want: 1}); code != http.StatusForbidden {
		t.Errorf("m2's token from a stranger: %d, want 403", code)
	}
	if code, _ := g.do(http.MethodPost, agentapi.PathSwarm, "10.9.0.21", "", agentapi.SwarmRequest{Version: 1, TaskID: tasks["m2"].ID}); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	if code, _ := exchange("10.9.0.21", tasks["m2"], agentapi.SwarmRequest{Need: []string{"../x"}}); code != http.StatusBadRequest {
		t.Errorf("bad digest: %d, want 400", code)
	}
	// m2 reports m1's chunk corrupt: m1 leaves the wave, evented on m1.
	code, _ = exchange("10.9.0.21", tasks["m2"], agentapi.SwarmRequest{Failed: []agentapi.SwarmFailure{
		{Digest: man.Chunks[0], Peer: "10.9.0.20:7070", Corrupt: true, Error: "sha256 mismatch"}}})
	if code != 200 {
		t.Fatalf("report: %d", code)
	}
	evs, err := g.store.ListEvents(ctx, inventory.EventFilter{Type: "security.peer_corrupt"})
	if err != nil || len(evs) != 1 || evs[0].Machine != "m1" || !strings.Contains(evs[0].Message, "reported by m2") {
		t.Fatalf("events %+v (%v), want one security.peer_corrupt on m1 reported by m2", evs, err)
	}
	if n := tr.Members()[man.Digest()]; n != 1 {
		t.Fatalf("wave has %d members, want m2 alone", n)
	}
	// m2's agent restarts mid-wave: its task comes back with delta, so
	// that it resumes from what its disk holds.
	if tasks["m2"].Image.Delta {
		t.Fatal("first task of a machine never provisioned has delta on")
	}
	_, a := g.register(t, "10.9.0.21", "52:54:00:aa:00:02")
	if a.Task == nil || !a.Task.Image.Delta {
		t.Fatalf("task handed out again: %+v, want delta on", a.Task)
	}
	tasks["m2"] = a.Task
	// The result ends m2's membership.
	res := agentapi.Result{Version: 1, TaskID: tasks["m2"].ID, Success: true, SHA256: man.RawSHA256, ManifestDigest: man.Digest()}
	if code, b := g.do(http.MethodPost, agentapi.PathResult, "10.9.0.21", tasks["m2"].Token, res); code != 200 {
		t.Fatalf("result: %d %s", code, b)
	}
	if m := tr.Members(); len(m) != 0 {
		t.Fatalf("members after the result: %v", m)
	}
	// A job no longer writing has no swarm.
	if code, _ := exchange("10.9.0.21", tasks["m2"], agentapi.SwarmRequest{Want: 1}); code != http.StatusConflict && code != http.StatusUnauthorized {
		t.Errorf("swarm after the result: %d, want refused", code)
	}
}
