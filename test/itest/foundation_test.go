package itest

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/metal-iaas/metal/internal/client"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

func wantOK(t *testing.T, r Result, what string) {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", what, r.Code, r.Stdout, r.Stderr)
	}
}

func wantFail(t *testing.T, r Result, what, msg string) {
	t.Helper()
	if r.Code == 0 {
		t.Fatalf("%s: want a non-zero exit, got 0\nstdout: %s", what, r.Stdout)
	}
	if !strings.Contains(r.Stderr, msg) {
		t.Fatalf("%s: stderr %q does not say %q", what, r.Stderr, msg)
	}
}

// TestMachineCLIAcrossRestart is the foundation's acceptance path: add,
// list, show, conflicts, bad input, restart, rm — real binaries.
func TestMachineCLIAcrossRestart(t *testing.T) {
	m := StartMetald(t, "", "--dhcp-mode", "off")

	wantOK(t, m.Ctl("machine", "add", "m1", "--mac", "52:54:00:aa:00:01", "--ip", "10.9.0.11",
		"--bmc", "ipmi://admin:Pa55word@127.0.0.1:6230", "--no-verify", "--tag", "rack=r1"), "add m1")
	wantFail(t, m.Ctl("machine", "add", "m1", "--mac", "52:54:00:aa:00:02"), "duplicate name", `machine "m1" already exists`)
	wantFail(t, m.Ctl("machine", "add", "m2", "--mac", "52:54:00:AA:00:01"), "duplicate MAC in upper case", `already belongs to machine "m1"`)
	wantFail(t, m.Ctl("machine", "add", "m2", "--mac", "52:54:00:aa:00"), "bad MAC", `mac "52:54:00:aa:00"`)
	wantFail(t, m.Ctl("machine", "add", "m2", "--mac", "52:54:00:aa:00:02", "--ip", "10.9.0.999"), "bad IP", `ip "10.9.0.999"`)
	wantFail(t, m.Ctl("machine", "add", "m2", "--mac", "52:54:00:aa:00:02", "--bmc", "ftp://x"), "bad BMC URL", "scheme must be")
	wantFail(t, m.Ctl("machine", "edit", "m1", "--state", "provisioned"), "bad transition", "new → provisioned is not allowed")

	r := m.Ctl("machine", "list", "-o", "json")
	wantOK(t, r, "list")
	var list []metalapi.Machine
	if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil {
		t.Fatalf("list -o json: %v\n%s", err, r.Stdout)
	}
	if len(list) != 1 || list[0].Name != "m1" || list[0].MACs[0] != "52:54:00:aa:00:01" || list[0].State != "new" {
		t.Fatalf("list after refused changes: %+v", list)
	}
	if strings.Contains(r.Stdout, "Pa55word") {
		t.Fatal("BMC password shown by the API")
	}

	// A graceful restart keeps everything.
	if err := m.Stop(); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, m.Log())
	}
	if strings.Contains(m.Log(), "Pa55word") {
		t.Fatal("BMC password in metald's log")
	}
	m.Start()
	r = m.Ctl("machine", "show", "m1", "-o", "json")
	wantOK(t, r, "show after restart")
	var got metalapi.Machine
	if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != "m1" || got.IP != "10.9.0.11" || got.Tags["rack"] != "r1" || !strings.Contains(got.BMC, "xxxxx") {
		t.Fatalf("show after restart: %+v", got)
	}
	wantOK(t, m.Ctl("machine", "edit", "m1", "--state", "maintenance", "--reason", "disk swap"), "to maintenance")
	wantOK(t, m.Ctl("machine", "rm", "m1"), "rm")
	wantFail(t, m.Ctl("machine", "show", "m1"), "show removed", `machine "m1"`)
	r = m.Ctl("events", "--machine", "m1", "-o", "json")
	wantOK(t, r, "events")
	for _, typ := range []string{"machine.created", "machine.state", "machine.deleted"} {
		if !strings.Contains(r.Stdout, typ) {
			t.Errorf("events lack %s:\n%s", typ, r.Stdout)
		}
	}
}

