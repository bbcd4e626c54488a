package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/test/lab"
)

// attack is one request a hostile host on the provisioning network makes.
type attack struct {
	name, method, path string
	body               any
	header             map[string]string
	want               int // the status metald must answer
}

// TestHostileHostOnTheProvisioningNetwork: while a real agent
// provisions vm1 (full DHCP, on QEMU's qemu64 CPU: no RDRAND, so the
// agent must not wait for the kernel's entropy), a second host on the
// same bridge — its own network namespace, an address metald never
// handed out — knows the victim's MAC, name and address and tries every
// attack issue 10 lists: take the task (and its token), register as the
// machine to overwrite its hardware, forge results, progress and
// inventory, read the boot script and the user-data, spoof
// X-Forwarded-For, flood. Every request is refused; the refusals are
// counted in /metrics and evented with the attacker's address; the
// provision completes with the real agent's hardware and the job's
// agent address is the VM's.
func TestHostileHostOnTheProvisioningNetwork(t *testing.T) {
	t.Parallel() // one VM: two such tests share the 2 cores
	r := newRig(t)
	img := testImage(t, r)
	ctx := context.Background()
	v, err := r.lab.AddVM(ctx, lab.VMConfig{Name: "vm1", MAC: mac1, DiskBytes: 1 << 30, CPU: "qemu64"})
	if err != nil {
		t.Fatal(err)
	}
	r.mustCtl("machine", "add", "vm1", "--mac", mac1, "--bmc", v.BMCURL(), "--ip", ip1)
	r.mustCtl("machine", "edit", "vm1", "--state", "ready")
	r.mustCtl("image", "upload", img.OVA, "--name", "os")
	const evilIP = "10.66.0.66"
	evil, err := r.lab.AddHost(ctx, "evil", evilIP)
	if err != nil {
		t.Fatal(err)
	}
	ud := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(ud, []byte("#cloud-config\n# secret: hunter2\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	var out string
	go func() {
		var err error
		out, err = r.ctl(8*time.Minute, "provision", "vm1", "--image", "os", "--user-data", ud, "--wait", "--timeout", "7m")
		done <- err
	}()
	// Attack while the agent holds the task (job in its writing phase).
	job := waitJob(t, r, "vm1", func(j jobView) bool { return j.Phase == "writing" && j.AgentAddr != "" }, 5*time.Minute, done)
	if job.AgentAddr != ip1 {
		t.Fatalf("job %d claimed from %s, want the VM's %s", job.ID, job.AgentAddr, ip1)
	}

	base := r.md.URL
	attacks := machineAttacks(mac1, "vm1", ip1, job.ID, img.RawSHA256)
	attacks = append(attacks,
		attack{"register with a 4 MiB agent version", "POST", agentapi.PathRegister, agentapi.RegisterRequest{Version: 1, MAC: mac1, AgentVersion: strings.Repeat("A", 4<<20)}, nil, 400},
		attack{"register an unknown MAC", "POST", agentapi.PathRegister, agentapi.RegisterRequest{Version: 1, MAC: "52:54:00:66:66:66"}, nil, 404},
		attack{"read EC2 user-data", "GET", "/latest/user-data", nil, nil, 404},
		attack{"read the API without a token", "GET", "/api/v1/machines", nil, nil, 401},
		attack{"Reset through Redfish without a session", "POST", "/redfish/v1/Systems/vm1/Actions/ComputerSystem.Reset",
			map[string]string{"ResetType": "ForceOff"}, nil, 401},
		// A page the operator's browser visits posts a form with the
		// operator's cached Basic credentials (cross-site, no preflight).
		attack{"Reset through Redfish as a text/plain form post with the operator's credentials", "POST", "/redfish/v1/Systems/vm1/Actions/ComputerSystem.Reset",
			`{"ResetType":"ForceOff"}`, map[string]string{"Content-Type": "text/plain",
				"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("operator:"+r.md.Token))}, 415})
	hc := evil.HTTPClient()
	// Slow clients: 100 connections from the attacker that never finish
	// their request headers, held open through the attacks.
	var stalled []io.Closer
	for i := 0; i < 100; i++ {
		c, err := evil.Dial(ctx, "tcp4", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatalf("stalled connection %d: %v", i, err)
		}
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Len", agentapi.PathRegister)
		stalled = append(stalled, c)
	}
	defer func() {
		for _, c := range stalled {
			c.Close()
		}
	}()
	t0 := time.Now()
	if code, _ := send(t, hc, "GET", base+"/healthz", nil, nil); code != 200 {
		t.Errorf("/healthz with 100 stalled connections from the attacker: %d", code)
	}
	t.Logf("/healthz answered in %v with 100 stalled connections open", time.Since(t0).Round(time.Millisecond))
	runAttacks(t, hc, base, attacks)
	// A flood from the attacker is cut off (bounded: 200 requests).
	limited := 0
	for i := 0; i < 200; i++ {
		if code, _ := send(t, hc, "GET", base+agentapi.PathTask+"?mac="+mac1, nil, nil); code == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Error("200 task polls in a row from one address: none rate-limited")
	}
	if after := getJob(t, r, job.ID); after.AgentAddr != ip1 || after.State != "running" {
		t.Errorf("the attacks changed the job: %+v", after)
	}

	select {
	case err := <-done:
		t.Logf("metalctl provision --wait:\n%s", tail(out, 1200))
		if err != nil {
			t.Fatalf("provision under attack: %v", err)
		}
	case <-time.After(8 * time.Minute):
		t.Fatal("provision did not finish")
	}
	var m machine
	r.ctlJSON(&m, "machine", "show", "vm1")
	raw := r.mustCtl("machine", "show", "vm1", "-o", "json")
	if m.State != "provisioned" || strings.Contains(raw, "EVIL") || strings.Contains(raw, "evil") || len(m.Hardware.Disks) == 0 {
		t.Errorf("machine after the attacks: %s (%s)\n%s", m.State, m.StateReason, tail(raw, 1500))
	}
	if _, err := v.WaitSerial(ctx, "METAL-INSTALLED-OS-OK hostname=vm1", 0, 3*time.Minute); err != nil {
		t.Errorf("installed OS: %v", err)
	}

	// Counted in /metrics …
	metrics, err := r.md.Get(ctx, "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		metric string
		min    float64
	}{
		{`metald_agent_refused_total{reason="foreign"}`, 3},
		{`metald_agent_refused_total{reason="token"}`, 4},
		{`metald_agent_refused_total{reason="rate"}`, float64(limited)},
		{`metald_metadata_refused_total{reason="foreign"}`, 2},
		{`metal_netboot_decisions_total{outcome="refused_foreign"}`, 1},
	} {
		if got := metricValue(metrics, want.metric); got < want.min {
			t.Errorf("%s = %v, want ≥ %v", want.metric, got, want.min)
		}
	}
	// … and evented with the attacker's address.
	evs := r.mustCtl("events", "--machine", "vm1", "--limit", "1000", "-o", "json")
	for _, typ := range []string{"security.agent_refused", "security.metadata_refused", "security.boot_script_refused"} {
		if !regexp.MustCompile(`"type":\s*"` + regexp.QuoteMeta(typ) + `"`).MatchString(evs) {
			t.Errorf("no %s event for vm1", typ)
		}
	}
	if !strings.Contains(evs, evilIP) {
		t.Errorf("no event names the attacker's address %s", evilIP)
	}
}

// machineAttacks are what a stranger on the provisioning network tries
// against the machine (MAC mac, address addr) while job id runs: take its
// task, register as it, forge the agent's reports, read its boot script
// and metadata. Each must be refused.
func machineAttacks(mac, machine, addr string, id int64, rawSHA string) []attack {
	fakeInv := agentapi.Inventory{MemoryBytes: 1 << 50, DMI: agentapi.DMI{SystemUUID: "EVIL-UUID", SystemSerial: "EVIL-SN"},
		CPU: agentapi.CPU{Model: "EVIL CPU"}}
	taskID := strconv.FormatInt(id, 10)
	guessed := map[string]string{"Authorization": "Bearer mt_0000"}
	return []attack{
		{"take the victim's task", "GET", agentapi.PathTask + "?mac=" + mac, nil, nil, 403},
		{"take the task, X-Forwarded-For the victim", "GET", agentapi.PathTask + "?mac=" + mac, nil, map[string]string{"X-Forwarded-For": addr, "X-Real-IP": addr}, 403},
		{"register as the victim with fake hardware", "POST", agentapi.PathRegister, agentapi.RegisterRequest{Version: 1, MAC: mac, AgentVersion: "evil", Inventory: fakeInv}, nil, 403},
		{"forge a success without a token", "POST", agentapi.PathResult, agentapi.Result{Version: 1, TaskID: taskID, Success: true, SHA256: rawSHA}, nil, 401},
		{"forge a success with a guessed token", "POST", agentapi.PathResult, agentapi.Result{Version: 1, TaskID: taskID, Success: true, SHA256: rawSHA}, guessed, 401},
		{"forge progress", "POST", agentapi.PathProgress, agentapi.Progress{Version: 1, TaskID: taskID, BytesWritten: 1 << 40}, guessed, 401},
		{"forge inventory", "POST", agentapi.PathInventory, agentapi.InventoryReport{Version: 1, TaskID: taskID, Inventory: fakeInv}, guessed, 401},
		{"read the victim's boot script", "GET", "/boot.ipxe?mac=" + mac, nil, nil, 403},
		{"read the victim's user-data", "GET", "/nocloud/" + machine + "/user-data", nil, nil, 403},
		{"read the victim's meta-data", "GET", "/nocloud/" + machine + "/meta-data", nil, nil, 403},
	}
}

// runAttacks sends each attack from hc and checks metald's answer, and
// that no answer carries a task token or the user-data's secret.
func runAttacks(t *testing.T, hc *http.Client, base string, attacks []attack) {
	t.Helper()
	for _, a := range attacks {
		code, body := send(t, hc, a.method, base+a.path, a.body, a.header)
		if code != a.want {
			t.Errorf("%s: %d, want %d: %s", a.name, code, a.want, tail(body, 300))
		}
		if strings.Contains(body, "mt_") || strings.Contains(body, "hunter2") {
			t.Errorf("%s: the answer leaks a secret: %s", a.name, tail(body, 300))
		}
	}
}

// jobView is the part of a job the tests read.
type jobView struct {
	ID        int64  `json:"id"`
	State     string `json:"state"`
	Phase     string `json:"phase"`
	AgentAddr string `json:"agent_addr"`
}

// waitJob polls the machine's newest job until ok (or the deadline, or
// the provision ending early).
func waitJob(t *testing.T, r *rig, machine string, ok func(jobView) bool, d time.Duration, done <-chan error) jobView {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		var jobs []jobView
		r.ctlJSON(&jobs, "jobs", machine)
		if len(jobs) > 0 && ok(jobs[0]) {
			return jobs[0]
		}
		select {
		case err := <-done:
			t.Fatalf("provision ended before the attack: %v", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	t.Fatalf("job of %s never reached the awaited phase", machine)
	return jobView{}
}

func getJob(t *testing.T, r *rig, id int64) jobView {
	t.Helper()
	var j jobView
	r.ctlJSON(&j, "jobs", "show", strconv.FormatInt(id, 10))
	return j
}

// send makes one request and returns status and body (status 0 when the
// connection failed).
func send(t *testing.T, hc *http.Client, method, url string, body any, hdr map[string]string) (int, string) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string: // sent as is
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// metricValue reads one sample (name{labels}) from a Prometheus text
// exposition; 0 when absent.
func metricValue(text, sample string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}
