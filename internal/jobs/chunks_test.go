package jobs

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/imaging"
	"github.com/metal-iaas/metal/pkg/inventory"
)

type fakeManifests map[string]*imaging.Manifest

func (f fakeManifests) Manifest(_ context.Context, name string) (*imaging.Manifest, error) {
	if m, ok := f[name]; ok {
		return m, nil
	}
	return nil, inventory.ErrNotFound
}

// TestProvisionByChunks: an image with a manifest is handed out as
// chunks (manifest URL and digest, chunk base) with delta off on a
// machine never provisioned and on for the next provision; a result
// that verified another manifest fails the job.
func TestProvisionByChunks(t *testing.T) {
	g := newGuarded(t, AgentGuard{})
	man := &imaging.Manifest{Version: 1, ChunkSize: 4096, Size: 1 << 20, RawSHA256: strings.Repeat("ab", 32), Chunks: make([]string, 256)}
	g.svc.cfg.Manifests = fakeManifests{"img": man}
	ctx := context.Background()
	run := func(sha, manifest string) (agentapi.Task, inventory.Job) {
		t.Helper()
		j, err := g.svc.Provision(ctx, "m1", ProvisionRequest{Image: "img"})
		if err != nil {
			t.Fatal(err)
		}
		_, a := g.register(t, "10.9.0.20", victimMAC)
		if a.Task == nil || a.Task.Image == nil {
			t.Fatalf("no task: %+v", a)
		}
		res := agentapi.Result{Version: 1, TaskID: a.Task.ID, Success: true, SHA256: sha, ManifestDigest: manifest, BytesSkipped: 5}
		if code, b := g.do(http.MethodPost, agentapi.PathResult, "10.9.0.20", a.Task.Token, res); code != 200 {
			t.Fatalf("result: %d %s", code, b)
		}
		j, _ = g.store.GetJob(ctx, j.ID)
		return *a.Task, j
	}
	task, j := run(man.RawSHA256, man.Digest())
	im := task.Image
	if im.ManifestURL != "http://10.9.0.1:8080/images/img/manifest" || im.ManifestDigest != man.Digest() ||
		im.ChunkURL != "http://10.9.0.1:8080/chunks" || im.Delta || task.Validate() != nil {
		t.Fatalf("first task image %+v", im)
	}
	if j.State != inventory.JobSucceeded {
		t.Fatalf("job %+v", j)
	}
	var p Params
	_ = json.Unmarshal(j.Params, &p)
	if p.ManifestDigest != man.Digest() {
		t.Fatalf("params %+v", p)
	}
	// Back to ready for the next provision.
	for _, st := range []inventory.State{inventory.StateDeprovisioning, inventory.StateReady} {
		if _, err := g.store.Transition(ctx, "m1", st, "test"); err != nil {
			t.Fatal(err)
		}
	}
	task, j = run(man.RawSHA256, strings.Repeat("cd", 32))
	if !task.Image.Delta {
		t.Error("delta off for a machine provisioned before")
	}
	if j.State != inventory.JobFailed || !strings.Contains(j.Error, "chunk manifest") {
		t.Fatalf("a result for another manifest: %+v", j)
	}
}