func TestUnauthenticatedIs401(t *testing.T) {
	m := StartMetald(t, "")
	for _, tok := range []string{"", "metal_0000_bad"} {
		req, _ := http.NewRequest(http.MethodGet, m.URL+"/api/v1/machines", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e metalapi.Error
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || e.Code != "unauthorized" {
			t.Fatalf("token %q: status %d %+v", tok, resp.StatusCode, e)
		}
	}
	r := m.Ctl("--token", "", "machine", "list")
	if r.Code == 0 || !strings.Contains(r.Stderr, "bearer token") {
		t.Fatalf("metalctl without a token: %+v", r)
	}
	resp, err := http.Get(m.URL + "/api/v1/openapi.json")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("openapi.json must be public: %v %v", err, resp.Status)
	}
	resp.Body.Close()
}

func TestEventsFollow(t *testing.T) {
	m := StartMetald(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// --since 0: the stream starts from the first event whenever it
	// opens, so the event below is in it however late that is.
	cmd := exec.CommandContext(ctx, filepath.Join(Binaries(t), "metalctl"), "events", "--follow", "--since", "0", "-o", "json",
		"--server", m.URL, "--token", m.Token)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	wantOK(t, m.Ctl("machine", "add", "follow1", "--mac", "52:54:00:bb:00:01"), "add")
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"machine.created"`) && strings.Contains(sc.Text(), "follow1") {
			return
		}
	}
	t.Fatalf("events --follow never showed follow1's machine.created (%v)", sc.Err())
}

// TestSIGKILLMidBurstLosesNoAcknowledgedWrite kills metald with SIGKILL
// while clients are writing, restarts it and checks that every write that
// was answered 201 is there.
func TestSIGKILLMidBurstLosesNoAcknowledgedWrite(t *testing.T) {
	m := StartMetald(t, "")
	c, err := client.New(m.URL, m.Token)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const workers, perWorker = 8, 100
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				name := fmt.Sprintf("burst-%d-%03d", w, i)
				_, err := c.CreateMachine(ctx, metalapi.MachineCreate{Name: name, MACs: []string{fmt.Sprintf("02:00:00:00:%02x:%02x", w, i)}})
				if err != nil {
					return // metald is gone
				}
				mu.Lock()
				acked[name] = true
				mu.Unlock()
			}
		}()
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 150 || ctx.Err() != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	m.Kill()
	wg.Wait()
	if len(acked) == workers*perWorker {
		t.Fatal("the burst finished before the kill: the test proved nothing")
	}
	m.Start()
	list, err := c.ListMachines(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, x := range list {
		have[x.Name] = true
	}
	for name := range acked {
		if !have[name] {
			t.Errorf("acknowledged machine %s lost after SIGKILL", name)
		}
	}
	t.Logf("%d acknowledged before SIGKILL, %d present after restart", len(acked), len(list))
	// And the restarted metald takes writes again.
	if _, err := c.CreateMachine(context.Background(), metalapi.MachineCreate{Name: "after-kill", MACs: []string{"02:00:00:ff:ff:01"}}); err != nil {
		t.Fatalf("write after restart: %v", err)
	}
}

func TestStartupRefusals(t *testing.T) {
	bin := filepath.Join(Binaries(t), "metald")
	out, err := exec.Command(bin, "serve", "--data-dir", "/proc/self", "--http", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not writable") {
		t.Fatalf("unwritable data dir: err=%v out=%s", err, out)
	}

	dir := t.TempDir()
	NewToken(t, dir) // creates the database
	db, err := sql.Open("sqlite", filepath.Join(dir, "metald.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA user_version = 999`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out, err = exec.Command(bin, "serve", "--data-dir", dir, "--http", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "newer than this metald") {
		t.Fatalf("newer schema: err=%v out=%s", err, out)
	}

	out, err = exec.Command(bin, "serve", "--data-dir", t.TempDir(), "--dhcp-mode", "sideways").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--dhcp-mode") {
		t.Fatalf("bad flag value: err=%v out=%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--data-dir", t.TempDir())
	cmd.Env = append(cmd.Environ(), "METALD_HTTP=nonsense")
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--http") {
		t.Fatalf("bad env value: err=%v out=%s", err, out)
	}
}
