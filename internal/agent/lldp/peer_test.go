package lldp

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metal-iaas/metal/test/testenv"
)

func need(t *testing.T, ok bool, what, fix string) {
	t.Helper()
	testenv.Require(t, ok, "missing "+what+": "+fix)
}

// TestMain runs the listening half of TestListenHearsLLDPD instead of the
// tests when the test binary is re-executed inside the network namespace
// (the whole process, so every thread is in it).
func TestMain(m *testing.M) {
	if iface := os.Getenv("METAL_LLDP_CHILD"); iface != "" {
		listenChild(iface)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func listenChild(iface string) {
	got := Listen(context.Background(), []string{iface, "nonexistent0"}, 15*time.Second, nil)
	_ = json.NewEncoder(os.Stdout).Encode(got)
}

// lldpd (Debian) is the real peer: it announces itself on one end of a
// veth pair inside a namespace; Listen on the other end must hear its
// chassis, port and system name.
func TestListenHearsLLDPD(t *testing.T) {
	need(t, os.Geteuid() == 0, "root", "run as root (network namespace, raw sockets)")
	_, err := exec.LookPath("lldpd")
	need(t, err == nil, "lldpd", "apt-get install -y lldpd")
	ns := fmt.Sprintf("mtlldp-%d", os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	_ = exec.Command("ip", "netns", "del", ns).Run()
	ip("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	ip("-n", ns, "link", "add", "sw0", "type", "veth", "peer", "name", "srv0")
	ip("-n", ns, "link", "set", "sw0", "address", "02:00:00:00:5e:01")
	ip("-n", ns, "link", "set", "sw0", "up")
	ip("-n", ns, "link", "set", "srv0", "up")

	// lldpd drops privileges to _lldpd, which must reach the control
	// socket; until lldpcli has applied the configuration through it,
	// lldpd sends nothing. t.TempDir() is 0700: use a 0755 dir in /run.
	dir, err := os.MkdirTemp("/run", "mtlldp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "lldpd.conf")
	if err := os.WriteFile(conf, []byte("configure system hostname leaf1.test\nconfigure lldp portidsubtype ifname\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The listener first, so that lldpd's first frame (sent at start) is
	// heard.
	child := exec.Command("ip", "netns", "exec", ns, os.Args[0])
	child.Env = append(os.Environ(), "METAL_LLDP_CHILD=srv0")
	var out strings.Builder
	child.Stdout, child.Stderr = &out, &out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	lldpd := exec.Command("ip", "netns", "exec", ns, "lldpd", "-d", "-I", "sw0", "-C", "sw0", "-u", filepath.Join(dir, "ctl.sock"), "-O", conf)
	var lout strings.Builder
	lldpd.Stdout, lldpd.Stderr = &lout, &lout
	if err := lldpd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lldpd.Process.Kill(); _ = lldpd.Wait() })
	if err := child.Wait(); err != nil {
		t.Fatalf("listener: %v\n%s\nlldpd: %s", err, out.String(), lout.String())
	}
	s := out.String()
	if !strings.Contains(s, `"interface":"srv0"`) || !strings.Contains(s, `"chassis_id":"02:00:00:00:5e:01"`) ||
		!strings.Contains(s, `"port_id":"sw0"`) || !strings.Contains(s, `"system_name":"leaf1.test"`) || strings.Contains(s, "nonexistent0") {
		t.Fatalf("listener heard:\n%s\nlldpd: %s", s, lout.String())
	}
}
