package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/lab"
)

// TestWaveOfThree: three VMs provisioned with one image in one wave
// share its chunks peer to peer (metald the tracker): every disk holds
// the image, the agents got chunks from each other, and metald sent well
// under three copies of the image's chunks — the anchor without peers
// is three.
func TestWaveOfThree(t *testing.T) {
	// Not parallel: three VMs take both cores.
	r := newRig(t)
	img := testImage(t, r)
	var vms []*lab.VM
	var names []string
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("wave%d", i)
		vms = append(vms, r.addVM(name, fmt.Sprintf("52:54:00:e2:e3:%02x", i), fmt.Sprintf("10.66.0.%d", 30+i), 1<<30))
		names = append(names, name)
	}
	r.mustCtl("image", "upload", img.OVA, "--name", "os")
	start := time.Now()
	out, err := r.ctl(9*time.Minute, append(append([]string{"provision"}, names...), "--image", "os", "--config-drive", "none", "--wait", "--timeout", "8m")...)
	t.Logf("metalctl provision %v --wait (%.0f s):\n%s", names, time.Since(start).Seconds(), tail(out, 2000))
	if err != nil {
		t.Fatalf("metalctl provision --wait: %v", err)
	}
	for i, v := range vms {
		var m machine
		r.ctlJSON(&m, "machine", "show", names[i])
		if m.State != "provisioned" {
			t.Errorf("%s is %s (%s), want provisioned", names[i], m.State, m.StateReason)
		}
		if err := lab.DiskHoldsImage(v.Disk, img.Raw, img.SizeBytes); err != nil {
			t.Errorf("%s: %v", names[i], err)
		}
	}
	metrics, err := r.md.Get(context.Background(), "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	served := int64(metricValue(metrics, "metald_chunk_bytes_served_total"))
	stored := chunkStoreBytes(t, filepath.Join(r.dir, "metald-data", "images", "chunks"))
	var evs []struct {
		Machine string         `json:"machine"`
		Data    map[string]any `json:"data"`
	}
	r.ctlJSON(&evs, "events", "--type", "agent.succeeded", "--limit", "10")
	var fromPeers, fromMetald float64
	for _, e := range evs {
		p, _ := e.Data["bytes_from_peers"].(float64)
		m, _ := e.Data["bytes_from_metald"].(float64)
		t.Logf("%s: %.0f bytes from peers, %.0f from metald", e.Machine, p, m)
		fromPeers += p
		fromMetald += m
	}
	t.Logf("metald served %d bytes of chunks for 3 machines; the image's chunks are %d bytes (%.2f copies); peers sent %.0f bytes",
		served, stored, float64(served)/float64(stored), fromPeers)
	if stored == 0 || served >= 2*stored {
		t.Errorf("metald served %d bytes of chunks, want under 2 × the image's %d (3 × without peers)", served, stored)
	}
	if fromPeers == 0 {
		t.Error("no agent got a chunk from a peer")
	}
	if len(evs) != 3 || int64(fromMetald) > served {
		t.Errorf("%d agent.succeeded events, bytes from metald %.0f (metald served %d)", len(evs), fromMetald, served)
	}
}

// chunkStoreBytes sums the stored chunks (zstd) under dir.
func chunkStoreBytes(t *testing.T, dir string) int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.zst"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			n += st.Size()
		}
	}
	return n
}
