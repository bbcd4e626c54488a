package main

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/internal/agent/agenttest"
	"github.com/metal-iaas/metal/pkg/agentapi"
)

// TestMain runs main itself when the test binary is re-executed with
// METAL_AGENT_MAIN=1, so the tests below drive the real flag handling.
func TestMain(m *testing.M) {
	if os.Getenv("METAL_AGENT_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func agentCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "METAL_AGENT_MAIN=1")
	return cmd
}

// As a normal program with --once the agent registers, runs the task (an
// inspect: the inventory of --root under the task's token) and exits 0.
func TestProgramOnce(t *testing.T) {
	srv := agenttest.New("rack1-07")
	hs := httptest.NewServer(srv)
	defer hs.Close()
	srv.Queue(agentapi.Task{ID: "i1", Kind: agentapi.TaskInspect, Token: "tok"})
	root := t.TempDir()
	for p, s := range map[string]string{
		"proc/cpuinfo": "processor\t: 0\nmodel name\t: Test CPU\n\n",
		"proc/meminfo": "MemTotal: 1024 kB\n",
	} {
		_ = os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := agentCmd("--url", hs.URL, "--mac", "52-54-00-00-00-0A", "--once", "--root", root).CombinedOutput()
	if err != nil {
		t.Fatalf("agent: %v\n%s", err, out)
	}
	regs, invs := srv.Registrations(), srv.Inventories()
	if len(regs) != 1 || regs[0].MAC != "52:54:00:00:00:0a" {
		t.Fatalf("registrations %+v\n%s", regs, out)
	}
	if len(invs) != 1 || invs[0].TaskID != "i1" || invs[0].Inventory.CPU.Model != "Test CPU" || invs[0].Inventory.MemoryBytes != 1<<20 {
		t.Fatalf("inventory reports %+v\n%s", invs, out)
	}
	if r := srv.Results(); len(r) != 1 || !r[0].Success {
		t.Fatalf("results %+v\n%s", r, out)
	}
}

func TestProgramBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "--url is required"},
		{[]string{"--url", "http://x", "--mac", "nope"}, `mac "nope"`},
	} {
		out, err := agentCmd(c.args...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), c.want) {
			t.Errorf("args %v: %v, output %q", c.args, err, out)
		}
	}
}
