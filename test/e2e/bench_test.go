package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/lab"
)

// Run once, not in make test:
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 40m ./test/e2e/
//
// BenchmarkProvision measures provision → provisioned for one VM and for
// four VMs at once (four ipmi_sims, four 384 MiB TCG VMs on two cores),
// by phase from metald's event timestamps, and the agent's write
// throughput against a local qemu-img convert of the same image in the
// same run.

type event struct {
	ID      int64          `json:"id"`
	Time    time.Time      `json:"time"`
	Machine string         `json:"machine"`
	Type    string         `json:"type"`
	Message string         `json:"message"`
	Data    map[string]any `json:"data"`
}

// timeline is the machine's events since a time.
func (r *rig) timeline(b testing.TB, name string, since time.Time) []event {
	out, err := r.ctl(30*time.Second, "events", "--machine", name, "-o", "json")
	if err != nil {
		b.Fatalf("events: %v\n%s", err, out)
	}
	var evs []event
	if err := json.Unmarshal([]byte(out), &evs); err != nil {
		b.Fatalf("events json: %v\n%s", err, tail(out, 500))
	}
	var keep []event
	for _, e := range evs {
		if !e.Time.Before(since) {
			keep = append(keep, e)
		}
	}
	sort.Slice(keep, func(i, j int) bool { return keep[i].ID < keep[j].ID })
	return keep
}

// phases prints each event's offset from start and returns the seconds
// spent from each job.phase event to the next phase (or the job's end).
func phases(b testing.TB, name string, start time.Time, evs []event) map[string]float64 {
	out := map[string]float64{}
	cur, at := "", start
	for _, e := range evs {
		if e.Type == "agent.log" || strings.HasPrefix(e.Type, "power.poll") {
			continue
		}
		b.Logf("%s %+7.1f s  %-20s %s", name, e.Time.Sub(start).Seconds(), e.Type, tail(e.Message, 110))
		if e.Type == "job.phase" {
			if cur != "" {
				out[cur] += e.Time.Sub(at).Seconds()
			}
			cur, at = fmt.Sprint(e.Data["phase"]), e.Time
		}
		if strings.HasPrefix(e.Type, "job.succeeded") || strings.HasPrefix(e.Type, "job.finished") || e.Type == "machine.state" && strings.Contains(e.Message, "provisioned") {
			if cur != "" {
				out[cur] += e.Time.Sub(at).Seconds()
				cur = ""
			}
		}
	}
	return out
}

func BenchmarkProvision(b *testing.B) {
	for i := 0; i < b.N; i++ {
		benchOnce(b)
	}
}

func benchOnce(b *testing.B) {
	r := newRig(b)
	ctx := context.Background()

	// Throughput image: the test OS plus 448 MiB of incompressible data
	// on a 512 MiB disk, as qcow2.
	big, err := lab.BuildImage(ctx, lab.ImageConfig{Dir: filepath.Join(r.dir, "img512"), KernelDir: r.sh.kernel,
		Init: r.sh.bins.InstalledInit, MetadataURL: r.md.URL, SizeBytes: 512 << 20, FillBytes: 448 << 20, QCOW2Only: true})
	if err != nil {
		b.Fatal(err)
	}
	small := testImage(b, r)
	r.mustCtl("image", "upload", big.QCOW2, "--name", "os-512")
	r.mustCtl("image", "upload", small.QCOW2ZST, "--name", "os-64")

	// Anchor: qemu-img convert of the same qcow2 to a raw file here.
	anchor := filepath.Join(r.dir, "anchor.raw")
	t0 := time.Now()
	if err := lab.Run(ctx, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", big.QCOW2, anchor); err != nil {
		b.Fatal(err)
	}
	if err := lab.Run(ctx, "sync"); err != nil {
		b.Fatal(err)
	}
	anchorS := time.Since(t0).Seconds()
	os.Remove(anchor)

	// One VM, the 512 MiB image.
	vms := []*lab.VM{r.addVM("vm1", mac1, ip1, 1<<30)}
	start := time.Now()
	if out, err := r.ctl(15*time.Minute, "provision", "vm1", "--image", "os-512", "--wait", "--timeout", "14m"); err != nil {
		b.Fatalf("provision: %v\n%s", err, out)
	}
	total := time.Since(start).Seconds()
	evs := r.timeline(b, "vm1", start.Add(-time.Second))
	ph := phases(b, "vm1", start, evs)
	agentS, agentBytes := agentResult(evs)
	b.Logf("ONE VM (512 MiB image, 448 MiB data): provision → provisioned %.1f s; phases %v", total, fmtPhases(ph))
	b.Logf("agent: %.1f MiB in %.1f s = %.1f MiB/s; qemu-img convert qcow2 → raw here: %.1f s = %.1f MiB/s; ratio agent/qemu-img %.2f",
		float64(agentBytes)/(1<<20), agentS, float64(agentBytes)/(1<<20)/agentS, anchorS, float64(big.SizeBytes)/(1<<20)/anchorS,
		(float64(agentBytes)/agentS)/(float64(big.SizeBytes)/anchorS))
	b.ReportMetric(total, "s/provision-1vm")
	r.mustCtl("power", "off", "vm1")

	// Four VMs at once, the 64 MiB image.
	for i := 2; i <= 5; i++ {
		vms = append(vms, r.addVM(fmt.Sprintf("vm%d", i), fmt.Sprintf("52:54:00:e2:e0:%02x", i), fmt.Sprintf("10.66.0.%d", 10+i), 1<<30))
	}
	names := []string{"vm2", "vm3", "vm4", "vm5"}
	start = time.Now()
	if out, err := r.ctl(20*time.Minute, append(append([]string{"provision"}, names...), "--image", "os-64", "--wait", "--timeout", "19m")...); err != nil {
		b.Fatalf("provision x4: %v\n%s", err, out)
	}
	total4 := time.Since(start).Seconds()
	var mu sync.Mutex
	var per []string
	for _, n := range names {
		evs := r.timeline(b, n, start.Add(-time.Second))
		ph := phases(b, n, start, evs)
		mu.Lock()
		per = append(per, fmt.Sprintf("%s %v", n, fmtPhases(ph)))
		mu.Unlock()
	}
	b.Logf("FOUR VMs at once (64 MiB image): all provisioned after %.1f s; %s", total4, strings.Join(per, "; "))
	b.ReportMetric(total4, "s/provision-4vm")
}

func agentResult(evs []event) (float64, int64) {
	for _, e := range evs {
		if e.Type == "agent.succeeded" {
			s, _ := e.Data["seconds"].(float64)
			n, _ := e.Data["bytes"].(float64)
			return s, int64(n)
		}
	}
	return 0, 0
}

func fmtPhases(p map[string]float64) string {
	var keys []string
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var s []string
	for _, k := range keys {
		s = append(s, fmt.Sprintf("%s=%.1fs", k, p[k]))
	}
	return "{" + strings.Join(s, " ") + "}"
}
